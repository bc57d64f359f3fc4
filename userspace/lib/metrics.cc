#include "vigil/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <system_error>
#include <utility>

namespace vigil::metrics {

namespace {

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// HELP text escapes backslash and newline; label values also escape the double quote.
void AppendEscaped(std::string& out, std::string_view text, bool escape_quote) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += escape_quote ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

std::string_view TypeName(MetricType type) {
  return type == MetricType::kCounter ? "counter" : "gauge";
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = IsAsciiLetter(c) || c == '_' || c == ':' || (i > 0 && IsAsciiDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = IsAsciiLetter(c) || c == '_' || (i > 0 && IsAsciiDigit(c));
    if (!ok) return false;
  }
  return true;
}

std::string FormatSampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Counters are integral almost always; print them as integers (std::to_chars
  // would write 1e+16 for 10^16). 2^63 bounds what int64_t holds exactly.
  if (value == std::trunc(value) && std::fabs(value) < 0x1p63) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round-trip form
  if (ec != std::errc()) return "NaN";  // cannot happen: 64 bytes hold any double
  return std::string(buf, end);
}

// ---- Family ----------------------------------------------------------------

Family::Family(Registry& registry, std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names)
    : registry_(registry),
      name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  if (label_names_.empty()) series_.emplace(LabelValues{}, 0.0);
}

std::optional<double> Family::Value(const LabelValues& label_values) const {
  std::lock_guard lock(registry_.mutex_);
  auto it = series_.find(label_values);
  if (it == series_.end()) return std::nullopt;
  return it->second;
}

size_t Family::SeriesCount() const {
  std::lock_guard lock(registry_.mutex_);
  return series_.size();
}

void Family::RemoveSeries(const LabelValues& label_values) {
  std::lock_guard lock(registry_.mutex_);
  series_.erase(label_values);
}

void Family::Clear() {
  std::lock_guard lock(registry_.mutex_);
  series_.clear();
}

void Family::Update(const LabelValues& label_values, double value, UpdateKind kind) {
  std::lock_guard lock(registry_.mutex_);
  UpdateLocked(label_values, value, kind);
}

void Family::UpdateLocked(const LabelValues& label_values, double value, UpdateKind kind) {
  if (label_values.size() != label_names_.size()) {
    registry_.CountDroppedLocked(name_, "label_count");
    return;
  }
  // Written as !(x >= 0) so NaN is refused too: a counter never goes down.
  if (type_ == MetricType::kCounter && !(value >= 0)) {
    registry_.CountDroppedLocked(name_, "invalid_value");
    return;
  }
  auto it = series_.find(label_values);
  if (it == series_.end()) {
    if (series_.size() >= registry_.max_series_per_family_) {
      registry_.CountDroppedLocked(name_, "series_limit");
      return;
    }
    it = series_.emplace(label_values, 0.0).first;
  }
  if (kind == UpdateKind::kAdd) {
    it->second += value;
  } else {
    it->second = value;
  }
}

void Counter::Inc(const LabelValues& label_values, double delta) {
  Update(label_values, delta, UpdateKind::kAdd);
}

void Counter::Set(const LabelValues& label_values, double value) {
  Update(label_values, value, UpdateKind::kSet);
}

void Gauge::Set(const LabelValues& label_values, double value) {
  Update(label_values, value, UpdateKind::kSet);
}

void Gauge::Add(const LabelValues& label_values, double delta) {
  Update(label_values, delta, UpdateKind::kAdd);
}

// ---- Registry --------------------------------------------------------------

Registry::Registry(size_t max_series_per_family)
    : max_series_per_family_(max_series_per_family),
      series_dropped_(new Counter(*this, std::string(kSeriesDroppedMetric),
                                  "Metric updates dropped by vigild's metrics registry, by family "
                                  "and reason (series_limit, label_count, invalid_value)",
                                  MetricType::kCounter, {"family", "reason"})) {}

Registry::~Registry() = default;

Status Registry::CheckNewFamily(std::string_view name,
                                const std::vector<std::string>& label_names) const {
  if (!IsValidMetricName(name)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "metric name \"" + std::string(name) +
                             "\" is not valid: it must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!IsValidLabelName(label)) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "metric " + std::string(name) + ": label name \"" + label +
                               "\" is not valid: it must match [a-zA-Z_][a-zA-Z0-9_]* and not "
                               "start with \"__\"");
    }
    if (std::find(label_names.begin(), label_names.begin() + static_cast<ptrdiff_t>(i), label) !=
        label_names.begin() + static_cast<ptrdiff_t>(i)) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           "metric " + std::string(name) + ": label \"" + label + "\" repeated");
    }
  }
  bool taken = name == kSeriesDroppedMetric ||
               std::any_of(families_.begin(), families_.end(),
                           [&](const std::unique_ptr<Family>& f) { return f->name() == name; });
  if (taken) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "metric " + std::string(name) + " is already registered");
  }
  return Status::Ok();
}

