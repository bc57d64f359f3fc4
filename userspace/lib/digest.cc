#include "vigil/digest.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "vigil.h"

namespace vigil::crypto {
namespace {

const EVP_MD* MdForAlg(uint16_t tpm_alg) {
  switch (tpm_alg) {
    case VIGIL_ALG_SHA1:
      return EVP_sha1();
    case VIGIL_ALG_SHA256:
      return EVP_sha256();
    case VIGIL_ALG_SHA384:
      return EVP_sha384();
    case VIGIL_ALG_SHA512:
      return EVP_sha512();
    default:
      return nullptr;  // SM3 is not in OpenSSL's default provider set
  }
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

}  // namespace

std::string AlgName(uint16_t tpm_alg) {
  switch (tpm_alg) {
    case VIGIL_ALG_SHA1:
      return "sha1";
    case VIGIL_ALG_SHA256:
      return "sha256";
    case VIGIL_ALG_SHA384:
      return "sha384";
    case VIGIL_ALG_SHA512:
      return "sha512";
    case VIGIL_ALG_SM3_256:
      return "sm3_256";
    default: {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "alg-0x%04x", tpm_alg);
      return buf;
    }
  }
}

Result<size_t> DigestSize(uint16_t tpm_alg) {
  const EVP_MD* md = MdForAlg(tpm_alg);
  if (md == nullptr) {
    return Status::Error(ErrorCode::kUnsupported,
                         "hash algorithm " + AlgName(tpm_alg) + " is not supported");
  }
  return static_cast<size_t>(EVP_MD_get_size(md));
}

Result<Digest> Hash(uint16_t tpm_alg, std::initializer_list<std::span<const uint8_t>> parts) {
  const EVP_MD* md = MdForAlg(tpm_alg);
  if (md == nullptr) {
    return Status::Error(ErrorCode::kUnsupported,
                         "hash algorithm " + AlgName(tpm_alg) + " is not supported");
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Status::FromOpenSsl("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) {
    return Status::FromOpenSsl("EVP_DigestInit_ex");
  }
  for (std::span<const uint8_t> part : parts) {
    if (!part.empty() && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) {
      return Status::FromOpenSsl("EVP_DigestUpdate");
    }
  }
  Digest out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1) {
    return Status::FromOpenSsl("EVP_DigestFinal_ex");
  }
  out.resize(len);
  return out;
}

Result<Sha256Digest> Sha256(std::initializer_list<std::span<const uint8_t>> parts) {
  VIGIL_ASSIGN_OR_RETURN(Digest d, Hash(VIGIL_ALG_SHA256, parts));
  Sha256Digest out;
  if (d.size() != out.size()) {
    return Status::Error(ErrorCode::kInternal, "SHA-256 returned a wrong size");
  }
  std::memcpy(out.data(), d.data(), out.size());
  return out;
}

Result<Digest> Extend(uint16_t tpm_alg, std::span<const uint8_t> old_value,
                      std::span<const uint8_t> measurement) {
  VIGIL_ASSIGN_OR_RETURN(size_t size, DigestSize(tpm_alg));
  if (old_value.size() != size) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         AlgName(tpm_alg) + " PCR value has " + std::to_string(old_value.size()) +
                             " bytes, expected " + std::to_string(size));
  }
  return Hash(tpm_alg, {old_value, measurement});
}

std::string ToHex(std::span<const uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

Result<std::vector<uint8_t>> FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    return Status::Error(ErrorCode::kInvalidArgument, "hex string has an odd length");
  }
  std::vector<uint8_t> out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]);
    const int lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::Error(ErrorCode::kInvalidArgument, "not a hex string");
    }
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

}  // namespace vigil::crypto
