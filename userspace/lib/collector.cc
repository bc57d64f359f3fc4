#include "vigil/collector.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <span>
#include <vector>

#include "vigil/agents.h"
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

}  // namespace

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
  return found;
}

void Collector::SkelDeleter::operator()(vigil_bpf* skel) const { vigil_bpf__destroy(skel); }
void Collector::RingDeleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

Collector::Collector(Handler handler, ModuleKfuncs module)
    : handler_(std::move(handler)), module_(module) {}

Collector::~Collector() {
  UnpinAgentMaps();
  ring_.reset();  // before the maps it reads go away
  skel_.reset();
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
  c->skel_->rodata->all_processes = options.all_processes;
  {
    const uint32_t ring = options.ringbuf_bytes != 0 ? options.ringbuf_bytes
                                                     : bpf_map__max_entries(c->skel_->maps.vigil_events);
    c->skel_->rodata->wakeup_bytes = options.wakeup_bytes != 0 ? options.wakeup_bytes : ring / 4;
  }
  c->skel_->rodata->count_syscalls = options.syscalls && options.sample_ms != 0;
  c->skel_->rodata->sample_ns = uint64_t{options.sample_ms} * 1'000'000;
  // Samples off: neither the scheduler hook nor the syscall hook runs.
  bpf_program__set_autoload(c->skel_->progs.vigil_sched_switch, options.sample_ms != 0);
  bpf_program__set_autoload(c->skel_->progs.vigil_sys_enter,
                            options.syscalls && options.sample_ms != 0);
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
  if (int err = vigil_bpf__load(c->skel_.get()); err) {
    return Status::FromLibbpf(err, module.commit
                                       ? "loading the BPF programs (with the vigil module kfuncs)"
                                       : "loading the BPF programs (no vigil module)");
  }
  if (c->skel_->rodata->have_hw) VIGIL_RETURN_IF_ERROR(c->OpenHwCounters());
  // Pinned before attaching, so `vigilctl agent` works once vigild is ready.
  if (!options.pin_dir.empty()) VIGIL_RETURN_IF_ERROR(c->PinAgentMaps(options.pin_dir));
  if (int err = vigil_bpf__attach(c->skel_.get()); err) {
    return Status::FromLibbpf(err, "attaching the BPF programs");
  }
  c->ring_.reset(ring_buffer__new(bpf_map__fd(c->skel_->maps.vigil_events), &Collector::OnSample,
                                  c.get(), nullptr));
  if (!c->ring_) return Status::FromLibbpf(-errno, "creating the ring buffer consumer");
  return c;
}

Status Collector::PinAgentMaps(const std::string& dir) {
  VIGIL_RETURN_IF_ERROR(agents::PrepareBpffsDir(dir));
  // Before touching any pin: a running vigild's pins are not stale.
  VIGIL_ASSIGN_OR_RETURN(pin_lock_, agents::LockPinDir(dir));
  const std::pair<bpf_map*, const char*> maps[] = {
      {skel_->maps.vigil_agents, VIGIL_PIN_AGENTS},
      {skel_->maps.vigil_agent_cgroups, VIGIL_PIN_AGENT_CGROUPS},
      {skel_->maps.vigil_agent_info, VIGIL_PIN_AGENT_INFO},
      {skel_->maps.vigil_agent_announced, VIGIL_PIN_AGENT_SEEN},
      {skel_->maps.vigil_agent_stats, VIGIL_PIN_AGENT_STATS},
  };
  for (const auto& [map, name] : maps) {
    const std::string path = dir + "/" + name;
    // A pin left by a vigild that died: its maps belong to no program.
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "removing the stale pin " + path);
    }
    if (int err = bpf_map__pin(map, path.c_str()); err) {
      return Status::FromLibbpf(err, "pinning " + path);
    }
    pinned_.push_back(path);
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

void Collector::UnpinAgentMaps() {
  for (const std::string& path : pinned_) ::unlink(path.c_str());
  pinned_.clear();
}

int Collector::OnSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<Collector*>(ctx);
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
  if (skel_) vigil_bpf__detach(skel_.get());
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
