#include "vigil/ima.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <set>
#include <string_view>

namespace vigil::ima {
namespace {

constexpr size_t kSha1Len = 20;
constexpr uint16_t kSha1Alg = 0x0004;
constexpr uint16_t kSha256Alg = 0x000B;
// Bounds no real entry comes near; past them the input is not IMA's log.
constexpr uint32_t kMaxNameLen = 255;
constexpr uint32_t kMaxDataLen = 64u << 20;

Status Malformed(size_t index, const std::string& why) {
  return Status::Error(ErrorCode::kMalformed,
                       "IMA log entry " + std::to_string(index) + ": " + why);
}

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// The template data's fields (u32 len + bytes each).
Result<std::vector<std::span<const uint8_t>>> SplitFields(std::span<const uint8_t> data,
                                                          size_t index) {
  std::vector<std::span<const uint8_t>> fields;
  size_t at = 0;
  while (at < data.size()) {
    if (data.size() - at < 4) return Malformed(index, "a template field is cut short");
    const uint32_t len = LoadU32(data.data() + at);
    at += 4;
    if (len > data.size() - at) return Malformed(index, "a template field overruns the entry");
    fields.push_back(data.subspan(at, len));
    at += len;
  }
  return fields;
}

uint16_t AlgByName(std::string_view name);

// What IMA extends into bank `alg` for an entry (ima_pcr_extend()): the
// logged SHA-1 in the SHA-1 bank, H_alg(measured) in the others, all 0xff
// for a violation.
Result<crypto::Digest> Measurement(uint16_t alg, bool violation, const uint8_t* sha1,
                                   std::span<const uint8_t> measured) {
  if (violation) {
    VIGIL_ASSIGN_OR_RETURN(size_t size, crypto::DigestSize(alg));
    return crypto::Digest(size, 0xff);
  }
  if (alg == kSha1Alg) return crypto::Digest(sha1, sha1 + kSha1Len);
  return crypto::Hash(alg, measured);
}

// What IMA extends into bank `alg` when the kernel had no such hash at IMA's
// start (ima_calc_field_array_hash(): "a padded SHA1"): the logged SHA-1
// and zeros; a violation is all 0xff as in Measurement().
Result<crypto::Digest> PaddedMeasurement(uint16_t alg, bool violation, const uint8_t* sha1) {
  VIGIL_ASSIGN_OR_RETURN(size_t size, crypto::DigestSize(alg));
  if (violation) return crypto::Digest(size, 0xff);
  crypto::Digest d(size, 0);
  std::copy(sha1, sha1 + std::min(size, kSha1Len), d.begin());
  return d;
}

// SHA-1's bank is the logged digest itself; SHA-256 is built into every
// kernel with IMA (its default hash), so it is never padded.
bool MayBePadded(uint16_t alg) { return alg != kSha1Alg && alg != kSha256Alg; }

// One entry as it sits in the log: views into the input, checked.
struct ParsedEntry {
  uint32_t pcr = 0;
  const uint8_t* sha1 = nullptr;
  std::string_view tname;
  std::span<const uint8_t> data;                 // after the template name (its length dropped)
  std::vector<uint8_t> legacy;                   // "ima": d || name padded, what was hashed
  std::vector<std::span<const uint8_t>> fields;  // every template but "ima"
  bool violation = false;
  size_t total = 0;  // bytes of the entry in the log; 0: the input ends inside it

