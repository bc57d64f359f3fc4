#include "vigil/collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "vigil/agents.h"
#include "vigil/device.h"
#include "vigil_bpf.skel.h"

namespace vigil::bpf {
namespace {

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfDeleter>;

bool g_libbpf_verbose = false;

int PrintLibbpf(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG && !g_libbpf_verbose) return 0;
  return std::vfprintf(stderr, fmt, ap);
}

Result<std::vector<uint64_t>> ReadPerCpuArray(int map_fd, uint32_t entries) {
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return Status::FromLibbpf(ncpus, "libbpf_num_possible_cpus");
  std::vector<uint64_t> totals(entries);
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpus));
  for (uint32_t key = 0; key < entries; ++key) {
    if (bpf_map_lookup_elem(map_fd, &key, per_cpu.data()) != 0) {
      return Status::FromErrno(errno, "reading a per-CPU counter map");
    }
    for (uint64_t v : per_cpu) totals[key] += v;
  }
  return totals;
}

// The marker pinned at <pin_dir>/maps/vigil_meta (bpffs holds no regular
// files): a one-entry array describing the pinned instance. Bump
// kPinLayoutVersion when a pinned map keeps its size but changes meaning:
// an adopter then reuses nothing (and drains the old ring buffer).
constexpr uint32_t kPinMagic = 0x4c474956;  // "VIGL"
// 2: per-CPU agent statistics; slot and sample times in run time and jiffies.
constexpr uint32_t kPinLayoutVersion = 2;
constexpr char kMetaName[] = "vigil_meta";
constexpr char kMapsSub[] = "maps";
constexpr char kLinksSub[] = "links";

struct PinMeta {
  uint32_t magic;
  uint32_t layout_version;
  uint32_t ringbuf_bytes;
  uint32_t owner_pid;       // the collector that wrote it last
  uint64_t generation;      // 1 at a fresh start, +1 per adoption
  uint64_t written_boot_ns;  // CLOCK_BOOTTIME when written
};

uint64_t NowNs(clockid_t clock = CLOCK_MONOTONIC) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

Result<bpf_map_info> MapInfo(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    return Status::FromErrno(errno, "reading a pinned map's info");
  }
  return info;
}

// Names of the entries of a directory (none when it does not exist).
std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

Status MkdirBpffs(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  return Status::Ok();
}

}  // namespace

// What PrepareAdoption() found and SwitchOver() acts on.
struct Collector::PinPlan {
  struct MapPin {
    bpf_map* map = nullptr;
    std::string path;
    bool reused = false;  // the old pinned map is the skeleton's map now
  };
  struct OldLink {
    std::string name;  // the program's name
    std::string path;
    UniqueFd fd;  // holds the link (and its program) until replaced
  };
  std::string dir;
  std::vector<MapPin> maps;
  std::vector<OldLink> old_links;
  UniqueFd old_ring;  // an old ring buffer that is not reused: drained
  UniqueFd meta;      // the old marker, reused when compatible
  uint64_t old_generation = 0;  // the marker's
  uint64_t my_gen = 0;          // vigil_my_gen of the new programs
  bool gate = false;  // the old .bss (vigil_active_gen) is reused: switch by flipping it
  uint32_t old_ring_bytes = 0;
  uint32_t new_ring_bytes = 0;
  bool found = false;
  std::string why_not_reused;  // first reason a map was not reused
};

void SetLibbpfVerbosity(bool verbose) {
  g_libbpf_verbose = verbose;
  libbpf_set_print(PrintLibbpf);
}

uint64_t CollectorCounters::TotalDrops() const {
  uint64_t total = 0;
  for (uint64_t d : drops) total += d;
  return total;
}

const char* BpfErrorName(unsigned index) {
  switch (index) {
    case VIGIL_BPF_ERR_RESERVE:
      return "ringbuf_full";
    case VIGIL_BPF_ERR_COMMIT:
      return "commit_failed";
    case VIGIL_BPF_ERR_DROP_REPORT:
      return "drop_report_failed";
    case VIGIL_BPF_ERR_READ:
      return "read_failed";
    case VIGIL_BPF_ERR_EXIT_DEDUP:
      return "exit_dedup_failed";
    case VIGIL_BPF_ERR_AGENT_MAP:
      return "agent_map_full";
    case VIGIL_BPF_ERR_AGENT_INFO:
      return "agent_without_name";
    case VIGIL_BPF_ERR_HW_READ:
      return "hw_read_failed";
    default:
      return "unknown";
  }
}

Result<ModuleKfuncs> DetectModuleKfuncs(const std::string& module_btf) {
  ModuleKfuncs found;
  if (::access(module_btf.c_str(), F_OK) != 0) {
    if (errno == ENOENT) return found;  // module not loaded
    return Status::FromErrno(errno, "access " + module_btf);
  }
  BtfPtr vmlinux(btf__load_vmlinux_btf());
  if (!vmlinux) return Status::FromLibbpf(-errno, "loading the kernel's BTF");
  BtfPtr module(btf__parse_split(module_btf.c_str(), vmlinux.get()));
  if (!module) return Status::FromLibbpf(-errno, "parsing " + module_btf);
  found.commit = btf__find_by_name_kind(module.get(), "vigil_commit", BTF_KIND_FUNC) > 0;
  found.drop = btf__find_by_name_kind(module.get(), "vigil_drop", BTF_KIND_FUNC) > 0;
  found.alive = btf__find_by_name_kind(module.get(), "vigil_alive", BTF_KIND_FUNC) > 0;
  return found;
}

