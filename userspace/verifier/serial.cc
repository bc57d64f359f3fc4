#include "serial.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "vigil/attest/channel.h"
#include "vigil/unique_fd.h"

namespace vigil::verifier {
namespace {

namespace channel = attest::channel;
using std::chrono::milliseconds;

Result<UniqueFd> Connect(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Status::Error(ErrorCode::kInvalidArgument, path + ": path too long for a socket");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno(errno, "connecting to " + path);
  }
  return fd;
}

}  // namespace

void ServeSerial(const std::string& socket_path, const Handler& handle,
                 const std::atomic<bool>& stop) {
  std::string last_error;
  while (!stop.load()) {
    auto fd = Connect(socket_path);
    if (!fd.ok()) {
      if (fd.status().message() != last_error) {
        last_error = fd.status().message();
        std::fprintf(stderr, "vigil-verifier: serial %s (retrying every second)\n",
                     last_error.c_str());
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    last_error.clear();
    std::fprintf(stderr, "vigil-verifier: serving the channel at %s\n", socket_path.c_str());
    channel::Stream stream(fd->get(), /*eof_is_idle=*/false);
    uint64_t dropped = 0;
    while (!stop.load()) {
      auto frame = stream.Read(milliseconds(500));
      if (!frame.ok()) {
        std::fprintf(stderr, "vigil-verifier: serial %s: %s\n", socket_path.c_str(),
                     frame.status().message().c_str());
        break;
      }
      if (!*frame) continue;  // nothing yet: look at `stop` again
      if (stream.dropped() != dropped) {
        std::fprintf(stderr,
                     "vigil-verifier: serial %s: %llu bytes of cut or garbled frames "
                     "dropped\n",
                     socket_path.c_str(),
                     static_cast<unsigned long long>(stream.dropped() - dropped));
        dropped = stream.dropped();
      }
      const Reply reply = handle((*frame)->verb, (*frame)->body);
      auto bytes = channel::Encode({(*frame)->id, std::to_string(reply.status), reply.body});
      if (!bytes.ok()) continue;  // cannot happen: the id came from a parsed frame
      if (Status st = stream.Write(*bytes, milliseconds(30000)); !st.ok()) {
        std::fprintf(stderr, "vigil-verifier: serial %s: %s\n", socket_path.c_str(),
                     st.message().c_str());
        break;
      }
    }
  }
}

}  // namespace vigil::verifier