Result<Counter*> Registry::AddCounter(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  VIGIL_RETURN_IF_ERROR(CheckNewFamily(name, label_names));
  auto* counter = new Counter(*this, std::string(name), std::string(help), MetricType::kCounter,
                              std::move(label_names));
  families_.emplace_back(counter);
  return counter;
}

Result<Gauge*> Registry::AddGauge(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  VIGIL_RETURN_IF_ERROR(CheckNewFamily(name, label_names));
  auto* gauge = new Gauge(*this, std::string(name), std::string(help), MetricType::kGauge,
                          std::move(label_names));
  families_.emplace_back(gauge);
  return gauge;
}

void Registry::CountDroppedLocked(const std::string& family, std::string_view reason) {
  // Bounded by families x 3 reasons, so this family needs no limit of its own.
  series_dropped_->series_[LabelValues{family, std::string(reason)}] += 1;
}

namespace {

void RenderFamily(const Family& family, const std::map<LabelValues, double>& series,
                  std::string& out) {
  out += "# HELP ";
  out += family.name();
  out += ' ';
  AppendEscaped(out, family.help(), /*escape_quote=*/false);
  out += "\n# TYPE ";
  out += family.name();
  out += ' ';
  out += TypeName(family.type());
  out += '\n';
  const std::vector<std::string>& label_names = family.label_names();
  for (const auto& [label_values, value] : series) {
    out += family.name();
    if (!label_names.empty()) {
      out += '{';
      for (size_t i = 0; i < label_names.size(); ++i) {
        if (i > 0) out += ',';
        out += label_names[i];
        out += "=\"";
        AppendEscaped(out, label_values[i], /*escape_quote=*/true);
        out += '"';
      }
      out += '}';
    }
    out += ' ';
    out += FormatSampleValue(value);
    out += '\n';
  }
}

}  // namespace

std::string Registry::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& family : families_) RenderFamily(*family, family->series_, out);
  RenderFamily(*series_dropped_, series_dropped_->series_, out);
  return out;
}

std::string Registry::RenderShared() const {
  const auto arrived = std::chrono::steady_clock::now();
  std::lock_guard lock(shared_mutex_);
  if (!shared_started_ || *shared_started_ < arrived) {
    shared_started_ = std::chrono::steady_clock::now();
    shared_ = Render();
  }
  return shared_;
}

// ---- Listen address --------------------------------------------------------

namespace {

struct ListenSockaddr {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

Status ListenError(std::string_view listen, std::string_view why) {
  return Status::Error(
      ErrorCode::kInvalidArgument,
      "metrics listen address \"" + std::string(listen) + "\": " + std::string(why));
}

constexpr std::string_view kLoopbackOnly =
    "the metrics endpoint is unauthenticated, so it only listens on loopback "
    "(127.0.0.0/8, [::1] or localhost)";

Result<ListenSockaddr> ParseListenAddress(std::string_view listen) {
  constexpr std::string_view kExpected = "expected HOST:PORT such as 127.0.0.1:9477";
  if (listen.empty()) return ListenError(listen, "empty; " + std::string(kExpected));
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) {
    return ListenError(listen, "no port; " + std::string(kExpected));
  }
  std::string_view host = listen.substr(0, colon);
  std::string_view port_text = listen.substr(colon + 1);
  if (host.empty()) {
    return ListenError(listen,
                       "no host (all interfaces are refused: " + std::string(kLoopbackOnly) + ")");
  }
  unsigned port = 0;
  auto [port_end, port_ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || port_ec != std::errc() ||
      port_end != port_text.data() + port_text.size() || port > 65535) {
    return ListenError(listen,
                       "port \"" + std::string(port_text) + "\" is not a number from 0 to 65535");
  }