std::string_view AuditKindName(AuditFinding::Kind k) {
  switch (k) {
    case AuditFinding::Kind::kForeignProgram:
      return "foreign_program";
    case AuditFinding::Kind::kExtraLink:
      return "extra_link";
    case AuditFinding::Kind::kGeneration:
      return "producers_off";
    case AuditFinding::Kind::kLinkPin:
      return "link_pin";
    case AuditFinding::Kind::kReplaced:
      return "program_replaced";
  }
  return "unknown";
}

namespace {

struct ProgInfo {
  uint32_t id = 0;
  std::string name;
  std::vector<uint32_t> map_ids;
};

// Every loaded BPF program with the maps it uses (two calls: the kernel
// says how many map ids there are, then fills them).
std::vector<ProgInfo> LoadedPrograms() {
  std::vector<ProgInfo> out;
  uint32_t id = 0;
  while (bpf_prog_get_next_id(id, &id) == 0) {
    UniqueFd fd(bpf_prog_get_fd_by_id(id));
    if (!fd.valid()) continue;  // gone meanwhile
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    ProgInfo p;
    p.id = info.id;
    p.name = info.name;
    const uint32_t nr_maps = info.nr_map_ids;
    if (nr_maps != 0) {
      p.map_ids.resize(nr_maps);
      bpf_prog_info again{};
      again.nr_map_ids = nr_maps;
      again.map_ids = reinterpret_cast<uint64_t>(p.map_ids.data());
      len = sizeof(again);
      if (bpf_obj_get_info_by_fd(fd.get(), &again, &len) != 0) p.map_ids.clear();
      p.map_ids.resize(std::min(nr_maps, again.nr_map_ids));
    }
    out.push_back(std::move(p));
  }
  return out;
}

uint32_t ProgId(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  return fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

}  // namespace

std::vector<AuditFinding> Collector::Audit() const {
  std::vector<AuditFinding> out;
  if (!skel_) return out;
  std::set<uint32_t> our_maps;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, skel_->obj) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_map__fd(map) >= 0 && bpf_obj_get_info_by_fd(bpf_map__fd(map), &info, &len) == 0) {
      our_maps.insert(info.id);
    }
  }
  std::map<uint32_t, std::string> our_progs;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (bpf_program__fd(prog) < 0) continue;
    const uint32_t id = ProgId(bpf_program__fd(prog));
    if (id != 0) our_progs[id] = bpf_program__name(prog);
  }
  for (const ProgInfo& p : LoadedPrograms()) {
    if (our_progs.count(p.id) != 0) continue;
    for (uint32_t m : p.map_ids) {
      if (our_maps.count(m) == 0) continue;
      out.push_back({AuditFinding::Kind::kForeignProgram,
                     "BPF program " + std::to_string(p.id) + " '" + p.name +
                         "' uses vigil's map " + std::to_string(m)});
      break;
    }
  }
  // Links per program of ours: one each (perf_event attachments of the
  // sample timer are one per CPU and not links of this kind).
  std::map<uint32_t, int> links;
  uint32_t id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd.valid()) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    if (info.type == BPF_LINK_TYPE_TRACING && our_progs.count(info.tracing.target_obj_id) != 0) {
      // target_obj_id is a program id only for an extension (else a BTF id).
      UniqueFd ext(bpf_prog_get_fd_by_id(info.prog_id));
      bpf_prog_info pinfo{};
      uint32_t plen = sizeof(pinfo);
      if (ext.valid() && bpf_obj_get_info_by_fd(ext.get(), &pinfo, &plen) == 0 &&
          pinfo.type == BPF_PROG_TYPE_EXT) {
        out.push_back({AuditFinding::Kind::kReplaced,
                       "freplace program " + std::to_string(info.prog_id) + " '" + pinfo.name +
                           "' replaces a function of vigil program '" +
                           our_progs[info.tracing.target_obj_id] + "'"});
      }
    }
    if (our_progs.count(info.prog_id) == 0 || info.type == BPF_LINK_TYPE_PERF_EVENT) continue;
    links[info.prog_id]++;
  }
  for (const auto& [prog_id, n] : links) {
    if (n > 1) {
      out.push_back({AuditFinding::Kind::kExtraLink,
                     "vigil program '" + our_progs[prog_id] + "' is attached " +
                         std::to_string(n) + " times: each event is recorded " +
                         std::to_string(n) + " times"});
    }
  }
  const uint64_t active = __atomic_load_n(&skel_->bss->vigil_active_gen, __ATOMIC_RELAXED);
  if (active != skel_->rodata->vigil_my_gen) {
    out.push_back({AuditFinding::Kind::kGeneration,
                   "vigil_active_gen is " + std::to_string(active) + ", the programs are " +
                       std::to_string(skel_->rodata->vigil_my_gen) +
                       ": every vigil program returns at once"});
  }
  for (const std::string& path : pinned_links_) {
    UniqueFd fd(bpf_obj_get(path.c_str()));
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (!fd.valid() || bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 ||
        our_progs.count(info.prog_id) == 0) {
      out.push_back({AuditFinding::Kind::kLinkPin,
                     "the pinned link " + path + " is gone or points at another program"});
    }
  }
  return out;
}

