// One swtpm per simulated node: `swtpm socket --tpm2` on UNIX sockets in a
// private state directory, started and stopped by the simulator.
#ifndef VIGIL_USERSPACE_FLEET_SIM_SWTPM_PROCESS_H_
#define VIGIL_USERSPACE_FLEET_SIM_SWTPM_PROCESS_H_

#include <sys/types.h>

#include <string>

#include "vigil/status.h"

namespace vigil::fleetsim {

// A running swtpm whose data channel is `dir`/tpm.sock and control channel
// `dir`/tpm.sock.ctrl (tcti-swtpm's rule), with its state in `dir`/state. The child is in its own
// process group (a terminal's ^C reaches the simulator, which stops it in
// order) and gets SIGTERM if the thread that started it dies
// (PR_SET_PDEATHSIG): start swtpms from a thread that lives as long as they
// do. Stop() (and the destructor) sends SIGTERM and reaps it; the directory
// is the caller's. Move-only. Thread-safety: not thread-safe.
class SwtpmProcess {
 public:
  SwtpmProcess() = default;
  ~SwtpmProcess() { Stop(); }
  SwtpmProcess(SwtpmProcess&& other) noexcept;
  SwtpmProcess& operator=(SwtpmProcess&& other) noexcept;
  SwtpmProcess(const SwtpmProcess&) = delete;
  SwtpmProcess& operator=(const SwtpmProcess&) = delete;

  // Spawns `swtpm` (the path of the binary) on `dir` (must exist). Does not
  // wait for it: WaitReady() does.
  static Result<SwtpmProcess> Spawn(const std::string& swtpm, const std::string& dir);
  // Waits until the data socket accepts a connection (up to `timeout_ms`);
  // kUnavailable when swtpm exited or did not come up.
  Status WaitReady(int timeout_ms);
  void Stop();

  // For tpm2-tss: "swtpm:path=DIR/tpm.sock".
  std::string tcti() const { return "swtpm:path=" + socket_; }
  pid_t pid() const { return pid_; }
  // CPU time (user + system) the process used so far, in seconds; 0 when
  // it is gone.
  double CpuSeconds() const;

 private:
  pid_t pid_ = -1;
  std::string socket_;
};

// The first executable `name` in PATH; empty when there is none.
std::string FindProgram(const std::string& name);

// CPU time (user + system) of process `pid` from /proc/PID/stat, seconds.
double ProcessCpuSeconds(pid_t pid);

}  // namespace vigil::fleetsim

#endif  // VIGIL_USERSPACE_FLEET_SIM_SWTPM_PROCESS_H_
