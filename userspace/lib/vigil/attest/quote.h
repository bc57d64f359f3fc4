// TPM2_Quote checks for a remote verifier: the quote itself (signature,
// magic, type, nonce), the PCR values it covers, and the TPM clock between
// two quotes. Pure (vigil_attest on vigil_verify: OpenSSL and tss2-mu, no
// TPM): every fact returned comes from the signed TPMS_ATTEST, never from an
// unsigned field of the evidence that carried it.
//
// The order a verifier runs them in: CheckQuote (is this a fresh statement
// of the enrolled AK?), then CheckPcrs (are these the PCR values it
// quoted?), then CheckClock against the previous accepted quote of the same
// AK (has the TPM been cleared, reset or rolled back since?).
//
// Thread-safety: pure functions; safe to call concurrently.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_QUOTE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_QUOTE_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vigil/digest.h"
#include "vigil/status.h"
#include "vigil/tpm_object.h"

namespace vigil::attest {

// PCRs 0..23 (TPM PC Client: three bytes of selection bitmap per bank).
inline constexpr uint32_t kMaxPcr = 23;
// TPM2B_DATA's capacity: the largest nonce a quote can carry.
inline constexpr size_t kMaxNonceBytes = sizeof(TPMU_HA);

// One bank's PCRs in a selection. `pcrs` ascending, no duplicates: the order
// the TPM hashes them in.
struct PcrSelection {
  uint16_t alg = 0;  // TPM_ALG_ID of the bank (TPM2_ALG_SHA256, ...)
  std::vector<uint32_t> pcrs;
  bool operator==(const PcrSelection&) const = default;
};

// One PCR's value in one bank, as the node read it.
struct PcrValue {
  uint16_t alg = 0;
  uint32_t pcr = 0;
  crypto::Digest value;
  bool operator==(const PcrValue&) const = default;
};

// What a checked quote says, all of it taken from the signed TPMS_ATTEST.
struct QuoteFacts {
  // Clock (ms the TPM has been powered, saved across power cycles),
  // resetCount, restartCount, safe. resetCount and restartCount are only
  // meaningful when the AK is in the endorsement (or platform) hierarchy:
  // for a key in the owner or null hierarchy the TPM adds a per-key
  // obfuscation value to them and to firmwareVersion (TPM 2.0 Part 3,
  // "Attestation Commands", FillInAttestInfo), which breaks comparisons.
  TPMS_CLOCK_INFO clock{};
  uint64_t firmware_version = 0;  // vendor-defined; obfuscated like the counters
  // The quoted selection, banks in quoted order, empty banks left out.
  std::vector<PcrSelection> selection;
  // H(selected PCR values, in selection order) with `pcr_digest_alg`.
  crypto::Digest pcr_digest;
  // TPM2_Quote hashes the PCRs with the hash of the signing scheme
  // (TPM 2.0 Part 3, TPM2_Quote: "the digest ... using the hash of the
  // signing scheme"), not with the banks' algorithms nor the key's nameAlg:
  // this is the signature's hash (ECDSA-SHA256 -> SHA-256, also over SHA-1
  // or SHA-384 bank values).
  uint16_t pcr_digest_alg = 0;
  std::vector<uint8_t> qualified_signer;  // TPM2B_NAME of the AK's qualified name
};

// Checks one quote of the AK `ak` (an enrolled, trusted public area) against
// the verifier's `nonce` (1..64 bytes). `attest` is the marshalled
// TPMS_ATTEST (a TPM2B_ATTEST's contents), `signature` the marshalled
// TPMT_SIGNATURE. In this order, each with its own message:
//   - nonce empty or over 64 bytes: kInvalidArgument;
//   - the signature does not unmarshal: kMalformed ("quote signature: ...");
//   - its hash is SHA-1 or unknown: kUnsupported (a collision on SHA-1 could
//     pass one attest off as another);
//   - it does not verify by `ak` over `attest`: kMismatch ("quote signature
//     does not verify ...") -- an attest from another AK, a flipped byte;
//   - `attest` is not exactly one TPMS_ATTEST (short, trailing bytes):
//     kMalformed ("quote attest: ...");
//   - magic is not TPM_GENERATED_VALUE: kMismatch;
//   - type is not TPM_ST_ATTEST_QUOTE (e.g. a TPM2_Certify output signed by
//     the same AK): kMismatch;
//   - extraData differs from `nonce` (constant-time): kMismatch (stale or
//     replayed quote);
//   - pcrDigest is not the size of the signature's hash: kMalformed.
// Proves: the TPM holding the AK's private part produced this statement
// after the verifier chose `nonce`, with this clock and this PCR digest.
// Does not prove: that `ak` is an AK of a genuine TPM (enrolment does that),
// which PCR values were hashed (CheckPcrs), that the clock is consistent
// with earlier quotes (CheckClock), or anything about the selection.
Result<QuoteFacts> CheckQuote(const tpmobj::PublicArea& ak, std::span<const uint8_t> attest,
                              std::span<const uint8_t> signature, std::span<const uint8_t> nonce);

// Checks that `values` are the PCR values `quote` covers and that it covers
// what the verifier asked for:
//   - the quoted selection is exactly `expected` (same banks in the same
//     order, same PCRs; banks without PCRs ignored on both sides), else
//     kMismatch naming the first extra or missing bank:pcr;
//   - every selected PCR has exactly one value of its bank's digest size,
//     none is unselected, else kMalformed (duplicate, size) or kMismatch
//     (missing, unselected);
//   - H_{quote.pcr_digest_alg}(values in selection order) equals
//     quote.pcr_digest (constant-time), else kMismatch.
// `expected` with unsorted or duplicated PCRs, an unknown bank or a PCR over
// 23 is kInvalidArgument.
// Proves: the TPM's PCRs held exactly `values` when it quoted. Does not
// prove: that those values are good (replaying the logs against them is the
// verifier's next step).
Status CheckPcrs(const QuoteFacts& quote, const std::vector<PcrSelection>& expected,
                 const std::vector<PcrValue>& values);

// What happened to the TPM between two accepted quotes of the same AK.
enum class ClockEvent {
  kFirst,    // no previous quote to compare with
  kRunning,  // same resetCount and restartCount: the TPM ran on
  kRestart,  // same resetCount, restartCount up: TPM Restart or Resume
             // (Shutdown(STATE) then Startup); PCRs kept on Resume
  kReset,    // resetCount up: TPM Reset (power cycle or Startup(CLEAR)
             // without Shutdown(STATE)); every PCR was reset
};
std::string_view ClockEventName(ClockEvent event);

struct ClockReport {
  ClockEvent event = ClockEvent::kFirst;
  uint64_t clock_advance_ms = 0;  // now.clock - previous.clock (0 for kFirst)
};

// Checks the signed clock of a quote (`now`, from QuoteFacts) against the
// previous accepted quote's (`previous`; nullptr for the first quote). Rules:
//   - `now.safe` must be YES: otherwise the TPM may already have reported a
//     larger Clock (e.g. after a power loss before Clock was saved), so
//     Clock says nothing about order;
//   - resetCount never decreases (a decrease means TPM2_Clear -- new seeds,
//     the AK is gone -- or a quote from another TPM);
//   - with the same resetCount: restartCount does not decrease and clock
//     strictly increases (an equal clock with equal counters is a replay);
//   - with a larger resetCount (kReset): restartCount is not compared (TPM
//     Reset sets it to 0) and clock must not go back (safe = YES promises
//     no larger Clock was reported before).
// Each failure is kMismatch with its own message. Keylime
// (keylime/tpm/tpm_main.py, check_quote_timing) fails on a decreasing
// resetCount, a decreasing restartCount (even across a reset, where the TPM
// sets it to 0: here that is a reset, not an error) and a cleared safe, and
// wants the clock to increase unless both counters changed; it keeps no
// distinct reset/restart report.
// Proves: the quotes come from one TPM lifetime (no TPM2_Clear) in this
// order, and tells the caller when the PCRs were reset (kReset) or may have
// been (kRestart), so it can expect the anchors to start over. Does not
// prove: anything about wall-clock time (Clock is the TPM's own counter,
// can run slow, and TPM2_ClockSet may advance it), nor that the node was
// not rebooted with a different kernel (the PCRs say that).
Result<ClockReport> CheckClock(const TPMS_CLOCK_INFO* previous, const TPMS_CLOCK_INFO& now);

// "sha256:16,23 sha1:10": for messages.
std::string SelectionToString(const std::vector<PcrSelection>& selection);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_QUOTE_H_