void Collector::SkelDeleter::operator()(vigil_bpf* skel) const { vigil_bpf__destroy(skel); }
void Collector::RingDeleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

Collector::Collector(Handler handler, ModuleKfuncs module)
    : handler_(std::move(handler)), module_(module) {}

Collector::~Collector() {
  // A clean stop: nothing stays attached or pinned (links first, so no
  // program outlives the process through its pin).
  UnpinAll();
  tick_links_.clear();
  ring_.reset();  // before the maps it reads go away
  skel_.reset();
  SealEmptyProducerSet();
}

Result<std::unique_ptr<Collector>> Collector::Start(const CollectorOptions& options,
                                                    Handler handler) {
  ModuleKfuncs module;
  if (options.allow_module) {
    VIGIL_ASSIGN_OR_RETURN(module, DetectModuleKfuncs(options.module_btf_path));
  }
  std::unique_ptr<Collector> c(new Collector(std::move(handler), module));

  c->skel_.reset(vigil_bpf__open());
  if (!c->skel_) return Status::FromLibbpf(-errno, "opening the BPF skeleton");
  c->skel_->rodata->have_module = module.commit;
  c->skel_->rodata->have_drop_kfunc = module.commit && module.drop;
  c->skel_->rodata->have_alive_kfunc = module.commit && module.alive;
  c->skel_->rodata->all_processes = options.all_processes;
  {
    const uint32_t ring = options.ringbuf_bytes != 0 ? options.ringbuf_bytes
                                                     : bpf_map__max_entries(c->skel_->maps.vigil_events);
    c->skel_->rodata->wakeup_bytes = options.wakeup_bytes != 0 ? options.wakeup_bytes : ring / 4;
  }
  c->skel_->rodata->count_syscalls = options.syscalls && options.sample_ms != 0;
  c->skel_->rodata->sample_ns = uint64_t{options.sample_ms} * 1'000'000;
  // One jiffy (the coarse clock's resolution): sched_switch reads the
  // precise clock only in the last jiffy before a sample is due.
  if (timespec res{}; clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 &&
                      res.tv_nsec > 0) {
    c->skel_->rodata->jiffy_ns = static_cast<uint64_t>(res.tv_nsec);
  }
  // Samples off: neither the scheduler hook nor the syscall hook runs.
  bpf_program__set_autoload(c->skel_->progs.vigil_sched_switch, options.sample_ms != 0);
  bpf_program__set_autoload(c->skel_->progs.vigil_sys_enter,
                            options.syscalls && options.sample_ms != 0);
  // Attached to per-CPU cpu-clock events by StartSampleTicks(), not by the
  // skeleton (a perf_event program has no attach point of its own).
  // Kernels whose module guards the kfuncs at the call site (Debian 12's
  // 6.1) let no perf_event program call a module kfunc (6.1 maps only
  // TRACING and LSM programs to the tracing kfunc hook, kernel/bpf/btf.c
  // bpf_prog_type_to_kfunc_hook): the tick, which commits samples, cannot
  // load there, and samples come from the scheduler hook alone.
  bool tick = options.sample_ms != 0;
  if (tick && module.commit) {
    auto probe = device::VigilDevice::Open(options.device_path);
    if (!probe.ok()) return probe.status();
    VIGIL_ASSIGN_OR_RETURN(const vigil_info probe_info, probe->GetInfo());
    if (probe_info.kfunc_guard == VIGIL_KFUNC_GUARD_CALLSITE) tick = false;
  }
  bpf_program__set_autoload(c->skel_->progs.vigil_sample_tick, tick);
  bpf_program__set_autoattach(c->skel_->progs.vigil_sample_tick, false);
  if (options.sample_ms != 0 && options.hw == CollectorOptions::Hw::kInject) {
    c->skel_->rodata->hw_inject = true;
    c->skel_->rodata->hw_inject_cycles_per_us = options.inject_cycles_per_us;
    c->skel_->rodata->hw_inject_instr_per_us = options.inject_instr_per_us;
    c->hw_.injected = true;
  } else if (options.sample_ms != 0 && options.hw == CollectorOptions::Hw::kAuto) {
    // Opened after load (the arrays need their fds); have_hw must be known
    // before load, so probe CPU 0 now.
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_CPU_CYCLES;
    const int fd = static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, 0, -1, 0));
    if (fd >= 0) {
      ::close(fd);
      c->skel_->rodata->have_hw = true;
    } else {
      const int err = errno;
      c->hw_.why_not = std::string("no hardware performance counters (perf_event_open "
                                   "PERF_TYPE_HARDWARE: ") +
                       std::strerror(err) + "): samples carry no cycles/instructions";
    }
  } else if (options.sample_ms != 0) {
    c->hw_.why_not = "hardware counters disabled";
  }
  if (options.ringbuf_bytes != 0) {
    int err = bpf_map__set_max_entries(c->skel_->maps.vigil_events, options.ringbuf_bytes);
    if (err) return Status::FromLibbpf(err, "sizing the ring buffer");
  }
  // Before load: compatible maps of a previous instance replace the
  // skeleton's (bpf_map__reuse_fd), so nothing of it is touched yet.
  PinPlan plan;
  if (!options.pin_dir.empty()) VIGIL_RETURN_IF_ERROR(c->PrepareAdoption(options.pin_dir, plan));
  // The module lets only the programs loaded inside a producer window of
  // ours call its kfuncs, and measures them when the window is sealed.
  std::optional<device::VigilDevice> dev;
  if (module.commit) {
    auto opened = device::VigilDevice::Open(options.device_path);
    if (!opened.ok()) return opened.status();
    dev.emplace(std::move(opened).value());
    VIGIL_RETURN_IF_ERROR(dev->OpenProducers());
  }
  if (int err = vigil_bpf__load(c->skel_.get()); err) {
    return Status::FromLibbpf(err, module.commit
                                       ? "loading the BPF programs (with the vigil module kfuncs)"
                                       : "loading the BPF programs (no vigil module)");
  }
  if (dev) {
    // Without the kernel's kfunc filter (6.1) the module learns our
    // programs from us: each one that calls a kfunc is registered by fd
    // and only calls from its JIT image are accepted.
    VIGIL_ASSIGN_OR_RETURN(const vigil_info info, dev->GetInfo());
    if (info.kfunc_guard == VIGIL_KFUNC_GUARD_CALLSITE) {
      bpf_program* prog = nullptr;
      bpf_object__for_each_program(prog, c->skel_->obj) {
        const int fd = bpf_program__fd(prog);
        if (fd < 0) continue;  // not loaded (autoload off)
        VIGIL_RETURN_IF_ERROR(dev->AddProducer(fd).status());
      }
    }
    VIGIL_ASSIGN_OR_RETURN(c->producers_, dev->SealProducers());
    c->have_producers_ = true;
    c->device_path_ = options.device_path;
  }
  // A fresh .bss: these programs are the active ones from their attach on.
  // A reused one still names the old programs until SwitchOver flips it.
  if (!plan.gate) {
    __atomic_store_n(&c->skel_->bss->vigil_active_gen, plan.my_gen, __ATOMIC_SEQ_CST);
  }
  if (c->skel_->rodata->have_hw) VIGIL_RETURN_IF_ERROR(c->OpenHwCounters());
  c->ring_.reset(ring_buffer__new(bpf_map__fd(c->skel_->maps.vigil_events), &Collector::OnSample,
                                  c.get(), nullptr));
  if (!c->ring_) return Status::FromLibbpf(-errno, "creating the ring buffer consumer");
  if (options.pin_dir.empty()) {
    if (int err = vigil_bpf__attach(c->skel_.get()); err) {
      return Status::FromLibbpf(err, "attaching the BPF programs");
    }
  } else {
    // Maps pinned before the programs attach, so `vigilctl agent` works
    // once vigild is ready; then the old programs are replaced.
    VIGIL_RETURN_IF_ERROR(c->SwitchOver(plan));
  }
  if (options.sample_ms != 0) VIGIL_RETURN_IF_ERROR(c->StartSampleTicks(options.sample_ms));
  return c;
}

