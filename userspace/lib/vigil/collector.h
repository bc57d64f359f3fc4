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
struct bpf_link;     // libbpf

namespace vigil::bpf {

inline constexpr char kModuleBtfPath[] = "/sys/kernel/btf/vigil";
inline constexpr char kVmlinuxBtfPath[] = "/sys/kernel/btf/vmlinux";

// Which module kfuncs the running kernel offers.
struct ModuleKfuncs {
  bool commit = false;  // vigil_commit
  bool drop = false;    // vigil_drop
  bool alive = false;   // vigil_alive
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
  // With the module: the device through which the programs are registered
  // as its producers (a window around the load, then sealed).
  std::string device_path = VIGIL_DEVICE_PATH;
  bool all_processes = false;  // record every process, not only agents
  // Where the collector pins its state for vigilctl and for a restart
  // (bpffs; empty: nothing pinned, nothing survives the process). Pinned:
  // the agent maps (<dir>/agents, ... for vigilctl), every other state map
  // (<dir>/maps/<name>: ring buffer, counters, exit dedup, per-CPU slots),
  // a layout marker (<dir>/maps/vigil_meta) and every program's link
  // (<dir>/links/<program>), so the programs keep recording into the ring
  // buffer when the process dies. A Collector destroyed normally detaches
  // and unpins all of it; one started on pins left by a killed collector
  // adopts them (see AdoptStatus).
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

// What Start() found under pin_dir and did with it. A collector that was
// killed (SIGKILL, crash) leaves its pins, and with them its programs
// attached and its ring buffer filling; the next Start() on the same
// pin_dir takes that instance over instead of starting beside it.
struct AdoptStatus {
  // A previous instance's pins (maps or links) were found and taken over.
  bool adopted = false;
  // The old ring buffer was reused: its unread records (also those
  // produced while no collector ran) come with the first Poll(), in order.
  bool ringbuf_reused = false;
  // The old ring buffer could not be reused (other size or definition): its
  // programs were detached and its records passed to the handler during
  // Start(), before any record of the new ring buffer.
  bool drained_old = false;
  uint64_t drained_records = 0;  // records passed to the handler by that drain
  // Old program links removed (each replaced by the new program where the
  // new collector loads one).
  uint32_t links_replaced = 0;
  uint32_t maps_reused = 0;    // pinned maps reused as they were
  uint32_t maps_replaced = 0;  // pinned maps found incompatible and replaced
  // Drops counted by the previous instance(s) in the reused drop map (they
  // stay in ReadCounters(), which counts since the first instance started).
  uint64_t old_drops = 0;
  // The switch from the old programs to the new ones. Normally (the old
  // instance's .bss is reused) gapless: the new programs are attached
  // beside the old ones but inactive, and one store to the shared
  // vigil_active_gen makes them the recording ones; only an event racing
  // that store can be recorded by both. Otherwise hook by hook (old link
  // removed, then the new one attached: no duplicates, but a gap of
  // max_hook_gap_ns on each hook).
  bool gapless = false;
  uint64_t max_hook_gap_ns = 0;
  uint64_t switch_ns = 0;   // the whole switch
  uint64_t generation = 0;  // of the new programs: 1 for a fresh start, +1 per adoption
  std::string detail;       // one line for the log; empty when nothing was found
};

// What Collector::Audit() found that should not be: each one a finding.
struct AuditFinding {
  // kForeignProgram: a BPF program that is not one of ours uses one of our
  // maps (it can write into the ring buffer or edit agents). kExtraLink: a
  // program of ours is attached more than once (each event recorded twice).
  // kGeneration: vigil_active_gen no longer names our programs (they are
  // switched off). kLinkPin: a pinned link of ours is gone or points at
  // another program. kReplaced: a freplace (BPF_PROG_TYPE_EXT) program is
  // attached to one of our programs (the kernel refuses it for vigil's
  // static helpers; this reports an attempt that got through).
  enum class Kind { kForeignProgram, kExtraLink, kGeneration, kLinkPin, kReplaced };
  Kind kind;
  std::string detail;
};
std::string_view AuditKindName(AuditFinding::Kind k);

// Owns the loaded and attached BPF programs and the ring buffer consumer.
// Not movable (libbpf holds a pointer to it). Thread-safety: not
// thread-safe; one thread polls.
class Collector {
 public:
  // Called for every ring buffer sample, decoded; decode failures are passed
  // as errors (and counted) rather than dropped silently.
  using Handler = std::function<void(const Result<records::Record>&)>;

