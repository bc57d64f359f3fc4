// What every JSON line vigild prints carries besides its own fields: the
// wall-clock time it was written (RFC 3339, UTC, nanoseconds), the host
// (/etc/machine-id) and the boot (/proc/sys/kernel/random/boot_id), so lines
// from many nodes and boots can be merged and ordered by a consumer. The
// identity is read once at start; a missing or malformed file gives null in
// every line (and one message at start), never a failure.
#ifndef VIGIL_USERSPACE_VIGILD_LINE_STAMP_H_
#define VIGIL_USERSPACE_VIGILD_LINE_STAMP_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "vigil/records.h"

namespace vigil::daemon {

inline constexpr char kMachineIdPath[] = "/etc/machine-id";
inline constexpr char kBootIdPath[] = "/proc/sys/kernel/random/boot_id";

struct HostIdentity {
  std::optional<std::string> host_id;  // 32 lowercase hex digits
  std::optional<std::string> boot_id;  // a UUID, 36 characters
  std::vector<std::string> problems;   // why a value is absent, for the log
};

// Reads both files. Content is accepted only in its documented format
// (machine-id(5): 32 hex digits; boot_id: 8-4-4-4-12 hex digits), trimmed of
// the trailing newline and lowercased.
HostIdentity ReadHostIdentity(const std::string& machine_id_path = kMachineIdPath,
                              const std::string& boot_id_path = kBootIdPath);

// "2026-12-07T02:30:37.123456789Z" for nanoseconds since the epoch.
std::string Rfc3339Utc(uint64_t real_ns);

// CLOCK_REALTIME in nanoseconds.
uint64_t RealtimeNs();

// Adds "time", "host_id" and "boot_id" to serialized JSON objects.
// Thread-safety: not thread-safe (it caches the formatted second); one per
// output thread.
class LineStamper {
 public:
  explicit LineStamper(const HostIdentity& identity, std::function<uint64_t()> clock = RealtimeNs);

  // `line` must be one serialized JSON object ("{...}", as format::Dump
  // writes it): the fields are spliced in before its closing brace, without
  // parsing it again (this runs once per record). Anything else is left as
  // it is.
  void Stamp(std::string& line);

 private:
  std::function<uint64_t()> clock_;
  std::string identity_;  // ,"host_id":...,"boot_id":...
  uint64_t cached_sec_ = UINT64_MAX;
  std::string cached_prefix_;  // "YYYY-MM-DDTHH:MM:SS" of cached_sec_
};

// vigild's output: JSON objects stamped (when a stamper is given) and
// written one per line to a stream. Record lines are serialized directly
// (format::AppendRecordJson) into a reused buffer; lines are handed to the
// stream in chunks of about kChunkBytes: through a file stream's own 8 KiB
// buffer, the write() every 25 lines cost more than formatting them.
// Flush() (vigild's Pipeline calls it every Tick and at Finish, before
// vigild flushes the stream) and the destructor hand over the rest.
// Thread-safety: not thread-safe; one per output stream.
class LineWriter {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;

  LineWriter(std::ostream& out, std::optional<LineStamper> stamper);
  ~LineWriter() { Flush(); }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Stamps `line` (a serialized JSON object) in place, so a caller that
  // keeps it too gets the same text, and queues it with its newline.
  void Write(std::string& line);
  // One record's line. Throws only what allocation throws.
  void WriteRecord(const records::Record& rec);
  // Hands the queued lines to the stream (which may buffer them further).
  void Flush();

 private:
  std::ostream& out_;
  std::optional<LineStamper> stamper_;
  std::string record_line_;  // reused: no allocation per record
  std::string pending_;      // lines not yet handed to out_
};

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_LINE_STAMP_H_