Status Collector::PrepareAdoption(const std::string& dir, PinPlan& plan) {
  VIGIL_RETURN_IF_ERROR(agents::PrepareBpffsDir(dir));
  // Before touching any pin: a running collector's pins are not stale.
  VIGIL_ASSIGN_OR_RETURN(pin_lock_, agents::LockPinDir(dir));
  pin_dir_ = dir;
  plan.dir = dir;
  const std::string maps_dir = dir + "/" + kMapsSub;
  const std::string links_dir = dir + "/" + kLinksSub;
  VIGIL_RETURN_IF_ERROR(MkdirBpffs(maps_dir));
  VIGIL_RETURN_IF_ERROR(MkdirBpffs(links_dir));

  // Where each state map lives. The agent maps keep the paths vigilctl
  // opens; perf event arrays are not state (their entries go with the fds
  // of the process that opened the events); .rodata/.kconfig are the new
  // programs' configuration. .bss/.data are state shared by the instances
  // (.bss holds vigil_active_gen) and pinned like the rest (maps/bss).
  const std::pair<bpf_map*, const char*> agent_maps[] = {
      {skel_->maps.vigil_agents, VIGIL_PIN_AGENTS},
      {skel_->maps.vigil_agent_cgroups, VIGIL_PIN_AGENT_CGROUPS},
      {skel_->maps.vigil_agent_info, VIGIL_PIN_AGENT_INFO},
      {skel_->maps.vigil_agent_announced, VIGIL_PIN_AGENT_SEEN},
      {skel_->maps.vigil_agent_stats, VIGIL_PIN_AGENT_STATS},
      {skel_->maps.vigil_agent_cpu_stats, VIGIL_PIN_AGENT_CPU_STATS},
      {skel_->maps.vigil_agent_gen, VIGIL_PIN_AGENT_GEN},
  };
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, skel_->obj) {
    const std::string name = bpf_map__name(map);
    std::string path;
    for (const auto& [m, pin] : agent_maps) {
      if (m == map) path = dir + "/" + pin;
    }
    if (path.empty()) {
      if (bpf_map__type(map) == BPF_MAP_TYPE_PERF_EVENT_ARRAY) continue;
      if (bpf_map__is_internal(map)) {
        if (name.find(".rodata") != std::string::npos ||
            name.find(".kconfig") != std::string::npos) {
          continue;
        }
        path = maps_dir + "/" + name.substr(name.find('.') + 1);
      } else {
        path = maps_dir + "/" + name;
      }
    }
    plan.maps.push_back({map, path, false});
  }
  plan.new_ring_bytes = bpf_map__max_entries(skel_->maps.vigil_events);

  // The old links: they keep the old programs running until SwitchOver.
  for (const std::string& name : DirEntries(links_dir)) {
    PinPlan::OldLink old;
    old.name = name.substr(0, name.rfind('-'));  // <program>-<generation>
    old.path = links_dir + "/" + name;
    old.fd.Reset(bpf_obj_get(old.path.c_str()));  // invalid: only the pin is removed
    plan.old_links.push_back(std::move(old));
  }
  plan.found = !plan.old_links.empty();

  // The marker says whether the old maps mean what ours mean.
  bool layout_ok = true;
  const std::string meta_path = maps_dir + "/" + kMetaName;
  if (UniqueFd meta(bpf_obj_get(meta_path.c_str())); meta.valid()) {
    plan.found = true;
    PinMeta m{};
    const uint32_t key = 0;
    auto info = MapInfo(meta.get());
    if (!info.ok() || info->type != BPF_MAP_TYPE_ARRAY || info->value_size != sizeof(PinMeta) ||
        bpf_map_lookup_elem(meta.get(), &key, &m) != 0 || m.magic != kPinMagic ||
        m.layout_version != kPinLayoutVersion) {
      layout_ok = false;
      plan.why_not_reused = "the pinned instance has another layout version";
    } else {
      plan.old_generation = m.generation;
      plan.meta = std::move(meta);
    }
  }

  for (PinPlan::MapPin& pin : plan.maps) {
    UniqueFd old(bpf_obj_get(pin.path.c_str()));
    if (!old.valid()) continue;  // not pinned (or not a BPF object): created fresh
    plan.found = true;
    auto info = MapInfo(old.get());
    const bool is_ring = pin.map == skel_->maps.vigil_events;
    if (is_ring && info.ok()) plan.old_ring_bytes = info->max_entries;
    const bool compatible =
        layout_ok && info.ok() && info->type == static_cast<uint32_t>(bpf_map__type(pin.map)) &&
        info->key_size == bpf_map__key_size(pin.map) &&
        info->value_size == bpf_map__value_size(pin.map) &&
        info->max_entries == bpf_map__max_entries(pin.map) &&
        info->map_flags == bpf_map__map_flags(pin.map);
    if (!compatible) {
      if (plan.why_not_reused.empty()) {
        plan.why_not_reused =
            "the pinned " + std::string(bpf_map__name(pin.map)) + " has another definition";
      }
      adopt_.maps_replaced++;
      // Its records still go to the handler: drained once the old programs
      // are detached.
      if (is_ring && info.ok() && info->type == BPF_MAP_TYPE_RINGBUF) plan.old_ring = std::move(old);
      continue;
    }
    if (pin.map == skel_->maps.vigil_drops) {
      auto drops = ReadPerCpuArray(old.get(), VIGIL_EV_NR_TYPES);
      if (drops.ok()) {
        for (uint64_t d : *drops) adopt_.old_drops += d;
      }
    }
    if (pin.map == skel_->maps.bss) {
      // Where the old programs' vigil_active_gen is: it decides which
      // generation the new programs get.
      std::vector<uint8_t> value(bpf_map__value_size(pin.map));
      const uint32_t key = 0;
      if (bpf_map_lookup_elem(old.get(), &key, value.data()) == 0) {
        uint64_t active = 0;
        std::memcpy(&active, value.data() + offsetof(vigil_bpf::vigil_bpf__bss, vigil_active_gen),
                    sizeof(active));
        plan.my_gen = std::max(plan.my_gen, active);
        plan.gate = true;
      }
    }
    if (int err = bpf_map__reuse_fd(pin.map, old.get()); err) {
      return Status::FromLibbpf(err, "reusing the pinned map " + pin.path);
    }
    pin.reused = true;
    adopt_.maps_reused++;
    if (is_ring) adopt_.ringbuf_reused = true;
  }
  // Higher than any generation that ran here (the marker is written last,
  // the flag may be one ahead of it after a crash in between).
  plan.my_gen = std::max(plan.my_gen, plan.old_generation) + 1;
  skel_->rodata->vigil_my_gen = plan.my_gen;
  return Status::Ok();
}

