// The byte-stream channel between a node and vigil-verifier where there is
// no IP: a virtio-serial port in the guest (/dev/vportNpM), a QEMU chardev
// UNIX socket on the host. HTTP on loopback carries the same requests.
//
// A frame is a header line and a body of the length it gives:
//
//   VIGIL1 <id> <verb> <length>\n<body>\n
//
// <id> is 1-32 hex digits the requester picks (a response carries its
// request's id, so a requester that restarted ignores answers meant for its
// predecessor); <verb> is the operation of a request (enrol, activate,
// nonce, evidence) or the HTTP-like status of a response (200, 400, ...);
// <length> is the body's size in bytes, at most MaxBody(verb). The stream has no
// connections the guest can see (a writer killed mid-frame leaves half a
// frame), so the decoder resynchronises: a line that is not a header, or a
// frame whose body is not followed by '\n', is dropped one line at a time
// and decoding goes on at the next header, which may start inside a line. A
// cut frame that claims more bytes than ever come is given up when the
// stream stalls mid-frame (kStall): writers write whole frames at once.
// Nothing in a frame is trusted:
// evidence authenticates itself, a nonce is fresh or refused.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_CHANNEL_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_CHANNEL_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vigil/status.h"

namespace vigil::attest::channel {

inline constexpr std::string_view kMagic = "VIGIL1";
inline constexpr size_t kMaxBody = 256u << 20;  // evidence can carry a large log
// Every other request is small: its header is refused (and nothing of it
// buffered) when it claims more.
inline constexpr size_t kMaxSmallBody = 1u << 20;
// The most a frame with `verb` may carry: kMaxBody for evidence and for
// answers (a status), kMaxSmallBody for the other requests.
size_t MaxBody(std::string_view verb);
inline constexpr size_t kMaxHeader = 128;
inline constexpr std::chrono::milliseconds kStall{2000};

struct Frame {
  std::string id;
  std::string verb;
  std::string body;
};

// The frame's bytes. id: 1-32 hex digits; verb: 1-16 of [a-z0-9_-].
Result<std::string> Encode(const Frame& frame);

// A new random request id (16 hex digits).
std::string NewId();

// Incremental decoder over a byte stream.
class Decoder {
 public:
  void Feed(std::string_view bytes);
  // The next complete frame, or nullopt until more bytes arrive.
  std::optional<Frame> Next();
  // Gives up the frame being waited for (its writer died mid-frame, the
  // stream stalled): decoding goes on at the next header after its start.
  void Resync();
  // Bytes dropped while resynchronising (garbage, cut frames).
  uint64_t dropped() const { return dropped_; }
  // Bytes held for a frame not complete yet.
  size_t pending() const { return buf_.size() - pos_; }

 private:
  void DropLine(size_t end);
  std::string buf_;
  size_t pos_ = 0;
  uint64_t dropped_ = 0;
};

// Blocking I/O on a file descriptor (a virtio-serial port, a socket).
class Stream {
 public:
  // `eof_is_idle`: a read of 0 bytes means "nobody on the other end yet"
  // (a virtio-serial port whose host side is not connected), not the end.
  Stream(int fd, bool eof_is_idle) : fd_(fd), eof_is_idle_(eof_is_idle) {}

  Status Write(std::string_view bytes, std::chrono::milliseconds timeout);
  // The next frame, nullopt on timeout, kUnavailable at the end of the
  // stream.
  Result<std::optional<Frame>> Read(std::chrono::milliseconds timeout);
  // Sends a request and waits for the response with its id; answers with
  // other ids (meant for an earlier requester) are skipped.
  Result<Frame> Call(std::string_view verb, std::string_view body,
                     std::chrono::milliseconds timeout);
  uint64_t dropped() const { return decoder_.dropped(); }

 private:
  int fd_;
  bool eof_is_idle_;
  Decoder decoder_;
  std::chrono::steady_clock::time_point last_bytes_ = std::chrono::steady_clock::now();
};

}  // namespace vigil::attest::channel

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_CHANNEL_H_
