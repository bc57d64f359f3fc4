// Quote checks per second on one core, side by side with the raw ECDSA
// P-256 verification (SHA-256 of the attest + verify, OpenSSL EVP with a
// ready key) that a quote check cannot avoid: the ratio says what the
// checks cost on top of the signature.
//
// The quote is made here, not by a TPM: a TPMS_ATTEST of type QUOTE over
// two SHA-256 PCRs with a 32-byte nonce, marshalled with tss2-mu and signed
// by an OpenSSL P-256 key whose public area is a restricted ECDSA-SHA256
// TPMT_PUBLIC. Byte for byte what a TPM's quote looks like to the verifier.
//
// Run: build/bench/vigil-bench-attest [--seconds S (default 2 per case)]
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sched.h>
#include <time.h>
#include <tss2/tss2_mu.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "vigil/attest/quote.h"
#include "vigil/tpm_object.h"

namespace {

using vigil::attest::PcrSelection;
using vigil::attest::PcrValue;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vigil-bench-attest: %s\n", what.c_str());
  std::exit(1);
}

// This thread's CPU time: preemption by other work on a shared machine
// does not count against the path that was running.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` in batches until `seconds` of CPU time passed; ops per second.
double Rate(double seconds, const std::function<void()>& op) {
  for (int i = 0; i < 100; ++i) op();  // warm up
  uint64_t n = 0;
  const double start = CpuSeconds();
  double now = start;
  while (now - start < seconds) {
    for (int i = 0; i < 200; ++i) op();
    n += 200;
    now = CpuSeconds();
  }
  return static_cast<double>(n) / (now - start);
}

struct Fixture {
  EVP_PKEY* key = nullptr;
  vigil::tpmobj::PublicArea ak;
  std::vector<uint8_t> attest;
  std::vector<uint8_t> signature;
  std::vector<uint8_t> nonce;
  std::vector<PcrSelection> selection;
  std::vector<PcrValue> values;
  std::vector<uint8_t> raw_der;  // the same signature as OpenSSL's DER
};

Fixture Make() {
  Fixture f;
  f.key = EVP_EC_gen("P-256");
  if (!f.key) Die("EVP_EC_gen");
  uint8_t point[65];
  size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(f.key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                      &point_len) != 1 ||
      point_len != 65) {
    Die("public point");
  }
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                         TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH;
  pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  pub.unique.ecc.x.size = 32;
  std::memcpy(pub.unique.ecc.x.buffer, point + 1, 32);
  pub.unique.ecc.y.size = 32;
  std::memcpy(pub.unique.ecc.y.buffer, point + 33, 32);
  std::vector<uint8_t> pub_bytes(sizeof(TPMT_PUBLIC));
  size_t off = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, pub_bytes.data(), pub_bytes.size(), &off) != 0) {
    Die("marshal public");
  }
  pub_bytes.resize(off);
  auto area = vigil::tpmobj::ParseTpmtPublic(pub_bytes);
  if (!area.ok()) Die(area.status().ToString());
  f.ak = *area;

  f.nonce.assign(32, 0x4e);
  f.selection = {{TPM2_ALG_SHA256, {16, 23}}};
  f.values = {{TPM2_ALG_SHA256, 16, vigil::crypto::Digest(32, 0x16)},
              {TPM2_ALG_SHA256, 23, vigil::crypto::Digest(32, 0x23)}};
  std::vector<uint8_t> both(f.values[0].value);
  both.insert(both.end(), f.values[1].value.begin(), f.values[1].value.end());
  auto pcr_digest = vigil::crypto::Hash(TPM2_ALG_SHA256, both);

  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.qualifiedSigner.size = 34;
  a.extraData.size = 32;
  std::memcpy(a.extraData.buffer, f.nonce.data(), 32);
  a.clockInfo = {123456789, 1, 0, TPM2_YES};
  a.firmwareVersion = 0x2000000000000ull;
  a.attested.quote.pcrSelect.count = 1;
  a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
  a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
  a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[2] = 0x81;  // 16, 23
  a.attested.quote.pcrDigest.size = 32;
  std::memcpy(a.attested.quote.pcrDigest.buffer, pcr_digest->data(), 32);
  f.attest.resize(sizeof(TPMS_ATTEST));
  off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, f.attest.data(), f.attest.size(), &off) != 0) {
    Die("marshal attest");
  }
  f.attest.resize(off);

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t der_len = 128;
  std::vector<uint8_t> der(der_len);
  if (EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, f.key, nullptr) != 1 ||
      EVP_DigestSign(ctx, der.data(), &der_len, f.attest.data(), f.attest.size()) != 1) {
    Die("sign");
  }
  EVP_MD_CTX_free(ctx);
  const uint8_t* p = der.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  if (!es) Die("d2i_ECDSA_SIG");
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  BN_bn2binpad(ECDSA_SIG_get0_r(es), sig.signature.ecdsa.signatureR.buffer, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), sig.signature.ecdsa.signatureS.buffer, 32);
  ECDSA_SIG_free(es);
  f.signature.resize(sizeof(TPMT_SIGNATURE));
  off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, f.signature.data(), f.signature.size(), &off) != 0) {
    Die("marshal signature");
  }
  f.signature.resize(off);
  f.raw_der = std::vector<uint8_t>(der.begin(), der.begin() + static_cast<long>(der_len));
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  if (seconds <= 0) Die("--seconds must be positive");
  // One core: the figures are per core.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  sched_setaffinity(0, sizeof(one), &one);

  Fixture f = Make();
  // Sanity: what is timed passes.
  auto facts = vigil::attest::CheckQuote(f.ak, f.attest, f.signature, f.nonce);
  if (!facts.ok()) Die("CheckQuote: " + facts.status().ToString());
  if (!vigil::attest::CheckPcrs(*facts, f.selection, f.values).ok()) Die("CheckPcrs");

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const double raw = Rate(seconds, [&] {
    if (EVP_DigestVerifyInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, f.key, nullptr) != 1 ||
        EVP_DigestVerify(ctx, f.raw_der.data(), f.raw_der.size(), f.attest.data(),
                         f.attest.size()) != 1) {
      Die("raw verify");
    }
  });
  EVP_MD_CTX_free(ctx);
  const double quote = Rate(seconds, [&] {
    if (!vigil::attest::CheckQuote(f.ak, f.attest, f.signature, f.nonce).ok()) Die("CheckQuote");
  });
  const double quote_pcrs = Rate(seconds, [&] {
    auto q = vigil::attest::CheckQuote(f.ak, f.attest, f.signature, f.nonce);
    if (!q.ok() || !vigil::attest::CheckPcrs(*q, f.selection, f.values).ok()) Die("checks");
  });
  TPMS_CLOCK_INFO prev = facts->clock;
  prev.clock -= 1000;
  const double clock = Rate(seconds, [&] {
    if (!vigil::attest::CheckClock(&prev, facts->clock).ok()) Die("CheckClock");
  });
  std::printf("attest bytes %zu, signature bytes %zu, one core, CPU time\n", f.attest.size(),
              f.signature.size());
  std::printf("raw ECDSA P-256 verify (SHA-256 + verify, key ready)  %10.0f /s\n", raw);
  std::printf("CheckQuote (parse, key from public area, verify)     %10.0f /s  (%.2fx raw)\n",
              quote, quote / raw);
  std::printf("CheckQuote + CheckPcrs (2 PCRs)                      %10.0f /s  (%.2fx raw)\n",
              quote_pcrs, quote_pcrs / raw);
  std::printf("CheckClock                                           %10.0f /s\n", clock);
  EVP_PKEY_free(f.key);
  return 0;
}
