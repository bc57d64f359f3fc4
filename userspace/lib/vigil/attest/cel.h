// vigil's log (and IMA's) as a TCG Canonical Event Log in its JSON form
// (CEL-JSON), so generic tools replay the anchor PCRs without knowing
// vigil's record formats.
//
// CEL-JSON (TCG "Canonical Event Log Format", the JSON encoding of the
// CEL-TLV records) is an array of objects, one per extend:
//   {"recnum": N, "pcr": P, "digests": [{"hashAlg": "sha256", "digest": "<hex>"}, ...],
//    "content_type": "...", "content": {...}}
// `digests` holds exactly what was extended into PCR P, one entry per bank,
// so replaying every record in order (pcr[P][bank] = H(pcr[P][bank] ||
// digest)) gives the PCR values.
//
// What is exported:
// - vigil's own records, content_type "vigil" (not a TCG type; chosen like
//   systemd's "systemd" content type, so no tool mistakes it for a TCG
//   structure while every tool still replays its digests). content:
//     {"format": "vigil-log-v1", "log_seq": N, "record_type": "measure"|"key"|
//      "checkpoint"|"base", "record": "<hex of the whole record>"}
//   Every MEASURE and KEY record extended into pcr_config, and with
//   anchor=pcr every CHECKPOINT record extended into pcr_events, as the
//   module extends them: digest = H_bank(record) in every bank of the BASE
//   record. A content-aware verifier checks the digests against `record`
//   and decodes it (include/uapi/vigil.h).
// - PCRs 16/23 do not start at zero when the module was loaded before in
//   the same boot, and after a TRIM the log starts at a cut: the newest BASE
//   record's values are the replay's start. The export opens each vigil PCR
//   with a "vigil" record of record_type "base" that extends nothing
//   (`digests` is empty) and carries the start values in
//   content.pcr_start [{"hashAlg", "digest"}]. A generic replayer starting
//   from zero reproduces the PCR only when those are zero (the first load
//   since the TPM was reset, no TRIM); Keylime-style verifiers take start
//   values the same way for IMA's log.
// - With IMA's binary log (anchor=ima: checkpoints, and copies of the config
//   records, are IMA ima-buf entries in PCR 10), every IMA entry, content_type
//   "ima_template" (TCG CEL content type 7), content {"template_name",
//   "template_data": "<hex>"}, digests as IMA extends them: the logged SHA-1
//   template digest in the SHA-1 bank, H_bank(template data) in the others,
//   all 0xff for a violation. vigil's entries are the ima-buf entries named
//   "vigil-<instance>-<kind>-<seq>" whose buffer is the record. Only the whole
//   log replays PCR 10 (boot_aggregate and every other measurement are in
//   it), so it is exported whole; vigil's CHECKPOINT records with
//   anchor=ima are not exported as "vigil" records: they extend no PCR of
//   their own.
//
// Pure: no TPM, device or file access; every input may be hostile.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_CEL_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_CEL_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigil/digest.h"
#include "vigil/records.h"
#include "vigil/status.h"

namespace vigil::attest {

inline constexpr const char* kCelContentVigil = "vigil";
inline constexpr const char* kCelContentImaTemplate = "ima_template";
inline constexpr const char* kVigilCelFormat = "vigil-log-v1";
// The module's defaults, used when the log does not say (no parameters
// MEASURE record held, e.g. after a TRIM).
inline constexpr uint32_t kDefaultPcrConfig = 16;
inline constexpr uint32_t kDefaultPcrEvents = 23;

struct CelDigest {
  uint16_t alg = 0;  // TPM_ALG_ID
  crypto::Digest digest;
};

// One CEL record.
struct CelEvent {
  uint64_t recnum = 0;
  uint32_t pcr = 0;
  std::vector<CelDigest> digests;  // empty only for vigil's "base" records
  std::string content_type;        // kCelContentVigil or kCelContentImaTemplate
  nlohmann::json content;
};

struct CelOptions {
  // pcr_events of the module; default: from the parameters MEASURE record
  // ("e=<n>"), else kDefaultPcrEvents. A value that contradicts the
  // parameters record is kMismatch.
  std::optional<uint32_t> pcr_events;
  // IMA's binary_runtime_measurements, exported whole when given.
  std::optional<std::span<const uint8_t>> ima_log;
};

struct CelLog {
  std::vector<CelEvent> events;  // recnum 0, 1, ... in order
  std::vector<uint16_t> banks;   // from the BASE record, in its order
  uint32_t pcr_config = kDefaultPcrConfig;
  uint32_t pcr_events = kDefaultPcrEvents;
  bool anchor_ima = false;     // the log's checkpoints (or parameters) say anchor=ima
  bool nonzero_start = false;  // some vigil PCR starts from a non-zero BASE value
  size_t config_extends = 0;
  size_t events_extends = 0;
  size_t ima_entries = 0;
  // The replay of `events` per PCR and bank (vigil PCRs from their start
  // values, IMA's from zero): what the TPM holds if the export is faithful.
  std::map<uint32_t, std::map<uint16_t, crypto::Digest>> replayed;
};

// Builds the CEL of `log` (as read from /dev/vigil or a saved file) and,
// with opts.ima_log, of IMA's log. Fails like replay::ReplayLog on a log
// that does not replay (kNotFound without a BASE, kMalformed for missing or
// inconsistent records, kUnsupported for a bank OpenSSL cannot hash), and
// like ima::ParseBinaryLog on a bad IMA log (kMalformed, kTruncated).
Result<CelLog> ExportCel(const std::vector<records::Record>& log, const CelOptions& opts);

// The CEL-JSON document: an array of the records, in recnum order.
nlohmann::json CelToJson(const CelLog& cel);
// The same, one record per line ("[\n{...},\n{...}\n]\n"): greppable,
// diffable, still one JSON document.
std::string CelToJsonText(const CelLog& cel);

// "sha1", "sha256", "sha384", "sha512", "sm3_256" as CEL-JSON names them;
// kUnsupported for other algorithms.
Result<std::string> CelAlgName(uint16_t alg);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_CEL_H_