  // Opens the skeleton, sets the module flags, loads, attaches. With
  // options.pin_dir, adopts the instance a killed collector left there
  // (adopted() says what happened); when its ring buffer cannot be reused,
  // its records are passed to `handler` before Start returns. Refused
  // (kFailedPrecondition) while another collector holds the directory.
  static Result<std::unique_ptr<Collector>> Start(const CollectorOptions& options, Handler handler);
  ~Collector();
  Collector(const Collector&) = delete;
  Collector& operator=(const Collector&) = delete;

  // Waits up to timeout_ms for a wakeup, then dispatches every queued
  // sample (also those submitted without a wakeup). A signal interrupting
  // the wait is not an error.
  Status Poll(int timeout_ms);
  // Detaches every program (and removes their pinned links): no new record
  // is produced afterwards, so a following Drain() sees every record the
  // programs submitted.
  void Detach();
  // Dispatches every sample still queued.
  Status Drain();
  // After an adoption the drop and error counts include the previous
  // instances' (the counter maps are reused).
  Result<CollectorCounters> ReadCounters() const;
  const ModuleKfuncs& module() const { return module_; }
  const HwStatus& hw() const { return hw_; }
  // What Start() did with a previous instance's pins (all false/0 without
  // pin_dir or when there were none).
  const AdoptStatus& adopted() const { return adopt_; }
  // Looks at the kernel's BPF objects for what root could have done to
  // ours: foreign programs using our maps, our programs attached twice, the
  // activation flag flipped, pinned links removed or replaced. Each finding
  // is reported every time it still holds (the caller deduplicates).
  // Complements the module's signed counters; it does not replace them.
  std::vector<AuditFinding> Audit() const;
  // The producer set the module sealed for these programs (with the module).
  const vigil_producers* producers() const { return have_producers_ ? &producers_ : nullptr; }

 private:
  Collector(Handler handler, ModuleKfuncs module);
  static int OnSample(void* ctx, void* data, size_t size);

  struct PinPlan;
  // Before load: locks pin_dir, finds the old instance, reuses its
  // compatible maps.
  Status PrepareAdoption(const std::string& dir, PinPlan& plan);
  // After load: replaces the old links hook by hook, drains an old ring
  // buffer that was not reused, pins what is new, writes the marker.
  Status SwitchOver(PinPlan& plan);
  // Opens cycles and instructions on every CPU into the perf event arrays.
  Status OpenHwCounters();
  // Attaches vigil_sample_tick to a cpu-clock event on every CPU, so an
  // agent that is never switched out still gets its samples.
  Status StartSampleTicks(uint32_t sample_ms);
  void UnpinLinks();
  void UnpinAll();
  void SealEmptyProducerSet();

  Handler handler_;
  ModuleKfuncs module_;
  std::string pin_dir_;
  std::vector<std::string> pinned_links_;  // paths to unpin
  std::vector<std::string> pinned_;        // map paths to unpin
  AdoptStatus adopt_;
  vigil_producers producers_{};
  bool have_producers_ = false;
  std::string device_path_;  // where the producer set was sealed
  uint64_t samples_ = 0;  // records passed to the handler
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
  struct LinkDeleter {
    void operator()(bpf_link* link) const;
  };
  std::unique_ptr<vigil_bpf, SkelDeleter> skel_;
  std::unique_ptr<ring_buffer, RingDeleter> ring_;  // freed before skel_
  // The sample timer's links, one per CPU (freed before skel_); not pinned:
  // they end with the process, sched_switch samples go on through the pins.
  std::vector<std::unique_ptr<bpf_link, LinkDeleter>> tick_links_;
};

// Routes libbpf's messages to stderr: warnings always, debug when verbose.
void SetLibbpfVerbosity(bool verbose);

}  // namespace vigil::bpf

#endif  // VIGIL_USERSPACE_LIB_VIGIL_COLLECTOR_H_
