// SPDX-License-Identifier: GPL-2.0
// vigild under systemd (Type=notify): READY once it records, STATUS as it
// goes, WATCHDOG from the main loop, STOPPING at the end. Inert when
// NOTIFY_SOCKET is not set (not started by systemd).
#ifndef VIGIL_USERSPACE_VIGILD_SYSTEMD_NOTIFY_H_
#define VIGIL_USERSPACE_VIGILD_SYSTEMD_NOTIFY_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::daemon {

class SystemdNotifier {
 public:
  // Reads the watchdog period (WATCHDOG_USEC, for this pid) once.
  SystemdNotifier();

  // Programs attached, outputs open: systemd may start what comes After=.
  void Ready(std::string_view status);
  // A new STATUS line, sent only when it changed.
  void Status(std::string_view status);
  // From the main loop: WATCHDOG=1 every half period, so a stuck loop (not
  // only a dead process) gets vigild restarted.
  void Tick(uint64_t now_ns);
  void Stopping();

  uint64_t watchdog_period_ns() const { return watchdog_ns_; }

 private:
  void Send(const std::string& message);

  bool active_ = false;
  uint64_t watchdog_ns_ = 0;
  uint64_t next_ping_ns_ = 0;
  std::string last_status_;
};

}  // namespace vigil::daemon

#endif  // VIGIL_USERSPACE_VIGILD_SYSTEMD_NOTIFY_H_
