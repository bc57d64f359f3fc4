// The verifier's end of the virtio-serial channel: QEMU exposes a guest's
// port as a chardev UNIX socket on the host (`-chardev socket,server=on`);
// this connects to it, answers the frames that arrive (channel.h) and
// connects again whenever QEMU goes away and comes back.
#ifndef VIGIL_USERSPACE_VERIFIER_SERIAL_H_
#define VIGIL_USERSPACE_VERIFIER_SERIAL_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "dispatch.h"

namespace vigil::verifier {

using Handler = std::function<Reply(std::string_view op, std::string_view body)>;

// Runs until `stop` is set. Never returns an error: a socket that cannot be
// reached is retried every second (and said once on stderr).
void ServeSerial(const std::string& socket_path, const Handler& handle,
                 const std::atomic<bool>& stop);

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_SERIAL_H_
