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
  bool allow_module = true;    // false: never call the kfuncs
  std::string module_btf_path = kModuleBtfPath;
  bool all_processes = false;  // record every process, not only agents
  // Where the agent maps are pinned for vigilctl (replacing stale pins);
  // empty: not pinned. Unpinned when the collector goes away.
  std::string pin_dir;
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

  // Waits up to timeout_ms for samples and dispatches them. A signal
  // interrupting the wait is not an error.
  Status Poll(int timeout_ms);
  // Dispatches every sample still queued.
  Status Drain();
  Result<CollectorCounters> ReadCounters() const;
  const ModuleKfuncs& module() const { return module_; }

 private:
  Collector(Handler handler, ModuleKfuncs module);
  static int OnSample(void* ctx, void* data, size_t size);

  Status PinAgentMaps(const std::string& dir);
  void UnpinAgentMaps();

  Handler handler_;
  ModuleKfuncs module_;
  std::vector<std::string> pinned_;  // paths to unpin
  uint64_t decode_errors_ = 0;
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
