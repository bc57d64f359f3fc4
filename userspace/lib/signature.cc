#include "vigil/signature.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/digest.h"
#include "vigil/openssl_ptr.h"

namespace vigil::crypto {
namespace {

using ossl::Deleter;
using ossl::ParamBldPtr;
using ossl::ParamPtr;
using ossl::PkeyPtr;
using ossl::PkeyCtxPtr;
using ossl::EcdsaSigPtr;
using ossl::BignumPtr;
using ossl::BioPtr;

Result<PkeyPtr> P256PublicKey(const EcPoint& key) {
  uint8_t point[1 + 2 * VIGIL_ECC_COORD_LEN];
  point[0] = 0x04;  // uncompressed
  std::memcpy(point + 1, key.x, VIGIL_ECC_COORD_LEN);
  std::memcpy(point + 1 + VIGIL_ECC_COORD_LEN, key.y, VIGIL_ECC_COORD_LEN);

  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return Status::FromOpenSsl("OSSL_PARAM_BLD_new");
  char group[] = "prime256v1";
  if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) !=
          1) {
    return Status::FromOpenSsl("building EC key parameters");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  if (!params) return Status::FromOpenSsl("OSSL_PARAM_BLD_to_param");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) {
    return Status::FromOpenSsl("EVP_PKEY_fromdata_init");
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    Status st = Status::FromOpenSsl("the checkpoint key is not a P-256 point");
    return Status::Error(ErrorCode::kInvalidArgument, st.message());
  }
  PkeyPtr pkey(raw);
  // fromdata does not check that the point is on the curve.
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    Status st = Status::FromOpenSsl("the checkpoint key is not on P-256");
    return Status::Error(ErrorCode::kInvalidArgument, st.message());
  }
  return pkey;
}

// The key of the last verified checkpoint, per thread: a stream is signed by
// one key, and building and checking it (parameter build, fromdata, the
// on-curve check) cost as much as the ECDSA verify itself. Only a key that
// passed those checks is kept; a different point builds (and checks) anew.
// thread_local: an EVP_PKEY is used by one thread at a time.
struct KeyCache {
  EcPoint point{};
  PkeyPtr pkey;
};
thread_local KeyCache key_cache;

Result<EVP_PKEY*> CachedP256PublicKey(const EcPoint& key) {
  if (!key_cache.pkey || std::memcmp(key_cache.point.x, key.x, sizeof(key.x)) != 0 ||
      std::memcmp(key_cache.point.y, key.y, sizeof(key.y)) != 0) {
    key_cache.pkey.reset();
    VIGIL_ASSIGN_OR_RETURN(PkeyPtr pkey, P256PublicKey(key));
    key_cache.point = key;
    key_cache.pkey = std::move(pkey);
  }
  return key_cache.pkey.get();
}

}  // namespace

