#include "vigil/agents.h"

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace vigil::agents {
namespace {

constexpr char kBpffsRoot[] = "/sys/fs/bpf";

Result<UniqueFd> OpenPin(const std::string& dir, const char* name) {
  const std::string path = dir + "/" + name;
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Status::Error(ErrorCode::kNotFound,
                           "vigild is not running (" + path +
                               " is missing; start vigild, which pins its agent maps there)");
    }
    return Status::FromErrno(err, "bpf_obj_get " + path);
  }
  return UniqueFd(fd);
}

// Every key of a hash map (keys of size K).
template <typename K>
Result<std::vector<K>> Keys(int fd) {
  std::vector<K> keys;
  K key{};
  K next{};
  const K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return Status::FromErrno(errno, "iterating an agent map");
  return keys;
}

}  // namespace

Status PrepareBpffsDir(const std::string& dir) {
  const size_t slash = dir.find_last_of('/');
  const std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : dir.substr(0, slash));
  struct statfs fs {};
  if (::statfs(parent.c_str(), &fs) != 0) return Status::FromErrno(errno, "statfs " + parent);
  if (static_cast<unsigned long>(fs.f_type) != BPF_FS_MAGIC) {
    if (parent != kBpffsRoot) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "the pin directory's parent " + parent +
                               " is not a bpffs mount (mount one there first, or use a "
                               "directory under " + std::string(kBpffsRoot) + ")");
    }
    if (::mount("bpf", parent.c_str(), "bpf", 0, "mode=0700") != 0) {
      return Status::FromErrno(errno, "mounting bpffs on " + parent);
    }
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  return Status::Ok();
}

Result<UniqueFd> LockPinDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + dir);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "another vigild is running with --pin-dir " + dir +
                               " (its lock is held); stop it or use another --pin-dir");
    }
    return Status::FromErrno(err, "flock " + dir);
  }
  return fd;
}

Result<uint64_t> CgroupId(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return Status::FromErrno(errno, "statfs " + path);
  if (static_cast<unsigned long>(fs.f_type) != CGROUP2_SUPER_MAGIC) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         path + " is not a cgroup v2 directory (agents follow cgroup v2 ids)");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  return static_cast<uint64_t>(st.st_ino);
}

Result<Registry> Registry::Open(const std::string& pin_dir) {
  Registry r;
  VIGIL_ASSIGN_OR_RETURN(r.agents_, OpenPin(pin_dir, VIGIL_PIN_AGENTS));
  VIGIL_ASSIGN_OR_RETURN(r.cgroups_, OpenPin(pin_dir, VIGIL_PIN_AGENT_CGROUPS));
  VIGIL_ASSIGN_OR_RETURN(r.info_, OpenPin(pin_dir, VIGIL_PIN_AGENT_INFO));
  VIGIL_ASSIGN_OR_RETURN(r.announced_, OpenPin(pin_dir, VIGIL_PIN_AGENT_SEEN));
  VIGIL_ASSIGN_OR_RETURN(r.stats_, OpenPin(pin_dir, VIGIL_PIN_AGENT_STATS));
  VIGIL_ASSIGN_OR_RETURN(r.cpu_stats_, OpenPin(pin_dir, VIGIL_PIN_AGENT_CPU_STATS));
  VIGIL_ASSIGN_OR_RETURN(r.gen_, OpenPin(pin_dir, VIGIL_PIN_AGENT_GEN));
  return r;
}

Result<uint32_t> Registry::Register(const std::string& name, uint32_t how, uint32_t pid,
                                    uint64_t cgroup_id) {
  if (name.empty() || name.size() >= VIGIL_BPF_AGENT_NAME_LEN) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "agent name must have 1 to " +
                             std::to_string(VIGIL_BPF_AGENT_NAME_LEN - 1) + " characters");
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<AgentInfo> known, List());
  for (const AgentInfo& a : known) {
    if (a.name == name) return a.id;
  }
  // Ids are never reused while vigild runs: the announced map remembers
  // ids whose registration record is in the stream even after untrack.
  uint32_t max_id = 0;
  for (const AgentInfo& a : known) max_id = std::max(max_id, a.id);
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint32_t> announced, Keys<uint32_t>(announced_.get()));
  for (uint32_t id : announced) max_id = std::max(max_id, id);
  const uint32_t id = max_id + 1;

  vigil_bpf_agent_info info{};
  std::memcpy(info.name, name.data(), name.size());
  info.how = how;
  info.pid = pid;
  info.cgroup_id = cgroup_id;
  info.uid = static_cast<uint32_t>(::getuid());
  if (bpf_map_update_elem(info_.get(), &id, &info, BPF_NOEXIST) != 0) {
    return Status::FromErrno(errno, "registering agent " + name);
  }
  return id;
}

