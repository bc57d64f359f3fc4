// Decoding of vigil records (events from the ring buffer, log records from
// /dev/vigil) with size and type validation. Bad input gives a typed error,
// never undefined behavior: bytes are copied, never reinterpreted in place.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_RECORDS_H_
#define VIGIL_USERSPACE_LIB_VIGIL_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "vigil.h"  // include/uapi: the ABI
#include "vigil/status.h"

namespace vigil::records {

// The struct size a record of `type` must have, or nullopt for unknown types.
// Inline: every decoded record asks.
inline std::optional<size_t> ExpectedSize(uint16_t type) {
  switch (type) {
    case VIGIL_EV_EXEC:
      return sizeof(vigil_ev_exec);
    case VIGIL_EV_EXIT:
      return sizeof(vigil_ev_exit);
    case VIGIL_EV_USER:
      return sizeof(vigil_ev_user);
    case VIGIL_EV_FORK:
      return sizeof(vigil_ev_fork);
    case VIGIL_EV_AGENT:
      return sizeof(vigil_ev_agent);
    case VIGIL_EV_SAMPLE:
      return sizeof(vigil_ev_sample);
    case VIGIL_LOG_MEASURE:
      return sizeof(vigil_log_measure);
    case VIGIL_LOG_KEY:
      return sizeof(vigil_log_key);
    case VIGIL_LOG_CHECKPOINT:
      return sizeof(vigil_log_checkpoint);
    case VIGIL_LOG_SIGNATURE:
      return sizeof(vigil_log_signature);
    case VIGIL_LOG_EVENT:
      return sizeof(vigil_log_event);
    case VIGIL_LOG_BASE:
      return sizeof(vigil_log_base);
    default:
      return std::nullopt;
  }
}

// "exec", "exit", "measure", ...; "unknown" for others.
std::string_view TypeName(uint16_t type);
bool IsEvent(uint16_t type);

// Maps a record struct to its type number.
template <typename T>
struct RecordTypeOf;
template <>
struct RecordTypeOf<vigil_ev_exec> {
  static constexpr uint16_t kType = VIGIL_EV_EXEC;
};
template <>
struct RecordTypeOf<vigil_ev_exit> {
  static constexpr uint16_t kType = VIGIL_EV_EXIT;
};
template <>
struct RecordTypeOf<vigil_ev_user> {
  static constexpr uint16_t kType = VIGIL_EV_USER;
};
template <>
struct RecordTypeOf<vigil_ev_fork> {
  static constexpr uint16_t kType = VIGIL_EV_FORK;
};
template <>
struct RecordTypeOf<vigil_ev_agent> {
  static constexpr uint16_t kType = VIGIL_EV_AGENT;
};
template <>
struct RecordTypeOf<vigil_ev_sample> {
  static constexpr uint16_t kType = VIGIL_EV_SAMPLE;
};
template <>
struct RecordTypeOf<vigil_log_measure> {
  static constexpr uint16_t kType = VIGIL_LOG_MEASURE;
};
template <>
struct RecordTypeOf<vigil_log_key> {
  static constexpr uint16_t kType = VIGIL_LOG_KEY;
};
template <>
struct RecordTypeOf<vigil_log_checkpoint> {
  static constexpr uint16_t kType = VIGIL_LOG_CHECKPOINT;
};
template <>
struct RecordTypeOf<vigil_log_signature> {
  static constexpr uint16_t kType = VIGIL_LOG_SIGNATURE;
};
template <>
struct RecordTypeOf<vigil_log_event> {
  static constexpr uint16_t kType = VIGIL_LOG_EVENT;
};
template <>
struct RecordTypeOf<vigil_log_base> {
  static constexpr uint16_t kType = VIGIL_LOG_BASE;
};

// One validated record: its exact bytes (hdr.size of them) and header.
// Thread-safety: a value type; const methods are safe concurrently.
class Record {
 public:
  const vigil_rec_hdr& hdr() const { return hdr_; }
  uint16_t type() const { return hdr_.type; }
  uint64_t seq() const { return hdr_.seq; }
  bool committed() const { return (hdr_.flags & VIGIL_REC_F_COMMITTED) != 0; }
  std::span<const uint8_t> bytes() const { return {data(), size_}; }

