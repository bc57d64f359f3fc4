#include "http_listen.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>

namespace vigil::verifier {

Status ListenHttp(httplib::Server& server, const std::string& host, int port, int backlog) {
  // httplib hands each socket it creates to the socket options callback
  // before binding it: the last one is the one bound (it tries addresses
  // in turn and closes those that fail).
  std::atomic<int> bound_fd{-1};
  server.set_socket_options([&bound_fd](socket_t fd) {
    httplib::default_socket_options(fd);  // SO_REUSEADDR, as before
    bound_fd.store(fd);
  });
  const bool bound = server.bind_to_port(host, port);
  server.set_socket_options(httplib::default_socket_options);  // bound_fd is ours only here
  if (!bound) {
    return Status::Error(ErrorCode::kUnavailable,
                         "cannot listen on " + host + ":" + std::to_string(port));
  }
  const int fd = bound_fd.load();
  if (fd < 0 || ::listen(fd, backlog) != 0) {
    return Status::FromErrno(fd < 0 ? EBADF : errno,
                             "raising the listen backlog to " + std::to_string(backlog));
  }
  if (!server.listen_after_bind()) {
    return Status::Error(ErrorCode::kUnavailable,
                         "serving on " + host + ":" + std::to_string(port) + " failed");
  }
  return Status::Ok();
}

}  // namespace vigil::verifier