  ListenSockaddr addr;
  if (host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return ListenError(listen, "unbalanced brackets around the IPv6 address");
    }
    std::string literal(host.substr(1, host.size() - 2));
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, literal.c_str(), &sin6.sin6_addr) != 1) {
      return ListenError(listen, "\"" + literal + "\" is not an IPv6 address");
    }
    if (!IN6_IS_ADDR_LOOPBACK(&sin6.sin6_addr)) {
      return ListenError(listen,
                         literal + " is not a loopback address; " + std::string(kLoopbackOnly));
    }
    std::memcpy(&addr.storage, &sin6, sizeof(sin6));
    addr.length = sizeof(sin6);
    addr.family = AF_INET6;
    return addr;
  }
  if (host.find(':') != std::string_view::npos) {
    return ListenError(listen, "IPv6 addresses need brackets, e.g. [::1]:9477");
  }
  // "localhost" is not resolved: /etc/hosts could point it off the machine.
  std::string literal = host == "localhost" ? "127.0.0.1" : std::string(host);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, literal.c_str(), &sin.sin_addr) != 1) {
    return ListenError(listen, "host \"" + literal +
                                   "\" is not an IPv4 address, a bracketed IPv6 address or "
                                   "localhost");
  }
  if ((ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
    return ListenError(listen,
                       literal + " is not a loopback address; " + std::string(kLoopbackOnly));
  }
  std::memcpy(&addr.storage, &sin, sizeof(sin));
  addr.length = sizeof(sin);
  addr.family = AF_INET;
  return addr;
}

}  // namespace

Status CheckListenAddress(std::string_view listen) {
  Result<ListenSockaddr> addr = ParseListenAddress(listen);
  return addr.ok() ? Status::Ok() : addr.status();
}

// ---- Server ----------------------------------------------------------------
//
// cpp-httplib parses requests and writes responses. Around it, this file keeps
// what a daemon's unauthenticated endpoint needs and httplib 0.11 does not
// give: one deadline for the whole request (httplib's timeouts are per read,
// so a client trickling bytes could hold a worker forever), a cap on the
// request header (httplib caps lines, not their number), a connection limit
// that answers 503 instead of queueing, and a stop that does not wait for
// idle clients.

namespace {

using Clock = std::chrono::steady_clock;

// Once the response is written, unread request bytes are read and dropped for
// at most this long, so closing does not turn into a reset that loses the
// response at the client.
constexpr std::chrono::milliseconds kDrainTime{500};
constexpr size_t kDrainMaxBytes = 1 << 20;

// A response written by this file, not by httplib (before or after httplib
// parsed anything).
std::string RawResponse(int status, std::string_view reason) {
  const std::string body = std::string(reason) + "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

std::string IpText(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  const void* where =
      addr.ss_family == AF_INET6
          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr)
          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr);
  ::inet_ntop(addr.ss_family, where, text, sizeof(text));
  return text;
}

int PortOf(const sockaddr_storage& addr) {
  return addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port)
                                    : ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
}

// One client connection as httplib reads and writes it: reads end at the
// request deadline and after max_request_bytes consumed (httplib reads the
// header one byte at a time, so this buffers), writes give up write_timeout
// after the response's first byte, however the client paces its reads.
// Thread-safety: used by one worker thread.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, Clock::time_point deadline, std::chrono::milliseconds write_timeout,
                   size_t max_request_bytes)
      : fd_(fd),
        deadline_(deadline),
        write_timeout_(write_timeout),
        max_request_bytes_(max_request_bytes) {}

  bool is_readable() const override { return start_ < buffer_.size() || Wait(POLLIN, deadline_); }
  bool is_writable() const override { return Wait(POLLOUT, ResponseDeadline()); }

  ssize_t read(char* ptr, size_t size) override {
    if (consumed_ >= max_request_bytes_) {
      too_large_ = true;
      return -1;
    }
    if (start_ == buffer_.size()) {
      if (!Wait(POLLIN, deadline_)) {
        timed_out_ = true;
        return -1;
      }
      buffer_.resize(4096);
      ssize_t n;
      do {
        n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
      } while (n < 0 && errno == EINTR);
      buffer_.resize(n > 0 ? static_cast<size_t>(n) : 0);
      start_ = 0;
      if (n <= 0) return n;
    }
    const size_t n = std::min({size, buffer_.size() - start_, max_request_bytes_ - consumed_});
    std::memcpy(ptr, buffer_.data() + start_, n);
    start_ += n;
    consumed_ += n;
    return static_cast<ssize_t>(n);
  }

  using httplib::Stream::write;  // the string forms, hidden by the override below
  // All of it or -1: httplib takes any positive count for the whole. Sent
  // without blocking (a blocking send() of a large body waits for the
  // client inside the kernel, past any deadline), waiting for room until
  // the response's deadline.
  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      if (!Wait(POLLOUT, ResponseDeadline())) return -1;
      const ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
        return -1;
      }
      written_ = true;
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(::getpeername, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(::getsockname, ip, port);
  }
  socket_t socket() const override { return fd_; }

  bool too_large() const { return too_large_; }
  bool timed_out() const { return timed_out_; }
  bool started() const { return consumed_ > 0; }
  bool written() const { return written_; }

 private:
  // getpeername or getsockname; ip and port stay as they are on an error.
  void AddressOf(int (*get)(int, sockaddr*, socklen_t*), std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t length = sizeof(addr);
    if (get(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return;
    ip = IpText(addr);
    port = PortOf(addr);
  }
  bool Wait(short events, Clock::time_point until) const {
    for (;;) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 60'000)));
      if (n > 0) return true;  // ready, or an error/hang-up the next call reports
      if (n < 0 && errno != EINTR) return false;
    }
  }

  // The whole response must be taken by then (set at its first byte).
  Clock::time_point ResponseDeadline() const {
    if (!response_deadline_) response_deadline_ = Clock::now() + write_timeout_;
    return *response_deadline_;
  }

  const int fd_;
  const Clock::time_point deadline_;
  const std::chrono::milliseconds write_timeout_;
  mutable std::optional<Clock::time_point> response_deadline_;
  const size_t max_request_bytes_;
  std::string buffer_;
  size_t start_ = 0;
  size_t consumed_ = 0;
  bool too_large_ = false;
  bool timed_out_ = false;
  bool written_ = false;
};

