// Test-only TPM helpers for the attestation tests: an AK made on swtpm, its
// public area, and a power cycle through swtpm's control channel.
#ifndef VIGIL_TESTS_UNIT_ATTEST_TEST_UTIL_H_
#define VIGIL_TESTS_UNIT_ATTEST_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <tss2/tss2_esys.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/status.h"
#include "vigil/tpm_object.h"

namespace vigil::testing {

// A restricted ECC P-256 ECDSA-SHA256 signing primary (fixedTPM,
// fixedParent, sensitiveDataOrigin, userWithAuth) under `hierarchy`
// (ESYS_TR_RH_ENDORSEMENT for a real AK: the counters in its quotes are
// not obfuscated). `unique` varies the key: the same template and unique
// give the same key again (also after a TPM reset).
Result<ESYS_TR> CreateTestAk(ESYS_CONTEXT* ctx, ESYS_TR hierarchy = ESYS_TR_RH_ENDORSEMENT,
                             uint8_t unique = 0);
Result<tpmobj::PublicArea> ReadAkPublic(ESYS_CONTEXT* ctx, ESYS_TR key);

// Sends CMD_INIT (a power cycle: _TPM_Init, TPM2_Startup needed after it)
// to the control channel of the swtpm behind `tcti` (the fixture puts it on
// the data port + 1).
Status SwtpmPowerCycle(const std::string& tcti);

// A TPM structure marshalled with its tss2-mu function (a test failure if
// it does not fit).
template <typename T>
std::vector<uint8_t> Marshal(const T& value,
                             TSS2_RC (*marshal)(const T*, uint8_t*, size_t, size_t*)) {
  std::vector<uint8_t> out(sizeof(T) + 16);
  size_t offset = 0;
  EXPECT_EQ(marshal(&value, out.data(), out.size(), &offset), TSS2_RC_SUCCESS);
  out.resize(offset);
  return out;
}

}  // namespace vigil::testing

#endif  // VIGIL_TESTS_UNIT_ATTEST_TEST_UTIL_H_
