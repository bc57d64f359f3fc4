// The tracked-agent registry (vigil::agents): the BPF maps vigild pins
// under /sys/fs/bpf/vigil, read and written by vigilctl with libbpf's
// bpf_obj_get() + bpf_map_*_elem(). Needs root (CAP_BPF) and vigild's pins:
// missing after a clean stop (Open() says vigild is not running); still
// there after vigild was killed, when its pinned programs keep following
// the agents until the next vigild adopts them (vigil::bpf::AdoptStatus).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_AGENTS_H_
#define VIGIL_USERSPACE_LIB_VIGIL_AGENTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "agent_maps.h"  // bpf/: map layout and pin names
#include "vigil.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"

namespace vigil::agents {

inline constexpr char kDefaultPinDir[] = "/sys/fs/bpf/vigil";

struct AgentInfo {
  uint32_t id = 0;
  std::string name;
  uint32_t how = 0;  // enum vigil_agent_how
  uint32_t pid = 0;
  uint64_t cgroup_id = 0;
  uint32_t uid = 0;
  std::vector<uint32_t> pids;        // processes tracked by pid now
  std::vector<uint64_t> cgroup_ids;  // cgroups tracked now
};

// Creates `dir` on bpffs. Its parent must be bpffs already; the one
// exception is /sys/fs/bpf itself, which is mounted when missing (systemd
// usually mounts it; minimal systems lack it). Any other non-bpffs parent
// is kFailedPrecondition: vigild never mounts over arbitrary directories.
Status PrepareBpffsDir(const std::string& dir);

// Takes an exclusive flock on the pin directory itself (bpffs holds no
// regular files, so the directory is the lock file) for as long as the
// returned fd is open. kFailedPrecondition when another
// vigild holds it: a second vigild must not replace the first one's pins.
Result<UniqueFd> LockPinDir(const std::string& dir);

// The cgroup v2 id of a cgroup directory (its inode number on cgroup2).
Result<uint64_t> CgroupId(const std::string& path);

// Open handles on the pinned maps. Thread-safety: not thread-safe. Two
// vigilctl processes registering the same new name at the same time may
// both allocate an id; the last writer's info wins (documented limitation).
class Registry {
 public:
  // kNotFound with "vigild is not running" when the pins are missing.
  static Result<Registry> Open(const std::string& pin_dir = kDefaultPinDir);

  // The id of `name`, registering it (with how/pid/cgroup) when new.
  Result<uint32_t> Register(const std::string& name, uint32_t how, uint32_t pid,
                            uint64_t cgroup_id);
  Status TrackPid(uint32_t agent_id, uint32_t pid);
  Status TrackCgroup(uint32_t agent_id, uint64_t cgroup_id);
  Result<std::vector<AgentInfo>> List() const;
  // Removes the name and every pid/cgroup entry of it; kNotFound if unknown.
  Status Untrack(const std::string& name);

 private:
  Registry() = default;
  UniqueFd agents_;     // tgid -> id
  UniqueFd cgroups_;    // cgroup id -> id
  UniqueFd info_;       // id -> vigil_bpf_agent_info
  UniqueFd announced_;  // id -> 1 (ids used since vigild started)
  UniqueFd stats_;      // id -> last sample (freed on untrack)
  UniqueFd cpu_stats_;  // id -> per-CPU running totals (freed on untrack)
  UniqueFd gen_;        // [0]: bumped after every edit (BPF's per-task cache)

  // After an edit of agents_ or cgroups_: sched_switch caches each task's
  // agent until this changes. Read after the edit, so a concurrent editor's
  // lost increment still leaves a value no stale entry holds.
  Status BumpGeneration();
  // Whether vigil_agent_cgroups has an entry (the generation's low bit).
  Result<bool> AnyCgroupTracked() const;
};

}  // namespace vigil::agents

#endif  // VIGIL_USERSPACE_LIB_VIGIL_AGENTS_H_
