// Evidence format v1: what a node sends a remote verifier for one nonce.
// JSON, one object, UTF-8; or the same document in CBOR (RFC 8949, below).
// Pure (nlohmann_json, OpenSSL's base64).
//
// Trust: only `quote.attest` is signed (by the AK, checked with
// attest::CheckQuote). Every other field is a claim the verifier checks
// against something signed: `pcrs` against the quote's pcrDigest
// (attest::CheckPcrs), `log.records` and `ima.entries` by replaying them to
// those PCR values, `key_certification` by the AK's signature, `module`
// against the log's own records. The clock, reset and restart counts, the
// PCR selection and the firmware version are NOT fields here: they are read
// from the signed attest only.
//
// Fields (all required unless marked optional; no other key is accepted, a
// key appearing twice in one object is refused):
//
//   version            integer, 2 (written) or 1 (read). Another number:
//                      kUnsupported. The versions differ only in `ima`:
//                      version 1 carries IMA's whole list (from_entry 0);
//                      version 2 carries the entries from the verifier's
//                      point on (the nonce answer's ima_from_entry).
//   node               string, 1..256 bytes: the node's id; the intended
//                      value is the EK's TPM name in lowercase hex
//                      (nameAlg || H(EK public)). Informational: the
//                      verifier finds its enrolment by it, and trusts the
//                      AK enrolled for it, not this string.
//   nonce              hex, 1..64 bytes: the verifier's nonce, echoed. It
//                      must equal what the verifier issued; the quote's
//                      extraData must equal it too.
//   quote              object:
//     attest           hex: the marshalled TPMS_ATTEST of TPM2_Quote (the
//                      contents of TPM2B_ATTEST, without its size), <= 4096
//                      bytes. What tpm2_quote -m writes.
//     signature        hex: the marshalled TPMT_SIGNATURE (sigAlg, hash,
//                      signature), <= 4096 bytes. What tpm2_quote -s writes.
//   pcrs               array (<= 384 elements) of objects, one per quoted
//                      PCR, no (alg, pcr) twice:
//     alg              "sha1" | "sha256" | "sha384" | "sha512" | "sm3_256"
//     pcr              integer 0..23
//     value            hex, exactly the bank's digest size
//   anchor             "pcr" | "ima": where the module anchors its
//                      checkpoints (its anchor= parameter). "pcr": the log
//                      replays into pcr_config / pcr_events; "ima": into
//                      IMA's list and PCR 10.
//   log                object: the module's log records since the
//                      verifier's last accepted point:
//     from_seq         integer >= 1: log seq of the first record in
//                      `records` (the next expected one when empty)
//     records          base64 (RFC 4648, padded, no line breaks) of the
//                      raw records exactly as read from /dev/vigil,
//                      concatenated; may be empty; <= 64 MiB decoded.
//     replay_prefix    optional base64 (anchor "pcr" only): the records
//                      before from_seq since the module's newest BASE, which
//                      the PCR replay needs and the verifier already
//                      decided (checked again only by that replay).
//   events             object: the events of the checkpoints in `log`:
//     after_seq        integer >= 0: every event with a greater seq, up to
//                      the last checkpoint's last_seq, as vigild saved them
//     records          base64 of the raw event records (vigild --raw-out),
//                      concatenated; may be empty; <= 64 MiB decoded.
//   ima                optional object (anchor "ima"): IMA's binary runtime
//                      measurements since the verifier's last point:
//     from_entry       integer >= 0: index in IMA's list of the first entry
//                      (version 2: exactly the verifier's point in this
//                      boot, 0 in a new boot; version 1: 0, the whole list)
//     entries          base64 of the binary entries as read from
//                      binary_runtime_measurements; <= 64 MiB decoded.
//   key_certification  optional object: the module's checkpoint key
//                      certified by the AK (TPM2_Certify / CertifyCreation):
//     key_public       hex: marshalled TPM2B_PUBLIC of the checkpoint key
//     creation_data    hex: marshalled TPM2B_CREATION_DATA (may be empty)
//     attest           hex: marshalled TPMS_ATTEST of the certification
//     signature        hex: marshalled TPMT_SIGNATURE by the AK
//                      (each <= 4096 bytes)
//   module             object, from the module's GET_INFO (claims):
//     instance         hex, 16 bytes: the module's instance id; the log's
//                      records must carry it
//     tpm_flags        integer: VIGIL_TPM_* bits (PRESENT 1, KEY 2,
//                      REQUIRED 4, DEV_ANCHOR 8, SEALED 16, WINDOW_OPEN 32)
//     pcr_config       integer 0..23: PCR of the configuration records
//     pcr_events       integer 0..23: PCR of the checkpoints (anchor pcr)
//     banks            array of alg names (<= 8): the banks the module
//                      extends
//
// Integers are JSON integers (no fraction, no exponent, not negative) within
// 64 bits; base64 must be canonical (what EVP_EncodeBlock writes); hex is
// even-length, either case (written lowercase). The whole text is at most
// kMaxEvidenceBytes. Errors: kUnsupported for another version; kMalformed
// naming the field ("evidence: log.records: ...") for anything else.
//
// CBOR: the same document, the same keys, versions and bounds, with every
// hex and base64 field a byte string (major type 2) of the raw bytes
// instead; text strings (node, alg, anchor, banks) must be UTF-8; integers
// unsigned; no tags; the map of the whole evidence first (its first byte
// 0xa0..0xbf: how a reader tells CBOR from JSON, which never starts so).
// A key twice in one map is refused like in JSON. What `vigilctl attest
// push` sends: no base64 to encode or scan (a 60 KB JSON evidence takes
// nlohmann's lexer ~550 us, its 45 KB of CBOR ~100 us: docs/benchmarks.md).
//
// Thread-safety: pure functions.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_EVIDENCE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_EVIDENCE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/attest/key_certification.h"
#include "vigil/attest/quote.h"
#include "vigil/status.h"

