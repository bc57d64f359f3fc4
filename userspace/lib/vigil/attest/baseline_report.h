// Signed baseline reports (format v1): a node's baseline snapshot (vigild's
// BaselineStore state, the exact bytes), measured into the module's log
// with the MEASURE ioctl under the name "baseline" -- which, with
// anchor=ima, is an IMA critical-data entry and so part of PCR 10 -- and a
// TPM quote of PCR 10 by the node's enrolled AK whose qualifying data binds
// the snapshot's digest, the MEASURE record and a caller's nonce. A
// verifier checks a report offline with the AK it trusts for the node.
// Pure (vigil_verify, vigil_baseline, nlohmann_json; no TPM).
//
// JSON, one object, UTF-8; keys (all required, no other key, none twice):
//
//   format           "vigil-baseline-report"
//   version          integer, 1 (another: kUnsupported)
//   node             string, 1..256 bytes: the node's id (hex EK name).
//                    Informational: the checker trusts the AK it is given.
//   snapshot         base64 (canonical, padded) of the snapshot's bytes,
//                    1..kMaxSnapshotBytes decoded: vigild's baselines.json
//                    verbatim (BaselineStore::Serialize() output)
//   snapshot_sha256  hex, 32 bytes: SHA-256 of those bytes
//   measure          object: the MEASURE record that logged the digest
//     instance       hex, 16 bytes: the module instance (GET_INFO); IMA's
//                    entry name carries its first 4 bytes
//     seq            integer >= 1: the record's log seq (the ioctl's log_seq)
//     name           "baseline"
//   nonce            hex, 1..64 bytes: the caller's nonce (a verifier's, for
//                    freshness; otherwise random bytes the node chose)
//   quote            object: TPM2_Quote of SHA-256 PCR 10 by the AK
//     attest         hex: marshalled TPMS_ATTEST (<= 4096 bytes)
//     signature      hex: marshalled TPMT_SIGNATURE (<= 4096 bytes)
//   pcrs             array of exactly one {"alg": "sha256", "pcr": 10,
//                    "value": hex 32 bytes}: the quoted value
//   ima              object:
//     entries        base64: IMA's binary runtime measurements from the
//                    first entry, read after the quote (<= 64 MiB decoded)
//   ak_public        hex: marshalled TPM2B_PUBLIC of the AK that quoted.
//                    Informational: a checker compares it with the AK it
//                    trusts and verifies with that one.
//
// The quote's qualifying data (extraData) is
//   SHA-256("vigil-baseline-report-v1" NUL || snapshot_sha256 ||
//           instance (16 bytes) || seq (u64 big-endian) || nonce)
// (BaselineReportQualifyingData), so one quote answers for one snapshot,
// one MEASURE record and one nonce.
//
// Thread-safety: pure functions.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_BASELINE_REPORT_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_BASELINE_REPORT_H_

#include <tss2/tss2_tpm2_types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/attest/quote.h"
#include "vigil/baseline/store.h"
#include "vigil/digest.h"
#include "vigil/status.h"
#include "vigil/tpm_object.h"

