// vigild's start-up stages, each constructible on its own over a Config (in
// the manner of Falco's application actions): the outputs, the saved state,
// the module side (device, anchor, verifier) and the self-measurement. The
// BPF collector and the main loop are in main.cc (they need the BPF loader,
// which this library does not link). Every stage says on stderr what it did,
// and returns what stops vigild as a Status whose message is the whole line.
#ifndef VIGIL_USERSPACE_VIGILD_STAGES_H_
#define VIGIL_USERSPACE_VIGILD_STAGES_H_

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "config.h"
#include "line_stamp.h"
#include "state.h"
#include "verification_start.h"
#include "vigil/baseline/store.h"
#include "vigil/device.h"
#include "vigil/records.h"
#include "vigil/status.h"
#include "vigil/unique_fd.h"
#include "vigil/verify.h"

namespace vigil::daemon {

// Where the JSON lines go (stdout or --output), the stamp every line carries
// (host, boot, time) and the --raw-out file.
// Thread-safety: used by vigild's one thread.
class Outputs {
 public:
  static Result<Outputs> Open(const Config& cfg);

  std::ostream& out() { return file_ ? *file_ : *stdout_; }
  // "stdout" or the --output path, for messages.
  const std::string& name() const { return name_; }
  LineStamper& stamper() { return stamper_; }
  // The --raw-out file; not valid() without the option.
  const UniqueFd& raw_fd() const { return raw_fd_; }

 private:
  Outputs(std::unique_ptr<std::ofstream> file, std::string name, LineStamper stamper,
          UniqueFd raw_fd);

  std::unique_ptr<std::ofstream> file_;  // null: stdout
  std::ostream* stdout_;
  std::string name_;
  LineStamper stamper_;
  UniqueFd raw_fd_;
};

// The state directory and what it held at start: loaded whole or not at all.
// Without --no-state the directory is open (and locked) for the whole run.
struct SavedState {
  std::optional<StateDir> dir;
  std::optional<baseline::BaselineStore> store;  // fresh when nothing was saved
  std::optional<VerifierState> verifier;
  std::vector<records::Record> open_events;  // open-events.bin, after the saved anchor

  // A bad file stops vigild (or, with --reset-state, is moved aside);
  // `fresh` is the store to use when no baselines were saved.
  static Result<SavedState> Load(const Config& cfg, baseline::BaselineStore fresh);
};

// The module side: /dev/vigil checked and read, the saved log file scanned,
// the start chosen (ChooseStart) and the verifier built.
// Thread-safety: used by vigild's one thread.
struct ModuleSide {
  device::VigilDevice device;
  vigil_info info{};
  std::vector<records::Record> initial_log;  // the module's log as read at start
  std::optional<verify::StreamVerifier> verifier;
  std::optional<InstanceChange> instance_change;
  std::string log_file;        // log-<instance>.bin in the state directory; empty without state
  uint64_t log_saved_seq = 0;  // last log seq in (or queued for) log_file

  // Needs the module's kfuncs (the collector found them). Updates `saved`:
  // a saved verifier state that does not apply (another instance, or moved
  // aside by --reset-state) is cleared as the start plan says.
  static Result<ModuleSide> Connect(const Config& cfg, SavedState& saved);
};

// MEASUREs vigild's binary and canonical configuration into pcr_config and
// writes one "measure" line for each.
Status MeasureSelf(const Config& cfg, device::VigilDevice& device, Outputs& outputs);

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_STAGES_H_