namespace vigil::attest {

inline constexpr uint32_t kEvidenceVersion = 2;     // written
inline constexpr uint32_t kMinEvidenceVersion = 1;  // still read (IMA's whole list)
inline constexpr size_t kMaxLogBytes = 64u << 20;  // log.records, decoded
inline constexpr size_t kMaxImaBytes = 64u << 20;  // ima.entries, decoded
inline constexpr size_t kMaxEventsBytes = 64u << 20;  // events.records, decoded
inline constexpr size_t kMaxTpmBlobBytes = 4096;   // each marshalled TPM structure
inline constexpr size_t kMaxNodeIdBytes = 256;
inline constexpr size_t kMaxEvidencePcrs = 16 * 24;  // 16 banks x 24 PCRs
inline constexpr size_t kMaxModuleBanks = 8;         // VIGIL_MAX_BANKS
// Two full base64 segments plus room for the rest.
inline constexpr size_t kMaxEvidenceBytes =
    2 * 4 * ((kMaxLogBytes + 2) / 3) + 4 * ((kMaxImaBytes + 2) / 3) +
    4 * ((kMaxEventsBytes + 2) / 3) + (1u << 20);

enum class AnchorKind { kPcr, kIma };

struct Evidence {
  struct Quote {
    std::vector<uint8_t> attest;
    std::vector<uint8_t> signature;
    bool operator==(const Quote&) const = default;
  };
  struct Log {
    uint64_t from_seq = 1;
    std::vector<uint8_t> records;
    std::vector<uint8_t> replay_prefix;
    bool operator==(const Log&) const = default;
  };
  struct Ima {
    uint64_t from_entry = 0;
    std::vector<uint8_t> entries;
    bool operator==(const Ima&) const = default;
  };
  using KeyCertification = attest::KeyCertification;
  struct Module {
    std::array<uint8_t, 16> instance{};
    uint32_t tpm_flags = 0;
    uint32_t pcr_config = 0;
    uint32_t pcr_events = 0;
    std::vector<uint16_t> banks;  // TPM alg ids
    bool operator==(const Module&) const = default;
  };

  uint32_t version = kEvidenceVersion;
  std::string node;
  std::vector<uint8_t> nonce;
  Quote quote;
  std::vector<PcrValue> pcrs;
  AnchorKind anchor = AnchorKind::kPcr;
  Log log;
  uint64_t events_after = 0;
  std::vector<uint8_t> events;
  std::optional<Ima> ima;
  std::optional<KeyCertification> key_certification;
  Module module;
  bool operator==(const Evidence&) const = default;
};

// The JSON text (compact, keys in a fixed order). The caller keeps the
// fields within the limits above; ParseEvidence refuses what is not.
std::string SerializeEvidence(const Evidence& evidence);
// The CBOR bytes of the same document (keys in the same order).
std::string SerializeEvidenceCbor(const Evidence& evidence);
// Either encoding: CBOR when LooksLikeCbor(bytes), JSON otherwise.
Result<Evidence> ParseEvidence(std::string_view bytes);
bool LooksLikeCbor(std::string_view bytes);

// Canonical base64 through OpenSSL (EVP_EncodeBlock / EVP_DecodeBlock):
// padded, no whitespace. Decode refuses anything EncodeBase64 would not
// have written (kMalformed), and more than `max_bytes` decoded.
std::string EncodeBase64(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> DecodeBase64(std::string_view text, size_t max_bytes);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_EVIDENCE_H_