  std::span<const uint8_t> measured() const {
    return legacy.empty() ? data : std::span<const uint8_t>(legacy);
  }
};

// Parses the entry at the start of `e` (entry number `index`, for errors).
// Ok with total == 0 when `e` ends inside the entry.
Status ParseEntryAt(std::span<const uint8_t> e, size_t index, ParsedEntry* out) {
  *out = ParsedEntry();
  // u32 pcr, sha1[20], u32 name_len: 28 bytes before the name.
  if (e.size() < 28) return Status::Ok();
  const uint32_t pcr = LoadU32(e.data());
  const uint32_t name_len = LoadU32(e.data() + 24);
  if (pcr >= 24) return Malformed(index, "PCR " + std::to_string(pcr));
  if (name_len == 0 || name_len > kMaxNameLen) {
    return Malformed(index, "template name length " + std::to_string(name_len));
  }
  if (e.size() < 28 + name_len + 4) return Status::Ok();
  ParsedEntry p;
  p.pcr = pcr;
  p.sha1 = e.data() + 4;
  p.tname = std::string_view(reinterpret_cast<const char*>(e.data() + 28), name_len);
  p.violation = std::all_of(p.sha1, p.sha1 + kSha1Len, [](uint8_t b) { return b == 0; });

  // What IMA hashed for the entry (the template digest in every bank), and
  // the entry's length in the log.
  if (p.tname == "ima") {
    // The legacy template: d (20 bytes, no length), n (u32 strlen + name);
    // hashed as d || name padded with zeros to IMA_EVENT_NAME_LEN_MAX + 1.
    constexpr size_t kNameMax = 256;
    if (e.size() < 28 + name_len + 20 + 4) return Status::Ok();
    const uint32_t n_len = LoadU32(e.data() + 28 + name_len + 20);
    if (n_len >= kNameMax) {
      return Malformed(index, "legacy event name of " + std::to_string(n_len) + " bytes");
    }
    p.total = 28 + name_len + 20 + 4 + n_len;
    if (e.size() < p.total) return Status::Ok();
    p.data = e.subspan(28 + name_len, 20 + 4 + n_len);
    p.legacy.assign(e.data() + 28 + name_len, e.data() + 28 + name_len + 20);
    const uint8_t* name = e.data() + 28 + name_len + 24;
    p.legacy.insert(p.legacy.end(), name, name + n_len);
    p.legacy.resize(20 + kNameMax, 0);
  } else {
    const uint32_t data_len = LoadU32(e.data() + 28 + name_len);
    if (data_len > kMaxDataLen) {
      return Malformed(index, "template data length " + std::to_string(data_len));
    }
    p.total = 28 + name_len + 4 + size_t{data_len};
    if (e.size() < p.total) return Status::Ok();
    p.data = e.subspan(28 + name_len + 4, data_len);
  }
  // The logged SHA-1 digest must be the data's: otherwise the data (and a
  // record in it) would not be what PCR 10 holds.
  if (!p.violation) {
    auto h = crypto::Hash(kSha1Alg, p.measured());
    if (!h.ok()) return h.status();
    if (!std::equal(h->begin(), h->end(), p.sha1)) {
      return Malformed(index, "the template digest is not SHA-1 of the template data");
    }
  }
  // The fields (u32 len + bytes each) of every template but the legacy one,
  // checked before the entry counts.
  if (p.legacy.empty()) {
    auto split = SplitFields(p.data, index);
    if (!split.ok()) return split.status();
    p.fields = std::move(split).value();
  }
  *out = std::move(p);
  return Status::Ok();
}

// d-ng: "<alg>:\0" + digest; true when the digest is H_alg(content).
bool DigestFieldMatches(std::span<const uint8_t> d, std::span<const uint8_t> content) {
  const std::string_view dv(reinterpret_cast<const char*>(d.data()), d.size());
  const size_t colon = dv.find(':');
  if (colon == std::string_view::npos || colon + 2 > dv.size() || dv[colon + 1] != '\0') {
    return false;
  }
  const uint16_t alg = AlgByName(dv.substr(0, colon));
  if (alg == 0) return false;
  auto h = crypto::Hash(alg, content);
  return h.ok() && h->size() == d.size() - colon - 2 &&
         std::equal(h->begin(), h->end(), d.begin() + static_cast<ptrdiff_t>(colon + 2));
}

// "vigil-<8 hex>-<kind>-<seq>" as the module names its measurements.
bool ParseVigilName(std::string_view name, VigilEntry* out) {
  constexpr std::string_view kPrefix = "vigil-";
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  name.remove_prefix(kPrefix.size());
  if (name.size() < 9 || name[8] != '-') return false;
  const std::string_view inst = name.substr(0, 8);
  if (inst.find_first_not_of("0123456789abcdef") != std::string_view::npos) return false;
  name.remove_prefix(9);
  const size_t dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0) return false;
  const std::string_view kind = name.substr(0, dash);
  const std::string_view seq = name.substr(dash + 1);
  if (seq.empty() || seq.size() > 20 ||
      seq.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), n);
  if (ec != std::errc() || end != seq.data() + seq.size()) return false;  // overflow
  out->instance = std::string(inst);
  out->kind = std::string(kind);
  out->seq = n;
  return true;
}

std::string_view KindOf(uint16_t record_type) {
  switch (record_type) {
    case VIGIL_LOG_MEASURE:
      return "measure";
    case VIGIL_LOG_KEY:
      return "key";
    default:
      return "checkpoint";
  }
}