Status VerifyCheckpointSignature(const EcPoint& key, const records::Record& checkpoint,
                                 const vigil_log_signature& sig) {
  if (checkpoint.type() != VIGIL_LOG_CHECKPOINT) {
    return Status::Error(ErrorCode::kInvalidArgument, "not a checkpoint record");
  }
  const std::string where = "signature of checkpoint log seq " + std::to_string(checkpoint.seq());
  if (sig.checkpoint_seq != checkpoint.seq()) {
    return Status::Error(ErrorCode::kMismatch, where + ": the signature names log seq " +
                                                   std::to_string(sig.checkpoint_seq));
  }
  if (sig.status != VIGIL_SIG_OK) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         where + ": unsigned (status " + std::to_string(sig.status) + ", error " +
                             std::to_string(sig.error) + ")");
  }
  VIGIL_ASSIGN_OR_RETURN(Sha256Digest digest, Sha256({checkpoint.bytes()}));
  if (std::memcmp(digest.data(), sig.digest, digest.size()) != 0) {
    return Status::Error(ErrorCode::kMismatch,
                         where + ": the signed digest is not SHA-256 of the checkpoint");
  }
  VIGIL_ASSIGN_OR_RETURN(EVP_PKEY * pkey, CachedP256PublicKey(key));

  BignumPtr r(BN_bin2bn(sig.r, VIGIL_ECC_COORD_LEN, nullptr));
  BignumPtr s(BN_bin2bn(sig.s, VIGIL_ECC_COORD_LEN, nullptr));
  EcdsaSigPtr ecdsa(ECDSA_SIG_new());
  if (!r || !s || !ecdsa) return Status::FromOpenSsl("ECDSA_SIG_new");
  if (ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) {
    return Status::FromOpenSsl("ECDSA_SIG_set0");
  }
  r.release();  // owned by ecdsa now
  s.release();
  const int der_len = i2d_ECDSA_SIG(ecdsa.get(), nullptr);
  if (der_len <= 0) return Status::FromOpenSsl("i2d_ECDSA_SIG");
  std::vector<uint8_t> der(static_cast<size_t>(der_len));
  uint8_t* out = der.data();
  i2d_ECDSA_SIG(ecdsa.get(), &out);

  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) {
    return Status::FromOpenSsl("EVP_PKEY_verify_init");
  }
  const int ok = EVP_PKEY_verify(ctx.get(), der.data(), der.size(), digest.data(), digest.size());
  if (ok != 1) {
    while (ERR_get_error() != 0) {
    }
    return Status::Error(ErrorCode::kMismatch, where + ": ECDSA verification failed");
  }
  return Status::Ok();
}

bool SamePoint(const EcPoint& a, const EcPoint& b) {
  return std::memcmp(a.x, b.x, sizeof(a.x)) == 0 && std::memcmp(a.y, b.y, sizeof(a.y)) == 0;
}

Result<EcPoint> ParsePublicKey(std::span<const uint8_t> bytes) {
  EcPoint point{};
  constexpr std::string_view kPem = "-----BEGIN PUBLIC KEY-----";
  const auto pem_at = std::search(bytes.begin(), bytes.end(), kPem.begin(), kPem.end());
  if (pem_at == bytes.end()) {
    if (bytes.size() != 2 * VIGIL_ECC_COORD_LEN) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "a key file holds a PEM public key or exactly 64 raw bytes (x || y), "
                           "not " +
                               std::to_string(bytes.size()) + " bytes");
    }
    std::memcpy(point.x, bytes.data(), VIGIL_ECC_COORD_LEN);
    std::memcpy(point.y, bytes.data() + VIGIL_ECC_COORD_LEN, VIGIL_ECC_COORD_LEN);
  } else {
    BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    if (!bio) return Status::FromOpenSsl("BIO_new_mem_buf");
    PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!pkey) {
      Status st = Status::FromOpenSsl("reading the PEM public key");
      return Status::Error(ErrorCode::kInvalidArgument, st.message());
    }
    char group[64] = {};
    size_t group_len = 0;
    if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_len) != 1 ||
        std::string_view(group, group_len) != "prime256v1") {
      while (ERR_get_error() != 0) {
      }
      return Status::Error(ErrorCode::kInvalidArgument,
                           "the PEM public key is not an EC P-256 key (the checkpoint key is)");
    }
    BIGNUM* x_raw = nullptr;
    BIGNUM* y_raw = nullptr;
    const bool got = EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x_raw) == 1 &&
                     EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y_raw) == 1;
    BignumPtr x(x_raw);
    BignumPtr y(y_raw);
    if (!got || BN_bn2binpad(x.get(), point.x, VIGIL_ECC_COORD_LEN) != VIGIL_ECC_COORD_LEN ||
        BN_bn2binpad(y.get(), point.y, VIGIL_ECC_COORD_LEN) != VIGIL_ECC_COORD_LEN) {
      return Status::FromOpenSsl("reading the public point");
    }
  }
  // The same check a signature verification makes: a point on P-256.
  VIGIL_ASSIGN_OR_RETURN(PkeyPtr checked, P256PublicKey(point));
  (void)checked;
  return point;
}

}  // namespace vigil::crypto