Status Collector::SwitchOver(PinPlan& plan) {
  // From here on the pins are ours: a clean stop removes them all.
  // 1. Maps: reused ones are pinned already; the others replace whatever
  //    (incompatible) pin was there. The old ring buffer stays reachable
  //    through plan.old_ring for the drain.
  std::set<std::string> ours;
  for (PinPlan::MapPin& pin : plan.maps) {
    ours.insert(pin.path);
    if (!pin.reused) {
      if (::unlink(pin.path.c_str()) != 0 && errno != ENOENT) {
        return Status::FromErrno(errno, "removing the stale pin " + pin.path);
      }
      if (int err = bpf_map__pin(pin.map, pin.path.c_str()); err) {
        return Status::FromLibbpf(err, "pinning " + pin.path);
      }
    }
    pinned_.push_back(pin.path);
  }

  // 2. Links. Pinned as links/<program>-<generation> (bpffs refuses dots), so a crash in the
  //    middle leaves both sets pinned and the active one recording.
  const uint64_t t0 = NowNs();
  const bpf_object_skeleton* sk = skel_->skeleton;
  auto attach = [&](bpf_program* prog, bpf_link** slot, const std::string& name) -> Status {
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) return Status::FromLibbpf(-errno, "attaching the BPF program " + name);
    *slot = link;  // destroyed (detached) with the skeleton
    const std::string path =
        plan.dir + "/" + kLinksSub + "/" + name + "-" + std::to_string(plan.my_gen);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "removing the stale pin " + path);
    }
    if (int err = bpf_link__pin(link, path.c_str()); err) {
      return Status::FromLibbpf(err, "pinning " + path);
    }
    pinned_links_.push_back(path);
    return Status::Ok();
  };
  auto remove_old = [&](PinPlan::OldLink& old) {
    if (old.path.empty()) return;
    ::unlink(old.path.c_str());
    old.fd.Reset();  // the last reference: the old program leaves its hook
    old.path.clear();
    adopt_.links_replaced++;
  };
  if (plan.gate) {
    // The old programs share vigil_active_gen with the new ones: attach the
    // new ones beside them (inactive), flip the flag (one store: from here
    // the new programs record and the old ones return at once), then
    // remove the old links. No hook is ever without an active program.
    for (int i = 0; i < sk->prog_cnt; ++i) {
      const auto* ps = reinterpret_cast<const bpf_prog_skeleton*>(
          reinterpret_cast<const char*>(sk->progs) + static_cast<size_t>(i) * sk->prog_skel_sz);
      bpf_program* prog = *ps->prog;
      if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog)) continue;
      VIGIL_RETURN_IF_ERROR(attach(prog, ps->link, ps->name));
    }
    __atomic_store_n(&skel_->bss->vigil_active_gen, plan.my_gen, __ATOMIC_SEQ_CST);
    adopt_.gapless = true;
    for (PinPlan::OldLink& old : plan.old_links) remove_old(old);
  } else {
    // Old programs that do not read our flag (fresh or incompatible .bss):
    // hook by hook, remove the old program's link, then attach the new
    // program. Never two programs of vigil on one hook (no duplicate
    // records); the hook is unobserved for the time of one detach+attach.
    for (int i = 0; i < sk->prog_cnt; ++i) {
      const auto* ps = reinterpret_cast<const bpf_prog_skeleton*>(
          reinterpret_cast<const char*>(sk->progs) + static_cast<size_t>(i) * sk->prog_skel_sz);
      bpf_program* prog = *ps->prog;
      if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog)) continue;
      uint64_t gap_start = 0;
      for (PinPlan::OldLink& old : plan.old_links) {
        if (old.name != ps->name || old.path.empty()) continue;
        if (gap_start == 0) gap_start = NowNs();
        remove_old(old);
      }
      VIGIL_RETURN_IF_ERROR(attach(prog, ps->link, ps->name));
      if (gap_start != 0) {
        adopt_.max_hook_gap_ns = std::max(adopt_.max_hook_gap_ns, NowNs() - gap_start);
      }
    }
    // Old programs this collector does not load (e.g. samples now off).
    for (PinPlan::OldLink& old : plan.old_links) remove_old(old);
  }
  adopt_.switch_ns = NowNs() - t0;

  // 3. An old ring buffer that could not be reused: no old program writes
  //    to it any more, so everything it will ever hold is there (a program
  //    still running when its link went away finishes within an RCU grace
  //    period: consume again after a pause for those).
  if (plan.old_ring.valid()) {
    const uint64_t before = samples_;
    std::unique_ptr<ring_buffer, RingDeleter> old(
        ring_buffer__new(plan.old_ring.get(), &Collector::OnSample, this, nullptr));
    if (!old) return Status::FromLibbpf(-errno, "opening the old ring buffer to drain it");
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1) ::usleep(20'000);
      const int n = ring_buffer__consume(old.get());
      if (n < 0) return Status::FromLibbpf(n, "draining the old ring buffer");
    }
    adopt_.drained_old = true;
    adopt_.drained_records = samples_ - before;
    plan.old_ring.Reset();
  }

  // 4. Leftovers of another layout (pins no map of ours uses).
  const std::string maps_dir = plan.dir + "/" + kMapsSub;
  const std::string meta_path = maps_dir + "/" + kMetaName;
  for (const std::string& name : DirEntries(maps_dir)) {
    const std::string path = maps_dir + "/" + name;
    if (path != meta_path && ours.count(path) == 0) ::unlink(path.c_str());
  }
  const std::string links_dir = plan.dir + "/" + kLinksSub;
  for (const std::string& name : DirEntries(links_dir)) {
    const std::string path = links_dir + "/" + name;
    bool mine = false;
    for (const std::string& p : pinned_links_) mine = mine || p == path;
    if (!mine) ::unlink(path.c_str());
  }

  // 5. The marker, last: whoever finds it finds a complete instance.
  if (!plan.meta.valid()) {
    ::unlink(meta_path.c_str());
    plan.meta.Reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, kMetaName, sizeof(uint32_t),
                                   sizeof(PinMeta), 1, nullptr));
    if (!plan.meta.valid()) return Status::FromErrno(errno, "creating the pin marker map");
    if (bpf_obj_pin(plan.meta.get(), meta_path.c_str()) != 0) {
      return Status::FromErrno(errno, "pinning " + meta_path);
    }
  }
  pinned_.push_back(meta_path);
  PinMeta m{};
  m.magic = kPinMagic;
  m.layout_version = kPinLayoutVersion;
  m.ringbuf_bytes = plan.new_ring_bytes;
  m.owner_pid = static_cast<uint32_t>(::getpid());
  m.generation = plan.my_gen;
  m.written_boot_ns = NowNs(CLOCK_BOOTTIME);
  const uint32_t key = 0;
  if (bpf_map_update_elem(plan.meta.get(), &key, &m, BPF_ANY) != 0) {
    return Status::FromErrno(errno, "writing the pin marker");
  }
  adopt_.generation = m.generation;

  if (plan.found) {
    adopt_.adopted = true;
    std::string d = "adopted the instance left by a previous collector (generation " +
                    std::to_string(plan.my_gen - 1) + "): ";
    if (adopt_.ringbuf_reused) {
      d += "ring buffer kept";
    } else if (adopt_.drained_old) {
      d += "ring buffer not reusable (" + plan.why_not_reused + "; " +
           std::to_string(plan.old_ring_bytes) + " -> " + std::to_string(plan.new_ring_bytes) +
           " bytes): " + std::to_string(adopt_.drained_records) +
           " old records drained, fresh ring buffer";
    } else {
      d += "no old ring buffer found, fresh ring buffer";
    }
    d += ", " + std::to_string(adopt_.links_replaced) + " links replaced " +
         (adopt_.gapless ? std::string("without a gap (generation flip)")
                         : "(longest hook gap " + std::to_string(adopt_.max_hook_gap_ns / 1000) +
                               " us)") +
         ", " +
         std::to_string(adopt_.maps_reused) + " maps reused, " +
         std::to_string(adopt_.maps_replaced) + " replaced, " + std::to_string(adopt_.old_drops) +
         " drops counted before";
    adopt_.detail = std::move(d);
  }
  return Status::Ok();
}