// The records the module measures through IMA with anchor=ima.
bool Anchored(uint16_t type) {
  return type == VIGIL_LOG_MEASURE || type == VIGIL_LOG_KEY || type == VIGIL_LOG_CHECKPOINT;
}

uint16_t AlgByName(std::string_view name) {
  if (name == "sha1") return kSha1Alg;
  if (name == "sha256") return 0x000B;
  if (name == "sha384") return 0x000C;
  if (name == "sha512") return 0x000D;
  return 0;
}

}  // namespace

std::string EntryName(std::span<const uint8_t> instance_id, uint16_t record_type, uint64_t seq) {
  std::string name = "vigil-";
  if (instance_id.size() >= 4) name += crypto::ToHex(instance_id.first(4));
  name += "-";
  name += KindOf(record_type);
  name += "-" + std::to_string(seq);
  return name;
}

Result<ImaLog> ImaLog::Create(std::vector<uint16_t> banks) {
  if (banks.empty()) return Status::Error(ErrorCode::kInvalidArgument, "no PCR bank to replay");
  std::vector<Bank> out;
  for (uint16_t alg : banks) {
    auto size = crypto::DigestSize(alg);
    if (!size.ok()) return size.status();
    out.push_back(NewBank(alg, crypto::Digest(*size, 0)));
  }
  return ImaLog(std::move(out));
}

ImaLog::Bank ImaLog::NewBank(uint16_t alg, crypto::Digest start) {
  Bank b;
  b.alg = alg;
  b.value = std::move(start);
  b.history.push_back(b.value);
  b.may_pad = MayBePadded(alg);
  if (b.may_pad) {
    b.padded_value = b.value;
    b.padded_history.push_back(b.value);
  }
  return b;
}

Result<ImaLog> ImaLog::Resume(const std::map<uint16_t, crypto::Digest>& pcr10, size_t entries) {
  if (pcr10.empty()) return Status::Error(ErrorCode::kInvalidArgument, "no PCR bank to replay");
  std::vector<Bank> out;
  for (const auto& [alg, value] : pcr10) {
    auto size = crypto::DigestSize(alg);
    if (!size.ok()) return size.status();
    if (value.size() != *size) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "PCR 10 value of the wrong size for bank " + crypto::AlgName(alg));
    }
    out.push_back(NewBank(alg, value));
  }
  ImaLog log(std::move(out));
  log.entries_ = entries;
  log.floor_ = entries;
  return log;
}

Status ImaLog::AddEarlierVigilEntries(std::vector<VigilEntry> earlier) {
  for (VigilEntry& v : earlier) {
    if (v.index >= floor_) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "an earlier IMA entry at index " + std::to_string(v.index) +
                               ", past the resume point " + std::to_string(floor_));
    }
    vigil_index_.push_back(v.index);
    vigil_.push_back(std::move(v));
  }
  return Status::Ok();
}

std::optional<crypto::Digest> ImaLog::ValueAfter(uint16_t alg, size_t entries) const {
  if (entries < floor_ || entries - floor_ >= banks_.front().history.size()) return std::nullopt;
  for (const Bank& b : banks_) {
    if (b.alg == alg) return b.history[entries - floor_];
  }
  return std::nullopt;
}

