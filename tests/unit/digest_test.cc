// Hashing by TPM algorithm id and the PCR extend rule (known answers).
#include "vigil/digest.h"

#include <gtest/gtest.h>

#include <string>

#include "vigil.h"

namespace vigil {
namespace {

std::span<const uint8_t> Str(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Digest, KnownAnswers) {
  const std::string abc = "abc";
  auto sha256 = crypto::Hash(VIGIL_ALG_SHA256, Str(abc));
  ASSERT_TRUE(sha256.ok());
  EXPECT_EQ(crypto::ToHex(*sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto sha1 = crypto::Hash(VIGIL_ALG_SHA1, Str(abc));
  ASSERT_TRUE(sha1.ok());
  EXPECT_EQ(crypto::ToHex(*sha1), "a9993e364706816aba3e25717850c26c9cd0d89d");
  auto sha384 = crypto::Hash(VIGIL_ALG_SHA384, Str(abc));
  ASSERT_TRUE(sha384.ok());
  EXPECT_EQ(sha384->size(), 48u);
  auto sha512 = crypto::Hash(VIGIL_ALG_SHA512, Str(abc));
  ASSERT_TRUE(sha512.ok());
  EXPECT_EQ(crypto::ToHex(*sha512).substr(0, 16), "ddaf35a193617aba");
}

TEST(Digest, PartsAreConcatenated) {
  auto whole = crypto::Hash(VIGIL_ALG_SHA256, Str(std::string("abc")));
  auto parts = crypto::Hash(VIGIL_ALG_SHA256, {Str("a"), Str(""), Str("bc")});
  ASSERT_TRUE(whole.ok() && parts.ok());
  EXPECT_EQ(*whole, *parts);
}

TEST(Digest, ExtendFollowsTpmRule) {
  // new = H(old || H("vigil")), old = zeros: computed with Python hashlib.
  auto m256 = crypto::Hash(VIGIL_ALG_SHA256, Str("vigil"));
  ASSERT_TRUE(m256.ok());
  auto pcr256 = crypto::Extend(VIGIL_ALG_SHA256, crypto::Digest(32, 0), *m256);
  ASSERT_TRUE(pcr256.ok());
  EXPECT_EQ(crypto::ToHex(*pcr256),
            "da3978f42fc2753127622ec26a09ba8418d1f5696d77205ba0414384953c03d7");
  auto m1 = crypto::Hash(VIGIL_ALG_SHA1, Str("vigil"));
  auto pcr1 = crypto::Extend(VIGIL_ALG_SHA1, crypto::Digest(20, 0), *m1);
  ASSERT_TRUE(pcr1.ok());
  EXPECT_EQ(crypto::ToHex(*pcr1), "443cc918c965b301d070d00443e6a7b1321be20c");
}

TEST(Digest, ExtendRejectsWrongSizedOldValue) {
  auto r = crypto::Extend(VIGIL_ALG_SHA256, crypto::Digest(20, 0), crypto::Digest(32, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

TEST(Digest, UnknownAlgorithmIsUnsupported) {
  for (uint16_t alg : {uint16_t{0}, uint16_t{VIGIL_ALG_SM3_256}, uint16_t{0x1234}}) {
    auto r = crypto::Hash(alg, Str("x"));
    ASSERT_FALSE(r.ok()) << alg;
    EXPECT_EQ(r.status().code(), ErrorCode::kUnsupported);
    EXPECT_FALSE(crypto::DigestSize(alg).ok());
  }
  EXPECT_EQ(crypto::AlgName(VIGIL_ALG_SHA384), "sha384");
  EXPECT_EQ(crypto::AlgName(0x1234), "alg-0x1234");
}

}  // namespace
}  // namespace vigil