Status Collector::OpenHwCounters() {
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return Status::FromLibbpf(ncpus, "libbpf_num_possible_cpus");
  const std::pair<bpf_map*, uint64_t> events[] = {
      {skel_->maps.vigil_hw_cycles, PERF_COUNT_HW_CPU_CYCLES},
      {skel_->maps.vigil_hw_instructions, PERF_COUNT_HW_INSTRUCTIONS},
  };
  for (const auto& [map, config] : events) {
    for (int cpu = 0; cpu < ncpus; ++cpu) {
      perf_event_attr attr{};
      attr.size = sizeof(attr);
      attr.type = PERF_TYPE_HARDWARE;
      attr.config = config;
      const int fd = static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, cpu, -1, 0));
      if (fd < 0) {
        if (errno == ENODEV) continue;  // possible but offline CPU: its reads fail, counted
        return Status::FromErrno(errno, "perf_event_open (hardware counter) on CPU " +
                                            std::to_string(cpu));
      }
      perf_fds_.emplace_back(fd);
      const uint32_t key = static_cast<uint32_t>(cpu);
      const uint32_t value = static_cast<uint32_t>(fd);
      if (bpf_map_update_elem(bpf_map__fd(map), &key, &value, BPF_ANY) != 0) {
        return Status::FromErrno(errno, "adding a perf event to the BPF array");
      }
    }
  }
  hw_.measured = true;
  return Status::Ok();
}