Status ImaLog::AddEntry(std::span<const uint8_t> e, size_t* used) {
  *used = 0;
  ParsedEntry p;
  if (Status st = ParseEntryAt(e, entries_, &p); !st.ok() || p.total == 0) return st;
  const uint32_t pcr = p.pcr;
  const uint8_t* sha1 = p.sha1;
  const bool violation = p.violation;
  const std::string_view tname = p.tname;
  const std::span<const uint8_t> measured = p.measured();
  const std::vector<std::span<const uint8_t>>& fields = p.fields;
  const size_t total = p.total;
  if (pcr == kImaPcr) {
    for (Bank& b : banks_) {
      auto measurement = Measurement(b.alg, violation, sha1, measured);
      if (!measurement.ok()) return measurement.status();
      auto next = crypto::Extend(b.alg, b.value, *measurement);
      if (!next.ok()) return next.status();
      b.value = std::move(*next);
      if (!b.may_pad) continue;
      auto padded = PaddedMeasurement(b.alg, violation, sha1);
      if (!padded.ok()) return padded.status();
      auto padded_next = crypto::Extend(b.alg, b.padded_value, *padded);
      if (!padded_next.ok()) return padded_next.status();
      b.padded_value = std::move(*padded_next);
    }
  }
  for (Bank& b : banks_) {
    b.history.push_back(b.value);
    if (b.may_pad) b.padded_history.push_back(b.padded_value);
  }

  // The module's records come only as ima_measure_critical_data() logs
  // them: template ima-buf (d-ng | n-ng | buf), the buffer itself, its
  // digest consistent with it. A file or key measurement with a vigil-like
  // name (a path, or a basename from a detached mount) is not the module's.
  if (!violation && tname == "ima-buf" && fields.size() == 3 && !fields[2].empty()) {
    std::string_view name(reinterpret_cast<const char*>(fields[1].data()), fields[1].size());
    if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
    VigilEntry v;
    if (ParseVigilName(name, &v) && DigestFieldMatches(fields[0], fields[2])) {
      v.pcr = pcr;
      v.record.assign(fields[2].begin(), fields[2].end());
      v.index = entries_;
      vigil_.push_back(std::move(v));
      vigil_index_.push_back(entries_);
    }
  }
  ++entries_;
  *used = total;
  return Status::Ok();
}

Status ImaLog::Append(std::span<const uint8_t> bytes) {
  pending_.insert(pending_.end(), bytes.begin(), bytes.end());
  size_t at = 0;
  for (;;) {
    size_t used = 0;
    if (Status st = AddEntry(std::span<const uint8_t>(pending_).subspan(at), &used); !st.ok()) {
      pending_.clear();
      return st;
    }
    if (used == 0) break;
    at += used;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(at));
  return Status::Ok();
}

Result<size_t> ImaLog::MatchPcr10(const std::map<uint16_t, crypto::Digest>& pcr10) {
  // The newest prefix at which every bank matches.
  const size_t n = banks_.front().history.size();
  for (size_t i = n; i-- > 0;) {
    bool all = true;
    for (const Bank& b : banks_) {
      auto it = pcr10.find(b.alg);
      if (it == pcr10.end()) {
        return Status::Error(ErrorCode::kInvalidArgument,
                             "no PCR 10 value for bank " + crypto::AlgName(b.alg));
      }
      if (b.history[i] != it->second && !(b.may_pad && b.padded_history[i] == it->second)) {
        all = false;
        break;
      }
    }
    if (!all) continue;
    for (Bank& b : banks_) {
      b.history.erase(b.history.begin(), b.history.begin() + i);
      if (b.may_pad) b.padded_history.erase(b.padded_history.begin(), b.padded_history.begin() + i);
    }
    floor_ += i;
    return floor_;
  }
  // Name the banks that differ now (all banks are given: checked above).
  std::string got;
  for (const Bank& b : banks_) {
    if (pcr10.at(b.alg) == b.value || (b.may_pad && pcr10.at(b.alg) == b.padded_value)) continue;
    got += (got.empty() ? "" : ", ") + crypto::AlgName(b.alg) + " TPM " +
           crypto::ToHex(pcr10.at(b.alg)).substr(0, 16) + "..., replay " +
           crypto::ToHex(b.value).substr(0, 16) + "...";
  }
  return Status::Error(ErrorCode::kMismatch,
                       "IMA's log (" + std::to_string(entries_) +
                           " entries) does not replay to PCR 10 at any point since entry " +
                           std::to_string(floor_) + " (" + got +
                           "): PCR 10 was extended outside IMA");
}

