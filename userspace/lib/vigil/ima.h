// IMA's runtime measurement list as the anchor of a module loaded with
// anchor=ima. The module measures every MEASURE, KEY and CHECKPOINT record
// with ima_measure_critical_data("vigil", "vigil-<instance>-<kind>-<seq>",
// record bytes): IMA appends an ima-buf entry holding the record itself and
// extends PCR 10, which locality 0 cannot reset. Checking the anchor is then:
//   1. IMA's binary log replays to the TPM's PCR 10, in every bank read
//      (the log may run ahead of the read: a prefix must match);
//   2. within that prefix, every anchored record of the verified module log
//      is there, byte for byte, and no entry of this module instance holds
//      a record the log does not.
// Pure: the caller reads the PCRs (before the log) and the log bytes; a
// remote verifier feeds a quote's PCR values the same way.
//
// Binary format (ima_fs.c, native byte order; x86 and arm64 are little
// endian, which the whole ABI assumes): u32 pcr, u8 sha1_template_digest[20],
// u32 name_len, name, then for every template but the legacy "ima" one:
// u32 data_len and the template data, the fields as IMA hashed them (u32
// len + bytes each); the legacy template has d (20 bytes) and n (u32 strlen
// + name), hashed as d || name padded to 256 bytes. An all-zero digest is a
// violation, extended as all 0xff. Bank values: SHA-1 extends the logged
// digest, which must be SHA-1 of what was hashed; every other bank
// H_bank(hashed data), except where the kernel had no such hash when IMA
// started (Debian 12's 6.1 builds SHA-384/512 as a module): IMA extends that
// bank with the logged SHA-1 zero-padded to the bank's size for the whole
// boot, so a bank other than SHA-1 and SHA-256 matches either way (SHA-256,
// which IMA always has, is only ever its own hash, and every bank given must
// match at the same point). The module's records are taken only from ima-buf
// entries (what ima_measure_critical_data() writes) named as the module
// names them, whose digest field is the buffer's: a file measurement named
// like one (a path, or a basename from a detached mount) is not the
// module's.
//
// Thread-safety: not thread-safe; one thread feeds an ImaLog.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_IMA_H_
#define VIGIL_USERSPACE_LIB_VIGIL_IMA_H_

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vigil/digest.h"
#include "vigil/records.h"
#include "vigil/status.h"

namespace vigil::ima {

inline constexpr uint32_t kImaPcr = 10;
inline constexpr const char* kBinaryLogPath =
    "/sys/kernel/security/ima/binary_runtime_measurements";

// One of the module's records as IMA holds it.
struct VigilEntry {
  std::string instance;  // 8 hex digits: the first 4 bytes of the instance id
  std::string kind;      // "measure", "key" or "checkpoint"
  uint64_t seq = 0;
  uint32_t pcr = 0;
  std::vector<uint8_t> record;  // the buf field: the record's bytes
  size_t index = 0;             // its place in IMA's list (0 = first entry)
};

// IMA's log, fed in pieces as read, replayed per bank as it goes.
class ImaLog {
 public:
  // `banks`: TPM alg ids to replay (those the PCR values will come in).
  static Result<ImaLog> Create(std::vector<uint16_t> banks);
  // The replay resumed at a verified point: `entries` entries of the list
  // were replayed to `pcr10` (one value per bank to replay). Indices, and
  // MatchPcr10's answer, still count from the list's first entry.
  static Result<ImaLog> Resume(const std::map<uint16_t, crypto::Digest>& pcr10, size_t entries);
  // The module's entries from before the resume point that the caller kept
  // (each index < the point), checked with the new ones by
  // CheckModuleRecords. kInvalidArgument for an index at or past the point.
  Status AddEarlierVigilEntries(std::vector<VigilEntry> earlier);
  // PCR 10 in bank `alg` after the first `entries` entries, while the replay
  // history holds that point (from the last match, or the start, on).
  std::optional<crypto::Digest> ValueAfter(uint16_t alg, size_t entries) const;