Status Collector::StartSampleTicks(uint32_t sample_ms) {
  // Not loaded where perf_event programs get no module kfuncs (see Create).
  if (bpf_program__fd(skel_->progs.vigil_sample_tick) < 0) return Status::Ok();
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return Status::FromLibbpf(ncpus, "libbpf_num_possible_cpus");
  for (int cpu = 0; cpu < ncpus; ++cpu) {
    perf_event_attr attr{};
    attr.size = sizeof(attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    // Half the interval: a spinning agent's samples are sample_ms to
    // 1.5 * sample_ms apart whatever the phase of the timer.
    attr.sample_period = uint64_t{sample_ms} * 1'000'000 / 2;
    const int fd =
        static_cast<int>(::syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      if (errno == ENODEV) continue;  // possible but offline CPU
      return Status::FromErrno(
          errno, "perf_event_open (cpu-clock sample timer) on CPU " + std::to_string(cpu));
    }
    // The link owns the event's fd from here on (closed when it is destroyed).
    bpf_link* link = bpf_program__attach_perf_event(skel_->progs.vigil_sample_tick, fd);
    if (link == nullptr) {
      const int err = -errno;
      ::close(fd);
      return Status::FromLibbpf(err, "attaching the sample timer on CPU " + std::to_string(cpu));
    }
    tick_links_.emplace_back(link);
  }
  return Status::Ok();
}

void Collector::LinkDeleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

void Collector::UnpinLinks() {
  for (const std::string& path : pinned_links_) ::unlink(path.c_str());
  pinned_links_.clear();
}

void Collector::UnpinAll() {
  UnpinLinks();
  for (const std::string& path : pinned_) ::unlink(path.c_str());
  pinned_.clear();
  if (!pin_dir_.empty()) {
    ::rmdir((pin_dir_ + "/" + kLinksSub).c_str());  // fails when not empty: fine
    ::rmdir((pin_dir_ + "/" + kMapsSub).c_str());
  }
}

int Collector::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Collector*>(ctx);
  self->samples_++;
  Result<records::Record> rec =
      records::Record::Decode(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  if (!rec.ok()) {
    self->decode_errors_++;
  } else if (rec->bytes().size() != size) {
    self->decode_errors_++;
    rec = Status::Error(ErrorCode::kMalformed, "ring buffer sample of " + std::to_string(size) +
                                                   " bytes holds a record of " +
                                                   std::to_string(rec->bytes().size()));
  }
  // Called from C (libbpf's ring_buffer__poll): no exception may cross it.
  // A handler that throws counts as a decode/format error for this record.
  try {
    self->handler_(rec);
  } catch (const std::exception& e) {
    self->decode_errors_++;
    std::fprintf(stderr, "vigil: record handler failed: %s\n", e.what());
  } catch (...) {
    self->decode_errors_++;
    std::fprintf(stderr, "vigil: record handler failed\n");
  }
  return 0;
}

Status Collector::Poll(int timeout_ms) {
  int n = ring_buffer__poll(ring_.get(), timeout_ms);
  if (n < 0 && n != -EINTR) return Status::FromLibbpf(n, "polling the ring buffer");
  // Records submitted without a wakeup (below wakeup_bytes) are only seen
  // by consuming: do it after every wait, so they are at most one timeout old.
  n = ring_buffer__consume(ring_.get());
  if (n < 0 && n != -EINTR) return Status::FromLibbpf(n, "consuming the ring buffer");
  return Status::Ok();
}

void Collector::Detach() {
  // A pinned link would keep its program attached after the close.
  UnpinLinks();
  tick_links_.clear();
  if (skel_) vigil_bpf__detach(skel_.get());
  SealEmptyProducerSet();
}

// No producer runs any more: say so in the anchor with an empty producer
// set, so that verifiers expect silence rather than report it. Before the
// caller's last read of the log, which then holds these records too.
void Collector::SealEmptyProducerSet() {
  if (!std::exchange(have_producers_, false)) return;
  auto dev = device::VigilDevice::Open(device_path_);
  if (dev.ok() && dev->OpenProducers().ok()) (void)dev->SealProducers();
}

Status Collector::Drain() {
  int n = ring_buffer__consume(ring_.get());
  if (n < 0 && n != -EINTR) return Status::FromLibbpf(n, "draining the ring buffer");
  return Status::Ok();
}

Result<CollectorCounters> Collector::ReadCounters() const {
  CollectorCounters out;
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint64_t> drops,
                         ReadPerCpuArray(bpf_map__fd(skel_->maps.vigil_drops), VIGIL_EV_NR_TYPES));
  VIGIL_ASSIGN_OR_RETURN(
      std::vector<uint64_t> errors,
      ReadPerCpuArray(bpf_map__fd(skel_->maps.vigil_errors), VIGIL_BPF_NR_ERRORS));
  for (size_t i = 0; i < out.drops.size(); ++i) out.drops[i] = drops[i];
  for (size_t i = 0; i < out.errors.size(); ++i) out.errors[i] = errors[i];
  out.decode_errors = decode_errors_;
  return out;
}

}  // namespace vigil::bpf