Status ImaLog::CheckModuleRecords(const std::vector<records::Record>& verified,
                                  std::span<const uint8_t> instance_id, size_t prefix) const {
  if (instance_id.size() < 4) {
    return Status::Error(ErrorCode::kInvalidArgument, "instance id shorter than 4 bytes");
  }
  const std::string inst = crypto::ToHex(instance_id.first(4));
  std::map<uint64_t, const VigilEntry*> by_seq;
  bool any = false;
  for (size_t i = 0; i < vigil_.size(); ++i) {
    const VigilEntry& v = vigil_[i];
    if (v.instance != inst) continue;
    any = true;
    if (vigil_index_[i] >= prefix) continue;  // measured after the PCR read
    if (v.pcr != kImaPcr) {
      // Only PCR 10 is replayed: a record anchored elsewhere is anchored
      // nowhere this check can see.
      return Status::Error(ErrorCode::kMismatch, "IMA measured this instance's seq " +
                                                     std::to_string(v.seq) + " into PCR " +
                                                     std::to_string(v.pcr) + ", not PCR 10");
    }
    auto [it, fresh] = by_seq.emplace(v.seq, &v);
    if (!fresh) {
      return Status::Error(ErrorCode::kMismatch, "IMA holds two entries for this instance's seq " +
                                                     std::to_string(v.seq));
    }
  }
  if (!any) {
    return Status::Error(ErrorCode::kUnavailable,
                         "IMA's log holds no entry of this module instance (vigil-" + inst +
                             "-...): no CRITICAL_DATA policy rule for label vigil "
                             "(ima_policy=critical_data)?");
  }
  if (verified.empty()) return Status::Ok();
  const uint64_t first = verified.front().seq();
  const uint64_t last = verified.back().seq();
  std::map<uint64_t, const records::Record*> log;
  for (const records::Record& r : verified) log.emplace(r.seq(), &r);

  auto same = [](const VigilEntry& v, const records::Record& r) -> bool {
    const auto bytes = r.bytes();
    return v.record.size() == bytes.size() && std::equal(bytes.begin(), bytes.end(), v.record.begin());
  };
  for (const auto& [seq, r] : log) {
    if (!Anchored(r->type())) continue;
    auto it = by_seq.find(seq);
    if (it == by_seq.end()) {
      return Status::Error(ErrorCode::kMismatch,
                           "log record seq " + std::to_string(seq) + " (" +
                               std::string(records::TypeName(r->type())) +
                               ") is not in IMA's log as " +
                               EntryName(instance_id, r->type(), seq));
    }
    if (it->second->kind != KindOf(r->type()) || !same(*it->second, *r)) {
      return Status::Error(ErrorCode::kMismatch,
                           "IMA's entry " + EntryName(instance_id, r->type(), seq) +
                               " holds another record than the log's seq " + std::to_string(seq));
    }
  }
  // An entry inside the log's range that the log does not hold.
  for (const auto& [seq, v] : by_seq) {
    if (seq < first || seq > last) continue;  // trimmed, or after the checkpoint
    auto it = log.find(seq);
    if (it == log.end() || !Anchored(it->second->type())) {
      return Status::Error(ErrorCode::kMismatch,
                           "IMA holds " + std::string("vigil-") + inst + "-" + v->kind + "-" +
                               std::to_string(seq) + ", which the module's log does not");
    }
  }
  return Status::Ok();
}

Result<std::vector<Entry>> ParseBinaryLog(std::span<const uint8_t> bytes) {
  std::vector<Entry> out;
  size_t at = 0;
  while (at < bytes.size()) {
    ParsedEntry p;
    VIGIL_RETURN_IF_ERROR(ParseEntryAt(bytes.subspan(at), out.size(), &p));
    if (p.total == 0) {
      return Status::Error(ErrorCode::kTruncated, "IMA log entry " + std::to_string(out.size()) +
                                                      " at byte " + std::to_string(at) +
                                                      " is cut short");
    }
    Entry e;
    e.pcr = p.pcr;
    std::copy(p.sha1, p.sha1 + kSha1Len, e.template_digest.begin());
    e.template_name = std::string(p.tname);
    e.template_data.assign(p.data.begin(), p.data.end());
    const auto measured = p.measured();
    e.hashed.assign(measured.begin(), measured.end());
    e.violation = p.violation;
    out.push_back(std::move(e));
    at += p.total;
  }
  return out;
}

Result<size_t> EntryOffset(std::span<const uint8_t> bytes, size_t n) {
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    if (at == bytes.size()) {
      return Status::Error(ErrorCode::kNotFound, "IMA's log holds " + std::to_string(i) +
                                                     " entries, not " + std::to_string(n));
    }
    ParsedEntry p;
    VIGIL_RETURN_IF_ERROR(ParseEntryAt(bytes.subspan(at), i, &p));
    if (p.total == 0) {
      return Status::Error(ErrorCode::kTruncated,
                           "IMA log entry " + std::to_string(i) + " is cut short");
    }
    at += p.total;
  }
  return at;
}

Result<crypto::Digest> BankDigest(const Entry& e, uint16_t alg) {
  return Measurement(alg, e.violation, e.template_digest.data(), e.hashed);
}

}  // namespace vigil::ima
