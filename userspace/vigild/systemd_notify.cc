// SPDX-License-Identifier: GPL-2.0
#include "systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

namespace vigil::daemon {

SystemdNotifier::SystemdNotifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  active_ = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  // > 0: enabled for this process (WATCHDOG_PID, when set, is ours).
  if (active_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) watchdog_ns_ = usec * 1000;
}

void SystemdNotifier::Send(const std::string& message) {
  if (!active_) return;
  // A failed notification is systemd's to act on (a missed READY or
  // watchdog restarts the unit); vigild's recording goes on.
  (void)sd_notify(0, message.c_str());
}

void SystemdNotifier::Ready(std::string_view status) {
  last_status_ = status;
  Send("READY=1\nSTATUS=" + last_status_);
}

void SystemdNotifier::Status(std::string_view status) {
  if (status == last_status_) return;
  last_status_ = status;
  Send("STATUS=" + last_status_);
}

void SystemdNotifier::Tick(uint64_t now_ns) {
  if (watchdog_ns_ == 0 || now_ns < next_ping_ns_) return;
  next_ping_ns_ = now_ns + watchdog_ns_ / 2;
  Send("WATCHDOG=1");
}

void SystemdNotifier::Stopping() { Send("STOPPING=1\nSTATUS=stopping: draining and saving"); }

}  // namespace vigil::daemon