  // Parses what `bytes` completes (an entry split across reads is kept for
  // the next call). kMalformed when an entry cannot be IMA's.
  Status Append(std::span<const uint8_t> bytes);

  // The number of entries (from the start) after which PCR 10 held
  // `pcr10` in every bank given; kMismatch if no prefix since the previous
  // match reaches them, kInvalidArgument if a bank is missing. Replay
  // history before the returned point is dropped: later reads of PCR 10
  // cannot be older.
  Result<size_t> MatchPcr10(const std::map<uint16_t, crypto::Digest>& pcr10);

  // Checks the module instance's entries among the first `prefix` entries
  // against its verified log (see the file comment). kUnavailable when IMA
  // holds no entry of this instance at all (no CRITICAL_DATA policy rule),
  // kMismatch otherwise for anything missing or different.
  Status CheckModuleRecords(const std::vector<records::Record>& verified,
                            std::span<const uint8_t> instance_id, size_t prefix) const;

  size_t entries() const { return entries_; }
  bool partial() const { return !pending_.empty(); }
  const std::vector<VigilEntry>& vigil_entries() const { return vigil_; }

 private:
  struct Bank {
    uint16_t alg = 0;
    crypto::Digest value;                 // after all entries so far
    std::vector<crypto::Digest> history;  // value after entry floor_ + i
    // The same with the logged SHA-1 zero-padded (only `may_pad` banks).
    bool may_pad = false;
    crypto::Digest padded_value;
    std::vector<crypto::Digest> padded_history;
  };
  static Bank NewBank(uint16_t alg, crypto::Digest start);
  explicit ImaLog(std::vector<Bank> banks) : banks_(std::move(banks)) {}
  Status AddEntry(std::span<const uint8_t> entry, size_t* used);

  std::vector<Bank> banks_;
  size_t entries_ = 0;
  size_t floor_ = 0;  // history[0] is the value after `floor_` entries
  std::vector<uint8_t> pending_;
  std::vector<VigilEntry> vigil_;
  std::vector<size_t> vigil_index_;  // entry index of each vigil_ element
};

// The name IMA's entry carries for a record, as the module builds it.
std::string EntryName(std::span<const uint8_t> instance_id, uint16_t record_type, uint64_t seq);

// One entry of IMA's binary log, checked as ImaLog checks it (the logged
// SHA-1 is the template data's, the fields are well formed).
struct Entry {
  uint32_t pcr = 0;
  std::array<uint8_t, 20> template_digest{};  // as logged; all zero: a violation
  std::string template_name;
  // The bytes after the template name as logged: for every template but
  // "ima" the template data (its u32 length dropped); for "ima", d || u32
  // strlen(n) || n.
  std::vector<uint8_t> template_data;
  // What IMA hashed into the bank digests: the template data, or for "ima"
  // d || n padded with zeros to 256 bytes.
  std::vector<uint8_t> hashed;
  bool violation = false;
};

// Parses a whole binary log. kMalformed when an entry cannot be IMA's,
// kTruncated when the input ends inside an entry.
Result<std::vector<Entry>> ParseBinaryLog(std::span<const uint8_t> bytes);

// The byte offset of entry `n` in a binary log (the size of the first n
// entries; n = the number of entries gives the log's size). kNotFound
// when the log holds fewer than n entries, kMalformed / kTruncated as
// ParseBinaryLog.
Result<size_t> EntryOffset(std::span<const uint8_t> bytes, size_t n);

// The digest IMA extended into bank `alg` for `e`: the logged SHA-1 in the
// SHA-1 bank, H_alg(hashed) in the others, all 0xff for a violation.
Result<crypto::Digest> BankDigest(const Entry& e, uint16_t alg);

}  // namespace vigil::ima

#endif  // VIGIL_USERSPACE_LIB_VIGIL_IMA_H_
