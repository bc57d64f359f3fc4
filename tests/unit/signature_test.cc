// Checkpoint signature verification against a key made here with OpenSSL,
// signing the way the TPM does (ECDSA P-256 over SHA-256(checkpoint)).
#include "vigil/signature.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <memory>
#include <vector>

#include "test_records.h"
#include "vigil/digest.h"

namespace vigil {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

class SignatureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_.reset(EVP_EC_gen("P-256"));
    ASSERT_TRUE(key_);
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    ASSERT_EQ(EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    ASSERT_EQ(EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    BN_bn2binpad(x, point_.x, 32);
    BN_bn2binpad(y, point_.y, 32);
    BN_free(x);
    BN_free(y);

    auto cp = testing::Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, 12);
    cp.first_seq = 1;
    cp.last_seq = 40;
    cp.chain_head[3] = 7;
    checkpoint_ = testing::ToRecord(cp);
    sig_ = Sign(checkpoint_);
  }

  vigil_log_signature Sign(const records::Record& cp) {
    auto sig = testing::Blank<vigil_log_signature>(VIGIL_LOG_SIGNATURE, cp.seq() + 1);
    sig.checkpoint_seq = cp.seq();
    sig.status = VIGIL_SIG_OK;
    auto digest = crypto::Sha256({cp.bytes()});
    EXPECT_TRUE(digest.ok());
    std::memcpy(sig.digest, digest->data(), 32);
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr);
    EXPECT_EQ(EVP_PKEY_sign_init(ctx), 1);
    size_t len = 0;
    EXPECT_EQ(EVP_PKEY_sign(ctx, nullptr, &len, digest->data(), 32), 1);
    std::vector<uint8_t> der(len);
    EXPECT_EQ(EVP_PKEY_sign(ctx, der.data(), &len, digest->data(), 32), 1);
    EVP_PKEY_CTX_free(ctx);
    const uint8_t* p = der.data();
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    EXPECT_NE(ecdsa, nullptr);
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), sig.r, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), sig.s, 32);
    ECDSA_SIG_free(ecdsa);
    return sig;
  }

  std::unique_ptr<EVP_PKEY, PkeyFree> key_;
  crypto::EcPoint point_{};
  records::Record checkpoint_ = testing::ToRecord(testing::MakeMeasure(1, 16, "placeholder"));
  vigil_log_signature sig_{};
};

TEST_F(SignatureTest, GoodSignatureVerifies) {
  Status st = crypto::VerifyCheckpointSignature(point_, checkpoint_, sig_);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_F(SignatureTest, FlippedBitInRFails) {
  sig_.r[31] ^= 1;
  EXPECT_EQ(crypto::VerifyCheckpointSignature(point_, checkpoint_, sig_).code(),
            ErrorCode::kMismatch);
}

TEST_F(SignatureTest, EditedCheckpointFails) {
  auto cp = *checkpoint_.As<vigil_log_checkpoint>();
  cp.drops_total = 1;  // hide nothing: any change must show
  EXPECT_EQ(crypto::VerifyCheckpointSignature(point_, testing::ToRecord(cp), sig_).code(),
            ErrorCode::kMismatch);
}

TEST_F(SignatureTest, ConsistentForgeryOfDigestStillFailsEcdsa) {
  // An attacker edits the checkpoint and updates sig.digest to match.
  auto cp = *checkpoint_.As<vigil_log_checkpoint>();
  cp.last_seq = 39;
  auto edited = testing::ToRecord(cp);
  auto digest = crypto::Sha256({edited.bytes()});
  ASSERT_TRUE(digest.ok());
  std::memcpy(sig_.digest, digest->data(), 32);
  EXPECT_EQ(crypto::VerifyCheckpointSignature(point_, edited, sig_).code(), ErrorCode::kMismatch);
}

TEST_F(SignatureTest, OtherKeyFails) {
  crypto::EcPoint other = point_;
  std::unique_ptr<EVP_PKEY, PkeyFree> k(EVP_EC_gen("P-256"));
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
  ASSERT_EQ(EVP_PKEY_get_bn_param(k.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
  BN_bn2binpad(x, other.x, 32);
  BN_bn2binpad(y, other.y, 32);
  BN_free(x);
  BN_free(y);
  EXPECT_EQ(crypto::VerifyCheckpointSignature(other, checkpoint_, sig_).code(),
            ErrorCode::kMismatch);
}

TEST_F(SignatureTest, PointOffTheCurveIsRejected) {
  crypto::EcPoint bad = point_;
  bad.y[31] ^= 1;
  EXPECT_EQ(crypto::VerifyCheckpointSignature(bad, checkpoint_, sig_).code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(SignatureTest, UnsignedAndMisnamedAreReported) {
  auto unsigned_sig = sig_;
  unsigned_sig.status = VIGIL_SIG_NO_TPM;
  EXPECT_EQ(crypto::VerifyCheckpointSignature(point_, checkpoint_, unsigned_sig).code(),
            ErrorCode::kFailedPrecondition);
  auto misnamed = sig_;
  misnamed.checkpoint_seq = 99;
  EXPECT_EQ(crypto::VerifyCheckpointSignature(point_, checkpoint_, misnamed).code(),
            ErrorCode::kMismatch);
}

}  // namespace
}  // namespace vigil
