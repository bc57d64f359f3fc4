// vigild's state directory (default /var/lib/vigil): what survives a
// restart. Every file is written atomically (temp file, fsync, rename, fsync
// of the directory) or appended; every file is validated on load, and a
// corrupt one is an error naming the file and the member, never a silent
// reset. One vigild per directory (flock).
//
//   baselines.json    vigil::baseline::BaselineStore::Serialize()
//   verifier.json     the verifier's anchor and the agent names (below)
//   open-events.bin   committed events after the anchor, not yet decided:
//                     rewritten atomically at each save, appended after
//                     each poll in between
//   log-<instance>.bin the module's log records, as read (append-only), one
//                     file per module instance (load or boot): log seqs
//                     start again with each instance
//   verdicts.jsonl    one line per checkpoint verdict (append-only)
#ifndef VIGIL_USERSPACE_VIGILD_STATE_H_
#define VIGIL_USERSPACE_VIGILD_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"
#include "vigil/verify.h"

namespace vigil::daemon {

inline constexpr char kDefaultStateDir[] = "/var/lib/vigil";
inline constexpr char kBaselinesFile[] = "baselines.json";
inline constexpr char kVerifierFile[] = "verifier.json";
inline constexpr char kOpenEventsFile[] = "open-events.bin";
inline constexpr char kVerdictsFile[] = "verdicts.jsonl";
inline constexpr std::string_view kVerifierStateFormat = "vigil-verifier-state";
inline constexpr int kVerifierStateVersion = 1;

// Move-only. Thread-safety: not thread-safe.
class StateDir {
 public:
  // Creates the directory (0700) if missing and locks it. kFailedPrecondition
  // when another process holds the lock or the path is not a directory.
  static Result<StateDir> Open(const std::string& path);

  // nullopt when the file does not exist.
  Result<std::optional<std::string>> Read(const std::string& name) const;
  // The same file opened for reading (a regular file, not followed if a
  // symlink), for parsers that stream it instead of holding its text.
  struct OpenedFile {
    UniqueFd fd;
    uint64_t size = 0;
  };
  Result<std::optional<OpenedFile>> OpenRead(const std::string& name) const;
  // kDurable: the new content is on disk when this returns (file and
  // directory fsynced). kNeverTorn: the data is synced before the rename,
  // the directory is not: a crash leaves the old or the new content, whole,
  // and may lose this replacement (the remote verifier's per-evidence
  // state; one sync instead of two).
  enum class Sync { kDurable, kNeverTorn };
  Status WriteAtomic(const std::string& name, std::string_view content, Sync sync = Sync::kDurable);
  // The same, with the content handed over in pieces: `produce` calls its
  // argument once per piece (which returns false after a write error) and
  // returns false if it stopped early. Nothing replaces `name` unless every
  // piece was written.
  using PieceWriter = std::function<bool(std::string_view)>;
  Status WriteAtomicPieces(const std::string& name,
                           const std::function<bool(const PieceWriter&)>& produce,
                           Sync sync = Sync::kDurable);
  // `sync`: fdatasync before returning (power loss); without it the data
  // still survives the process being killed.
  Status Append(const std::string& name, std::string_view content, bool sync = true);
  // Cuts `name` to its first `size` bytes (and syncs it).
  Status Truncate(const std::string& name, uint64_t size);
  // Removes `name` (a regular file; the directory is fsynced after).
  Status Remove(const std::string& name);
  // Regular files whose names start with `prefix` and end with `suffix`,
  // with their modification times (ns), newest first.
  struct Entry {
    std::string name;
    int64_t mtime_ns = 0;
  };
  Result<std::vector<Entry>> List(std::string_view prefix, std::string_view suffix) const;
  // Renames `name` to `name.corrupt-<unix time>`; returns the new name.
  Result<std::string> MoveAside(const std::string& name);
  const std::string& path() const { return path_; }

 private:
  StateDir(std::string path, UniqueFd dir_fd) : path_(std::move(path)), dir_fd_(std::move(dir_fd)) {}
  std::string path_;
  UniqueFd dir_fd_;  // open and flocked while vigild runs
};

struct VerifierState {
  verify::Anchor anchor;         // instance_id names the module instance; key when known
  uint64_t log_saved_seq = 0;    // last log seq in the instance's log file (0: none)
  std::map<uint32_t, std::string> agent_names;  // agent_id -> name
  uint64_t saved_at_ns = 0;      // CLOCK_REALTIME
};

std::string SerializeVerifierState(const VerifierState& state);
// kMalformed / kTruncated / kUnsupported naming the first bad member.
Result<VerifierState> ParseVerifierState(std::string_view json);

// open-events.bin: committed events; those at or before `anchor_seq` are
// dropped (already covered by the anchor).
std::string SerializeOpenEvents(const std::vector<records::Record>& events);
// The saved log of one module instance: "log-<instance id in hex>.bin".
std::string LogFileName(std::span<const uint8_t> instance_id);

// Removes saved logs of other module instances than `current` (a
// LogFileName) so that at most `keep` remain, the current one included;
// the oldest (by modification time: the last append) go first. Returns the
// names removed. `keep` 0: nothing is removed.
Result<std::vector<std::string>> PruneInstanceLogs(StateDir& dir, const std::string& current,
                                                   size_t keep);

// A saved log as found at start: the complete records' bytes and the last
// log seq (0: none). A record cut short at the end (a crash during an
// append) is left out, so the file can be rewritten without it. kMalformed,
// naming the byte offset, when a record does not decode, log seqs do not
// increase, or a checkpoint names another module instance than
// `instance_id`.
// With `keep_log_seq` (non-zero) the record with that log seq is kept
// (the saved anchor's checkpoint, which the module may have trimmed).
struct SavedLog {
  size_t scanned_bytes = 0;  // all of them: more than complete_bytes after a cut-short record
  size_t complete_bytes = 0;
  uint64_t last_seq = 0;
  size_t records = 0;
  std::optional<records::Record> kept;  // the record at keep_log_seq, if the file has it
};
Result<SavedLog> ScanSavedLog(std::string_view bytes, std::span<const uint8_t> instance_id,
                              uint64_t keep_log_seq = 0);
// The same over an open file read in pieces of `piece_bytes`: the file
// grows with every checkpoint of the instance and is never held whole.
Result<SavedLog> ScanSavedLogFile(int fd, std::span<const uint8_t> instance_id,
                                  size_t piece_bytes = 1 << 20, uint64_t keep_log_seq = 0);

// A record cut short at the very end (the journal is appended without fsync,
// so a crash can leave one) is dropped and counted; anything else that does
// not decode is an error.
struct OpenEvents {
  std::vector<records::Record> events;
  size_t dropped_tail_bytes = 0;
};
Result<OpenEvents> ParseOpenEvents(std::string_view bytes, uint64_t anchor_seq);

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_STATE_H_