namespace vigil::attest {

inline constexpr std::string_view kBaselineReportFormat = "vigil-baseline-report";
inline constexpr uint32_t kBaselineReportVersion = 1;
// The MEASURE name under which the node logs the snapshot's digest.
inline constexpr std::string_view kBaselineMeasureName = "baseline";
inline constexpr size_t kMaxSnapshotBytes = 64u << 20;   // decoded
inline constexpr size_t kMaxReportImaBytes = 64u << 20;  // decoded
inline constexpr size_t kMaxBaselineReportBytes =
    4 * ((kMaxSnapshotBytes + 2) / 3) + 4 * ((kMaxReportImaBytes + 2) / 3) + (1u << 20);

struct BaselineReport {
  std::string node;
  std::vector<uint8_t> snapshot;
  crypto::Digest snapshot_sha256;
  std::array<uint8_t, 16> instance{};
  uint64_t measure_seq = 0;
  std::string measure_name{kBaselineMeasureName};
  std::vector<uint8_t> nonce;
  std::vector<uint8_t> quote_attest;
  std::vector<uint8_t> quote_signature;
  crypto::Digest pcr10_sha256;
  std::vector<uint8_t> ima_entries;
  std::vector<uint8_t> ak_public;  // TPM2B_PUBLIC
  bool operator==(const BaselineReport&) const = default;
};

// The JSON text (compact, keys in the order above).
std::string SerializeBaselineReport(const BaselineReport& report);
// Strict: unknown, missing or repeated keys, bad hex/base64, sizes out of
// range, another format string: kMalformed naming the field ("baseline
// report: measure.seq: ..."); another version: kUnsupported.
Result<BaselineReport> ParseBaselineReport(std::string_view text);

// The quote's qualifying data for a report (see the file comment). `nonce`
// 1..64 bytes and `snapshot_sha256` 32 bytes, else kInvalidArgument.
Result<std::vector<uint8_t>> BaselineReportQualifyingData(std::span<const uint8_t> snapshot_sha256,
                                                          std::span<const uint8_t, 16> instance,
                                                          uint64_t measure_seq,
                                                          std::span<const uint8_t> nonce);

// Parses `snapshot` as a baseline state the way `vigilctl baseline show`
// does: BaselineStore::Parse with the state's own sketch parameters and no
// per-agent limits (any state vigild could have written). Returns the
// number of agents; kMalformed with the JSON pointer of the first bad
// member otherwise.
Result<size_t> ParseBaselineSnapshot(std::string_view snapshot);
// The same, giving the parsed store (fleet analytics reads its pools).
Result<baseline::BaselineStore> ParseBaselineSnapshotStore(std::string_view snapshot);

// An AK's public key from a file's bytes: a marshalled TPM2B_PUBLIC (binary,
// as tpm2_readpublic -o writes it, or its hex as enrolment.json keeps it),
// or a SubjectPublicKeyInfo PEM (as tpm2_readpublic -f pem writes it; an
// ECC P-256/P-384 key gets ECDSA with SHA-256/SHA-384, an RSA key RSASSA
// with SHA-256, as the signature's own scheme decides the check anyway).
Result<tpmobj::PublicArea> ParseAkFile(std::span<const uint8_t> bytes);

// What CheckBaselineReport found. `valid` only when `reasons` is empty.
struct BaselineReportCheck {
  bool valid = false;
  std::vector<std::string> reasons;  // one per failed check, in check order
  // Facts, set as far as the report parsed (the quote's and IMA's only
  // when their checks passed):
  std::string node;
  crypto::Digest snapshot_sha256;
  uint64_t measure_seq = 0;
  std::string instance;                  // hex, 16 bytes
  bool fresh = false;                    // an expected nonce was given and matched
  std::optional<TPMS_CLOCK_INFO> clock;  // from the signed attest
  std::optional<size_t> ima_entry;       // index of the MEASURE entry in IMA's list
  std::optional<size_t> agents;          // agents in the snapshot
};

// Checks a report against `ak`, the AK the verifier trusts for the node
// (from its enrolment; never the report's own ak_public), and, when given,
// the nonce the verifier chose. Every check that can run does, each failure
// adds its reason (fail closed):
//   report       parses (else the only reason);
//   ak           the report's ak_public is `ak` (an attacker's key in the
//                report is named, though the signature check decides);
//   nonce        equals `expected_nonce` (constant time), when given;
//   quote        CheckQuote: the AK's signature over the attest, magic,
//                type ATTEST_QUOTE, extraData = the qualifying data of this
//                snapshot digest, MEASURE record and nonce;
//   pcrs         CheckPcrs: exactly SHA-256 PCR 10, hashing to pcrDigest;
//   ima          IMA's log parses and a prefix of it replays to the quoted
//                PCR 10 (only after the quote passed);
//   measure      within that prefix exactly one IMA entry of the report's
//                instance for MEASURE seq `seq`, an ima-buf entry whose
//                record is a VIGIL_MEASURE_USER measurement with that seq,
//                named "baseline", whose digest is snapshot_sha256, and no
//                later "baseline" MEASURE of the instance in that prefix
//                (the report is the newest baseline at the quote);
//   snapshot     SHA-256(snapshot) = snapshot_sha256, and the snapshot
//                parses as a baseline state (ParseBaselineSnapshot).
// Proves (all passed): the TPM holding `ak` quoted PCR 10 after the
// snapshot's digest was chosen and (with `expected_nonce`) after the
// verifier's nonce; at the quote, PCR 10's log held a MEASURE of that
// digest named "baseline", in that IMA position. Does not prove: who asked
// for that MEASURE (any root process can), nor that vigild computed the
// snapshot from real observations; see docs/attestation.md.
BaselineReportCheck CheckBaselineReport(std::string_view report_json, const tpmobj::PublicArea& ak,
                                        std::optional<std::span<const uint8_t>> expected_nonce);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_BASELINE_REPORT_H_