Status Registry::TrackPid(uint32_t agent_id, uint32_t pid) {
  if (bpf_map_update_elem(agents_.get(), &pid, &agent_id, BPF_ANY) != 0) {
    return Status::FromErrno(errno, "tracking pid " + std::to_string(pid));
  }
  return BumpGeneration();
}

Status Registry::TrackCgroup(uint32_t agent_id, uint64_t cgroup_id) {
  if (bpf_map_update_elem(cgroups_.get(), &cgroup_id, &agent_id, BPF_ANY) != 0) {
    return Status::FromErrno(errno, "tracking cgroup " + std::to_string(cgroup_id));
  }
  return BumpGeneration();
}

Status Registry::BumpGeneration() {
  const uint32_t zero = 0;
  // The step keeps the low bit free for "a cgroup is tracked", which spares
  // sched_switch the cgroup of every task while none is. Checked again
  // after the write: a concurrent editor may have written a bit computed
  // before our edit; the last writer's check sets it right.
  for (int attempt = 0; attempt < 16; ++attempt) {
    uint64_t gen = 0;
    if (bpf_map_lookup_elem(gen_.get(), &zero, &gen) != 0) {
      return Status::FromErrno(errno, "reading the agent generation");
    }
    VIGIL_ASSIGN_OR_RETURN(bool any_cgroup, AnyCgroupTracked());
    const uint64_t next =
        ((any_cgroup ? gen | VIGIL_AGENT_GEN_CGROUPS : gen & ~VIGIL_AGENT_GEN_CGROUPS) +
         VIGIL_AGENT_GEN_STEP);
    if (bpf_map_update_elem(gen_.get(), &zero, &next, BPF_ANY) != 0) {
      return Status::FromErrno(errno, "bumping the agent generation");
    }
    VIGIL_ASSIGN_OR_RETURN(bool still, AnyCgroupTracked());
    if (still == any_cgroup) return Status::Ok();
  }
  return Status::Error(ErrorCode::kInternal,
                       "the tracked cgroups kept changing while bumping the agent generation");
}

Result<bool> Registry::AnyCgroupTracked() const {
  uint64_t key = 0;
  if (bpf_map_get_next_key(cgroups_.get(), nullptr, &key) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::FromErrno(errno, "reading the tracked cgroups");
}

Result<std::vector<AgentInfo>> Registry::List() const {
  std::map<uint32_t, AgentInfo> by_id;
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint32_t> ids, Keys<uint32_t>(info_.get()));
  for (uint32_t id : ids) {
    vigil_bpf_agent_info info{};
    if (bpf_map_lookup_elem(info_.get(), &id, &info) != 0) continue;  // untracked meanwhile
    AgentInfo& a = by_id[id];
    a.id = id;
    a.name.assign(info.name, strnlen(info.name, sizeof(info.name)));
    a.how = info.how;
    a.pid = info.pid;
    a.cgroup_id = info.cgroup_id;
    a.uid = info.uid;
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint32_t> pids, Keys<uint32_t>(agents_.get()));
  for (uint32_t pid : pids) {
    uint32_t id = 0;
    if (bpf_map_lookup_elem(agents_.get(), &pid, &id) != 0) continue;  // exited meanwhile
    if (auto it = by_id.find(id); it != by_id.end()) it->second.pids.push_back(pid);
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint64_t> cgroups, Keys<uint64_t>(cgroups_.get()));
  for (uint64_t cg : cgroups) {
    uint32_t id = 0;
    if (bpf_map_lookup_elem(cgroups_.get(), &cg, &id) != 0) continue;
    if (auto it = by_id.find(id); it != by_id.end()) it->second.cgroup_ids.push_back(cg);
  }
  std::vector<AgentInfo> out;
  for (auto& [id, a] : by_id) {
    std::sort(a.pids.begin(), a.pids.end());
    out.push_back(std::move(a));
  }
  return out;
}

Status Registry::Untrack(const std::string& name) {
  VIGIL_ASSIGN_OR_RETURN(std::vector<AgentInfo> known, List());
  for (const AgentInfo& a : known) {
    if (a.name != name) continue;
    // Stop following the processes first, then forget the name.
    for (uint32_t pid : a.pids) bpf_map_delete_elem(agents_.get(), &pid);
    for (uint64_t cg : a.cgroup_ids) bpf_map_delete_elem(cgroups_.get(), &cg);
    VIGIL_RETURN_IF_ERROR(BumpGeneration());
    // Absent when it never ran.
    bpf_map_delete_elem(cpu_stats_.get(), &a.id);
    bpf_map_delete_elem(stats_.get(), &a.id);
    if (bpf_map_delete_elem(info_.get(), &a.id) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "untracking agent " + name);
    }
    return Status::Ok();
  }
  return Status::Error(ErrorCode::kNotFound, "no agent named " + name);
}

}  // namespace vigil::agents