  // A copy of the body as T; nullopt if the record is not a T.
  template <typename T>
  std::optional<T> As() const {
    static_assert(std::is_trivially_copyable_v<T>);
    if (hdr_.type != RecordTypeOf<T>::kType || size_ != sizeof(T)) {
      return std::nullopt;
    }
    T out;
    std::memcpy(&out, data(), sizeof(T));
    return out;
  }

  // Builds a record from a struct whose header is already filled; validated
  // like decoded input (used by tests and tools that synthesize records).
  template <typename T>
  static Result<Record> FromStruct(const T& rec) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&rec);
    return Decode(std::span<const uint8_t>(p, sizeof(T)));
  }

  // Validates and copies exactly one record from the start of `buf`
  // (trailing bytes are ignored; hdr.size says where the record ends).
  static Result<Record> Decode(std::span<const uint8_t> buf);

  Record(const Record& other) { CopyFrom(other); }
  Record& operator=(const Record& other) {
    if (this != &other) CopyFrom(other);
    return *this;
  }
  Record(Record&& other) noexcept { MoveFrom(other); }
  Record& operator=(Record&& other) noexcept {
    if (this != &other) MoveFrom(other);
    return *this;
  }
  ~Record() = default;

 private:
  // Lets Result<Record> build a decoded record in place while the
  // constructor stays out of reach of everyone else.
  struct Private {
    explicit Private() = default;
  };

 public:
  Record(Private, const vigil_rec_hdr& hdr, std::span<const uint8_t> bytes) : hdr_(hdr) {
    Assign(bytes);
  }

 private:
  // Events (up to 328 bytes, the exec record) live inline: decoding one
  // record per ring buffer sample must not cost a heap block each. Larger
  // records (user events, log records) go to the heap.
  static constexpr size_t kInline = 328;

  const uint8_t* data() const { return heap_ ? heap_.get() : inline_.data(); }
  void Assign(std::span<const uint8_t> bytes) {
    size_ = static_cast<uint32_t>(bytes.size());
    if (bytes.size() <= kInline) {
      heap_.reset();
      std::memcpy(inline_.data(), bytes.data(), bytes.size());
    } else {
      heap_ = std::make_unique_for_overwrite<uint8_t[]>(bytes.size());
      std::memcpy(heap_.get(), bytes.data(), bytes.size());
    }
  }
  void CopyFrom(const Record& other) {
    hdr_ = other.hdr_;
    Assign(other.bytes());
  }
  void MoveFrom(Record& other) {
    hdr_ = other.hdr_;
    size_ = other.size_;
    if (other.heap_) {
      heap_ = std::move(other.heap_);
    } else {
      heap_.reset();
      std::memcpy(inline_.data(), other.inline_.data(), size_);
    }
  }

  vigil_rec_hdr hdr_{};
  uint32_t size_ = 0;
  std::unique_ptr<uint8_t[]> heap_;
  std::array<uint8_t, kInline> inline_;
};

// Decodes a concatenation of records (a log read from /dev/vigil or a file).
// Stops with kTruncated when the input ends inside a record.
Result<std::vector<Record>> DecodeStream(std::span<const uint8_t> buf);

// The records before the first that does not decode, and why it stopped
// (ok when all of `buf` decoded; the message names the byte offset): a
// stream that goes bad part way still delivers what came before.
struct StreamPrefix {
  std::vector<Record> records;
  Status stopped = Status::Ok();
};
StreamPrefix DecodeStreamPrefix(std::span<const uint8_t> buf);

// The committed user event a LOG_EVENT record carries (its `ev` part, the
// bytes the module chained), validated like any event.
Result<Record> EventFromLogCopy(const Record& log_event);

// A fixed-size char array field as a string, stopping at the first NUL.
template <size_t N>
std::string FieldString(const char (&field)[N]) {
  size_t len = 0;
  while (len < N && field[len] != '\0') ++len;
  return std::string(field, len);
}

}  // namespace vigil::records

#endif  // VIGIL_USERSPACE_LIB_VIGIL_RECORDS_H_