// The connection a worker thread is serving, for the error handler, which
// httplib calls without it. Set only around process_request.
thread_local const ConnectionStream* t_connection = nullptr;
// Set while the listening thread runs a connection no worker is free for.
thread_local bool t_over_limit = false;

// max_connections workers; a connection that finds none free is answered 503
// at once on the listening thread instead of waiting in a queue.
// Thread-safety: enqueue and shutdown from httplib's listening thread; the
// workers take tasks under mutex_.
class BoundedPool final : public httplib::TaskQueue {
 public:
  explicit BoundedPool(size_t workers) {
    for (size_t i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (busy_ + queue_.size() < threads_.size()) {
        queue_.push_back(std::move(fn));
        ready_.notify_one();
        return;
      }
    }
    t_over_limit = true;
    fn();
    t_over_limit = false;
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        // Queued connections are still served (and closed) after a stop.
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
        ++busy_;
      }
      fn();
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  size_t busy_ = 0;                          // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace

// httplib's server with this file's connection handling: one request per
// connection, under ConnectionStream's limits, every open client socket known
// so a stop can shut them down.
// Thread-safety: process_and_close_socket runs on worker threads (and the
// listening thread, over the limit); CloseClients from any thread.
class Server::Http final : public httplib::Server {
 public:
  explicit Http(const ServerOptions& options) : options_(options) {}

  // Shuts every open client connection down and refuses new ones, so the
  // workers end at once instead of at their clients' deadlines.
  void CloseClients() {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (int fd : clients_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  // httplib's hook for one accepted connection (private virtual: overriding
  // it is how a server subclass takes over the socket).
  bool process_and_close_socket(socket_t sock) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        ::close(sock);
        return false;
      }
      clients_.insert(sock);
    }
    const Clock::time_point deadline = Clock::now() + options_.request_timeout;
    ConnectionStream stream(sock, deadline, options_.write_timeout, options_.max_header_bytes);
    bool ok = true;
    if (t_over_limit) {
      ok = stream.write(RawResponse(503, "Service Unavailable")) > 0;
    } else {
      bool closed = false;
      t_connection = &stream;
      ok = process_request(stream, /*close_connection=*/true, closed, nullptr);
      t_connection = nullptr;
      // httplib writes nothing when the request line never ended.
      if (!stream.written() && stream.too_large()) {
        stream.write(RawResponse(431, "Request Header Fields Too Large"));
      } else if (!stream.written() && stream.timed_out() && stream.started()) {
        stream.write(RawResponse(408, "Request Timeout"));
      }
    }
    ::shutdown(sock, SHUT_WR);
    // Over the limit this is the listening thread: drop only what is there.
    Drain(sock, t_over_limit ? Clock::now() : std::min(deadline, Clock::now() + kDrainTime));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      clients_.erase(sock);
    }
    ::close(sock);
    return ok;
  }

  static void Drain(int fd, Clock::time_point until) {
    char sink[4096];
    size_t drained = 0;
    while (drained < kDrainMaxBytes) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) <= 0) return;
      const ssize_t n = ::recv(fd, sink, sizeof(sink), 0);
      if (n <= 0) return;
      drained += static_cast<size_t>(n);
    }
  }

  const ServerOptions options_;
  std::mutex mutex_;
  std::set<int> clients_;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
};

namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextContentType[] = "text/plain; charset=utf-8";

// GET /metrics and GET / (a pointer to it); everything else by status code.
httplib::Server::HandlerResponse Route(const httplib::Request& req, httplib::Response& res,
                                       const Registry& registry) {
  std::string_view path = req.path;
  // absolute-form (RFC 9112 3.2.2): keep the path.
  if (path.starts_with("http://")) {
    const size_t slash = path.find('/', 7);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  if (path.empty() || path.front() != '/') {
    res.status = 400;
  } else if (req.method != "GET") {
    res.status = 405;
    res.set_header("Allow", "GET");
  } else if (path == "/metrics") {
    res.status = 200;
    res.set_content(registry.RenderShared(), kMetricsContentType);
  } else if (path == "/") {
    res.status = 200;
    res.set_content("vigild metrics: GET /metrics\n", kTextContentType);
  } else {
    res.status = 404;
  }
  return httplib::Server::HandlerResponse::Handled;
}

// httplib 0.11's own table is not in its header.
std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 500 ? "Client Error" : "Server Error";
  }
}

// Every error gets a short text body; a 400 from httplib's parser is made
// more precise where the connection or the request line says why.
httplib::Server::HandlerResponse OnError(const httplib::Request& req, httplib::Response& res) {
  if (res.status == 400 && t_connection != nullptr) {
    if (t_connection->too_large()) {
      res.status = 431;
    } else if (t_connection->timed_out()) {
      res.status = 408;
    } else if (req.version.size() == 8 && req.version.starts_with("HTTP/") &&
               req.version != "HTTP/1.0" && req.version != "HTTP/1.1") {
      res.status = 505;
    }
  }
  if (res.body.empty()) {
    res.set_content(std::string(ReasonPhrase(res.status)) + "\n", kTextContentType);
  }
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const std::string& listen, Registry& registry,
                                              const ServerOptions& options) {
  if (options.max_connections == 0 || options.max_header_bytes < 64 ||
      options.request_timeout.count() <= 0 || options.write_timeout.count() <= 0) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "metrics server options: max_connections must be >= 1, "
                         "max_header_bytes >= 64 and the timeouts positive");
  }
  VIGIL_ASSIGN_OR_RETURN(ListenSockaddr addr, ParseListenAddress(listen));

  std::unique_ptr<Server> server(new Server());
  server->http_ = std::make_unique<Http>(options);
  Http& http = *server->http_;
  const size_t workers = options.max_connections;
  http.new_task_queue = [workers] { return new BoundedPool(workers); };
  // Not httplib's default SO_REUSEPORT: a second server must not share the port.
  const int family = addr.family;
  http.set_socket_options([family](socket_t sock) {
    int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6) ::setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    ::fcntl(sock, F_SETFD, FD_CLOEXEC);
  });
  http.set_keep_alive_max_count(1);
  http.set_pre_routing_handler([&registry](const httplib::Request& req, httplib::Response& res) {
    return Route(req, res, registry);
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse(OnError));

  // The literal address, never a name: "localhost" was already mapped.
  const std::string host = IpText(addr.storage);
  const int port = PortOf(addr.storage);
  errno = 0;
  const int bound =
      port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    return Status::FromErrno(errno != 0 ? errno : EADDRNOTAVAIL, "metrics bind " + listen);
  }
  server->port_ = static_cast<uint16_t>(bound);
  try {
    server->thread_ = std::thread([&http, ended = &server->listen_ended_] {
      http.listen_after_bind();
      *ended = true;
    });
  } catch (const std::system_error& e) {
    return Status::FromErrno(e.code().value(), "metrics server thread");
  }
  // httplib's stop() does nothing until the thread has marked it running.
  while (!http.is_running() && !server->listen_ended_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

Server::~Server() {
  if (http_ == nullptr) return;
  http_->CloseClients();
  if (thread_.joinable()) {
    http_->stop();
    thread_.join();
  }
}

}  // namespace vigil::metrics
