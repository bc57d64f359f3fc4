// Loading the BPF skeleton and consuming its ring buffer (vigil::bpf).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_COLLECTOR_H_
#define VIGIL_USERSPACE_LIB_VIGIL_COLLECTOR_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "counters.h"  // bpf/: failure counter indexes
#include "vigil.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"

struct vigil_bpf;    // generated skeleton
struct ring_buffer;  // libbpf

namespace vigil::bpf {

inline constexpr char kModuleBtfPath[] = "/sys/kernel/btf/vigil";
inline constexpr char kVmlinuxBtfPath[] = "/sys/kernel/btf/vmlinux";

// Which module kfuncs the running kernel offers.
struct ModuleKfuncs {
  bool commit = false;  // vigil_commit
  bool drop = false;    // vigil_drop
};

// Looks for the kfuncs as BTF_KIND_FUNC in the module's split BTF. A missing
// file means "no module" (not an error); an unreadable one is an error.
Result<ModuleKfuncs> DetectModuleKfuncs(const std::string& module_btf = kModuleBtfPath);

struct CollectorOptions {
  uint32_t ringbuf_bytes = 0;  // 0: the object's default; else a power of 2
  // Wake the consumer only once this many bytes wait (else it finds them at
  // its next poll timeout); 0: a quarter of the ring. Tests of immediate
  // delivery can set 1.
  uint32_t wakeup_bytes = 0;
  bool allow_module = true;    // false: never call the kfuncs
  std::string module_btf_path = kModuleBtfPath;
  bool all_processes = false;  // record every process, not only agents
  // Where the agent maps are pinned for vigilctl (replacing stale pins);
  // empty: not pinned. Unpinned when the collector goes away.
  std::string pin_dir;
  uint32_t sample_ms = 0;      // per-agent samples at most this often; 0: none
  bool syscalls = false;       // count tracked tasks' syscalls (costs every process)
  // Hardware counters in samples: kAuto opens cycles/instructions on every
  // CPU and falls back (samples without VIGIL_SAMPLE_F_HW) when there is no
  // PMU; kInject is for tests: synthetic counters derived from the clock.
  enum class Hw { kOff, kAuto, kInject };
  Hw hw = Hw::kAuto;
  uint64_t inject_cycles_per_us = 1000;
  uint64_t inject_instr_per_us = 2000;
};

// What became of the hardware counters.
struct HwStatus {
  bool measured = false;   // real PMU counters feed the samples
  bool injected = false;   // synthetic test counters feed the samples
  std::string why_not;     // when neither: the reason, for one clear message
};

struct CollectorCounters {
  std::array<uint64_t, VIGIL_EV_NR_TYPES> drops{};     // by record type
  std::array<uint64_t, VIGIL_BPF_NR_ERRORS> errors{};  // enum vigil_bpf_error
  uint64_t decode_errors = 0;                          // ring buffer samples user space rejected
  uint64_t TotalDrops() const;
};

const char* BpfErrorName(unsigned index);

// Owns the loaded and attached BPF programs and the ring buffer consumer.
// Not movable (libbpf holds a pointer to it). Thread-safety: not
// thread-safe; one thread polls.
class Collector {
 public:
  // Called for every ring buffer sample, decoded; decode failures are passed
  // as errors (and counted) rather than dropped silently.
  using Handler = std::function<void(const Result<records::Record>&)>;

  // Opens the skeleton, sets the module flags, loads, attaches.
  static Result<std::unique_ptr<Collector>> Start(const CollectorOptions& options, Handler handler);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Waits up to timeout_ms for a wakeup, then dispatches every queued
  // sample (also those submitted without a wakeup). A signal interrupting
  // the wait is not an error.
  Status Poll(int timeout_ms);
  // Detaches every program: no new record is produced afterwards, so a
  // following Drain() sees every record the programs submitted.
  void Detach();
  // Dispatches every sample still queued.
  Status Drain();
  Result<CollectorCounters> ReadCounters() const;
  const ModuleKfuncs& module() const { return module_; }
  const HwStatus& hw() const { return hw_; }

 private:
  Collector(Handler handler, ModuleKfuncs module);
  static int OnSample(void* ctx, void* data, size_t size);

  Status PinAgentMaps(const std::string& dir);
  // Opens cycles and instructions on every CPU into the perf event arrays.
  Status OpenHwCounters();
  void UnpinAgentMaps();

  Handler handler_;
  ModuleKfuncs module_;
  std::vector<std::string> pinned_;  // paths to unpin
  UniqueFd pin_lock_;                // flock on the pin directory while pinned
  HwStatus hw_;
  std::vector<UniqueFd> perf_fds_;  // open for as long as the programs run
  uint64_t decode_errors_ = 0;  // decode failures and handler exceptions
  struct SkelDeleter {
    void operator()(vigil_bpf* skel) const;
  };
  struct RingDeleter {
    void operator()(ring_buffer* rb) const;
  };
  std::unique_ptr<vigil_bpf, SkelDeleter> skel_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;  // freed before skel_
};

// Routes libbpf's messages to stderr: warnings always, debug when verbose.
void SetLibbpfVerbosity(bool verbose);

}  // namespace vigil::bpf

#endif  // VIGIL_USERSPACE_LIB_VIGIL_COLLECTOR_H_
