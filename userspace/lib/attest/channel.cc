#include "vigil/attest/channel.h"

#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <thread>

#include "vigil/digest.h"

namespace vigil::attest::channel {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::string_view kHeaderStart = "VIGIL1 ";

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool IsVerb(std::string_view s) {
  return !s.empty() && s.size() <= 16 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool IsId(std::string_view s) { return !s.empty() && s.size() <= 32 && IsHex(s); }

// "VIGIL1 <id> <verb> <length>" -> its fields, or nullopt.
struct Header {
  std::string_view id, verb;
  size_t length = 0;
};
std::optional<Header> ParseHeader(std::string_view line) {
  if (line.size() > kMaxHeader) return std::nullopt;
  std::string_view parts[4];
  for (size_t i = 0; i < 4; ++i) {
    const size_t sp = line.find(' ');
    if ((sp == std::string_view::npos) != (i == 3)) return std::nullopt;  // exactly four fields
    parts[i] = line.substr(0, sp);
    if (sp != std::string_view::npos) line.remove_prefix(sp + 1);
  }
  if (parts[0] != kMagic || !IsId(parts[1]) || !IsVerb(parts[2])) return std::nullopt;
  Header h{parts[1], parts[2], 0};
  const std::string_view len = parts[3];
  if (len.empty() || len.size() > 10 || (len.size() > 1 && len[0] == '0')) return std::nullopt;
  auto [ptr, ec] = std::from_chars(len.data(), len.data() + len.size(), h.length);
  if (ec != std::errc() || ptr != len.data() + len.size() || h.length > MaxBody(h.verb)) {
    return std::nullopt;
  }
  return h;
}

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

}  // namespace

size_t MaxBody(std::string_view verb) {
  const bool status = !verb.empty() && std::all_of(verb.begin(), verb.end(), [](unsigned char c) {
    return c >= '0' && c <= '9';
  });
  return status || verb == "evidence" ? kMaxBody : kMaxSmallBody;
}

Result<std::string> Encode(const Frame& frame) {
  if (!IsId(frame.id)) {
    return Status::Error(ErrorCode::kInvalidArgument, "channel: a frame id is 1-32 hex digits");
  }
  if (!IsVerb(frame.verb)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "channel: a frame verb is 1-16 of [a-z0-9_-]");
  }
  if (frame.body.size() > MaxBody(frame.verb)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "channel: a body of " + std::to_string(frame.body.size()) +
                             " bytes is larger than " + std::to_string(MaxBody(frame.verb)) +
                             " for " + frame.verb);
  }
  std::string out;
  out.reserve(frame.body.size() + 64);
  out.append(kMagic).append(" ").append(frame.id).append(" ").append(frame.verb).append(" ");
  out.append(std::to_string(frame.body.size())).append("\n");
  out.append(frame.body).append("\n");
  return out;
}

std::string NewId() {
  uint8_t bytes[8] = {};
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // Ids only tell answers apart; the time is unique enough when the RNG fails.
    const uint64_t t = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    for (size_t i = 0; i < sizeof(bytes); ++i) bytes[i] = static_cast<uint8_t>(t >> (8 * i));
  }
  return crypto::ToHex(std::span<const uint8_t>(bytes, sizeof(bytes)));
}

void Decoder::Feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

void Decoder::DropLine(size_t end) {
  dropped_ += end - pos_;
  pos_ = end;
}

void Decoder::Resync() {
  if (pending() == 0) return;
  const size_t magic = buf_.find(kHeaderStart, pos_ + 1);
  DropLine(magic == std::string::npos ? buf_.size() : magic);
}

std::optional<Frame> Decoder::Next() {
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl == std::string::npos) {
      // No header is this long: garbage without a newline goes now.
      if (buf_.size() - pos_ > kMaxHeader) DropLine(buf_.size());
      return std::nullopt;
    }
    const auto header = ParseHeader(std::string_view(buf_).substr(pos_, nl - pos_));
    if (!header) {
      // A frame may start inside the line (after a cut frame's bytes).
      // Searched within the line only: the whole buffer each time would
      // make a stream of short lines quadratic.
      const std::string_view line = std::string_view(buf_).substr(pos_, nl - pos_);
      const size_t magic = line.find(kHeaderStart, 1);
      DropLine(magic == std::string_view::npos ? nl + 1 : pos_ + magic);
      continue;
    }
    const size_t body = nl + 1;
    if (buf_.size() - body < header->length + 1) return std::nullopt;  // not all here yet
    if (buf_[body + header->length] != '\n') {
      // A cut frame: the next frame's bytes ran into this body. Drop the
      // header only; the frames inside are found again line by line.
      DropLine(body);
      continue;
    }
    Frame f{std::string(header->id), std::string(header->verb), buf_.substr(body, header->length)};
    pos_ = body + header->length + 1;
    return f;
  }
}

Status Stream::Write(std::string_view bytes, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    // send() where it is a socket: no SIGPIPE when the peer is gone.
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      return Status::Error(ErrorCode::kUnavailable, "channel: the other end closed");
    }
    if (n < 0 && errno != EAGAIN) return Status::FromErrno(errno, "channel: writing");
    pollfd p{fd_, POLLOUT, 0};
    const int ms = RemainingMs(deadline);
    if (ms == 0) {
      return Status::Error(ErrorCode::kUnavailable,
                           "channel: nobody reads the other end (write timed out)");
    }
    if (::poll(&p, 1, std::min(ms, 100)) < 0 && errno != EINTR) {
      return Status::FromErrno(errno, "channel: poll");
    }
  }
  return Status::Ok();
}

Result<std::optional<Frame>> Stream::Read(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    if (auto f = decoder_.Next()) return std::optional<Frame>(std::move(*f));
    if (decoder_.pending() > 0 && Clock::now() - last_bytes_ >= kStall) {
      decoder_.Resync();
      last_bytes_ = Clock::now();
      continue;
    }
    const int ms = RemainingMs(deadline);
    if (ms == 0) return std::optional<Frame>();
    pollfd p{fd_, POLLIN, 0};
    const int ready = ::poll(&p, 1, std::min(ms, 200));
    if (ready < 0 && errno != EINTR) return Status::FromErrno(errno, "channel: poll");
    if (ready <= 0) continue;
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n > 0) {
      decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
      last_bytes_ = Clock::now();
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno != ECONNRESET) return Status::FromErrno(errno, "channel: reading");
    if (!eof_is_idle_ || n < 0)
      return Status::Error(ErrorCode::kUnavailable, "channel: the other end closed");
    // A virtio-serial port reads 0 while its host side is not connected
    // (and poll says readable): wait a little instead of spinning.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 100)));
  }
}

Result<Frame> Stream::Call(std::string_view verb, std::string_view body,
                           std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Frame request{NewId(), std::string(verb), std::string(body)};
  VIGIL_ASSIGN_OR_RETURN(std::string bytes, Encode(request));
  VIGIL_RETURN_IF_ERROR(Write(bytes, timeout));
  for (;;) {
    VIGIL_ASSIGN_OR_RETURN(std::optional<Frame> f,
                           Read(std::chrono::milliseconds(RemainingMs(deadline))));
    if (!f) return Status::Error(ErrorCode::kUnavailable, "channel: no answer (timed out)");
    if (f->id == request.id) return std::move(*f);
  }
}

}  // namespace vigil::attest::channel
