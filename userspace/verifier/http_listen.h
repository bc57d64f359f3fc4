// The verifier's HTTP listening socket with a listen backlog fit for a
// fleet. cpp-httplib as Debian packages it (libcpp-httplib 0.11) is
// compiled with CPPHTTPLIB_LISTEN_BACKLOG 5: a burst of nodes connecting
// while the one accept thread is busy overflowed that queue (SYNs dropped,
// clients retrying after 1 s or more; docs/fleet.md). The backlog is raised
// on the bound socket with a second listen(2), which Linux allows.
#ifndef VIGIL_USERSPACE_VERIFIER_HTTP_LISTEN_H_
#define VIGIL_USERSPACE_VERIFIER_HTTP_LISTEN_H_

#include <httplib.h>

#include <string>

#include "vigil/status.h"

namespace vigil::verifier {

// The queue of connections not yet accepted (the kernel caps it at
// net.core.somaxconn, 4096 by default since Linux 5.4).
inline constexpr int kHttpListenBacklog = 1024;

// Binds `server` to host:port with `backlog`, then serves until stopped
// (httplib::Server::stop). kUnavailable when it cannot bind or listen.
Status ListenHttp(httplib::Server& server, const std::string& host, int port,
                  int backlog = kHttpListenBacklog);

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_HTTP_LISTEN_H_
