// vigilctl baseline show | export: read the per-agent baselines vigild saved
// in its state directory (STATE_DIR/baselines.json, BaselineStore::Serialize()
// output). Read-only: the state file is never modified.
#ifndef VIGIL_USERSPACE_VIGILCTL_BASELINE_CMD_H_
#define VIGIL_USERSPACE_VIGILCTL_BASELINE_CMD_H_

#include <string>

namespace vigilctl {

inline constexpr const char* kDefaultStateDir = "/var/lib/vigil";
inline constexpr const char* kBaselineFileName = "baselines.json";

struct BaselineShowOptions {
  std::string state_dir = kDefaultStateDir;
  std::string agent;  // empty: every agent
  std::string role;   // empty: every role
  bool json = false;
};

// Exit codes, as in main.cc: 0 ok, 1 no state / unreadable / unknown agent or
// role / write failure, 6 malformed state (wrong format or version, corrupt,
// truncated; the message names the JSON pointer of the first bad member).
int CmdBaselineShow(const BaselineShowOptions& options);
// Validates the state and writes it re-serialized (canonical) to stdout
// (out empty or "-") or to `out` (atomically: temp file, fsync, rename; mode
// 0600; an existing non-regular file is refused).
int CmdBaselineExport(const std::string& state_dir, const std::string& out);

}  // namespace vigilctl

#endif  // VIGIL_USERSPACE_VIGILCTL_BASELINE_CMD_H_
