// Decoding of vigil records (events from the ring buffer, log records from
// /dev/vigil) with size and type validation. Bad input gives a typed error,
// never undefined behavior: bytes are copied, never reinterpreted in place.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_RECORDS_H_
#define VIGIL_USERSPACE_LIB_VIGIL_RECORDS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
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
std::optional<size_t> ExpectedSize(uint16_t type);
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
  std::span<const uint8_t> bytes() const { return bytes_; }

  // A copy of the body as T; nullopt if the record is not a T.
  template <typename T>
  std::optional<T> As() const {
    static_assert(std::is_trivially_copyable_v<T>);
    if (hdr_.type != RecordTypeOf<T>::kType || bytes_.size() != sizeof(T)) {
      return std::nullopt;
    }
    T out;
    std::memcpy(&out, bytes_.data(), sizeof(T));
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

 private:
  Record(const vigil_rec_hdr& hdr, std::vector<uint8_t> bytes)
      : hdr_(hdr), bytes_(std::move(bytes)) {}

  vigil_rec_hdr hdr_;
  std::vector<uint8_t> bytes_;
};

// Decodes a concatenation of records (a log read from /dev/vigil or a file).
// Stops with kTruncated when the input ends inside a record.
Result<std::vector<Record>> DecodeStream(std::span<const uint8_t> buf);

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
