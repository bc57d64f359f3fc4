#include "vigil/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
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

Result<std::unique_ptr<Server>> Server::Start(const std::string& listen, Registry& registry,
                                              const ServerOptions& options) {
  if (options.max_connections == 0 || options.max_header_bytes < 64 ||
      options.request_timeout.count() <= 0 || options.write_timeout.count() <= 0) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "metrics server options: max_connections must be >= 1, "
                         "max_header_bytes >= 64 and the timeouts positive");
  }
  VIGIL_ASSIGN_OR_RETURN(ListenSockaddr addr, ParseListenAddress(listen));

  UniqueFd listen_fd(::socket(addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd.valid()) return Status::FromErrno(errno, "metrics socket for " + listen);
  int one = 1;
  if (::setsockopt(listen_fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return Status::FromErrno(errno, "metrics SO_REUSEADDR for " + listen);
  }
  if (addr.family == AF_INET6 &&
      ::setsockopt(listen_fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) {
    return Status::FromErrno(errno, "metrics IPV6_V6ONLY for " + listen);
  }
  if (::bind(listen_fd.get(), reinterpret_cast<const sockaddr*>(&addr.storage), addr.length) != 0) {
    return Status::FromErrno(errno, "metrics bind " + listen);
  }
  if (::listen(listen_fd.get(), 64) != 0) {
    return Status::FromErrno(errno, "metrics listen " + listen);
  }
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  if (::getsockname(listen_fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return Status::FromErrno(errno, "metrics getsockname " + listen);
  }
  uint16_t port = addr.family == AF_INET6
                      ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                      : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);

  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd.valid()) return Status::FromErrno(errno, "metrics eventfd");

  std::unique_ptr<Server> server(
      new Server(registry, options, std::move(listen_fd), std::move(wake_fd), port));
  try {
    server->thread_ = std::thread(&Server::Run, server.get());
  } catch (const std::system_error& e) {
    return Status::FromErrno(e.code().value(), "metrics server thread");
  }
  return server;
}

Server::Server(Registry& registry, const ServerOptions& options, UniqueFd listen_fd,
               UniqueFd wake_fd, uint16_t port)
    : registry_(registry),
      options_(options),
      listen_fd_(std::move(listen_fd)),
      wake_fd_(std::move(wake_fd)),
      port_(port) {}

Server::~Server() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    // An eventfd write of 1 only fails on counter overflow, which cannot happen here.
    [[maybe_unused]] ssize_t written = ::write(wake_fd_.get(), &one, sizeof(one));
    thread_.join();
  }
}

namespace {

using Clock = std::chrono::steady_clock;

// After a failed accept for lack of fds or memory, stop polling the listening
// socket for this long instead of spinning on it.
constexpr std::chrono::milliseconds kAcceptBackoff{100};

enum class Phase {
  kReading,   // collecting the request header
  kWriting,   // sending the response
  kDraining,  // response sent and write side shut: read and discard until the client closes,
              // so unread request bytes do not turn our close into a reset that loses the response
};

struct Connection {
  UniqueFd fd;
  Phase phase = Phase::kReading;
  std::string input;
  std::string output;
  size_t output_sent = 0;
  Clock::time_point deadline;
  bool done = false;
};

std::string HttpResponse(std::string_view status, std::string_view body,
                         std::string_view content_type = "text/plain; charset=utf-8",
                         std::string_view extra_headers = "") {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  out += body;
  return out;
}

std::string BadRequest() { return HttpResponse("400 Bad Request", "Bad Request\n"); }

bool IsUpperToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// `head` is the request line and headers, without the blank line ending them.
std::string Respond(std::string_view head, const Registry& registry) {
  size_t line_end = head.find('\n');
  std::string_view request_line = head.substr(0, line_end);
  if (request_line.ends_with('\r')) request_line.remove_suffix(1);

  // Every header line needs a field name and a colon; we read none of them.
  if (line_end != std::string_view::npos) {
    std::string_view rest = head.substr(line_end + 1);
    while (!rest.empty()) {
      size_t end = rest.find('\n');
      std::string_view line = rest.substr(0, end);
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.empty() || line.front() == ' ' || line.front() == '\t' ||
          line.find(':') == std::string_view::npos || line.front() == ':') {
        return BadRequest();
      }
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
  }

  // METHOD SP request-target SP HTTP-version, single spaces.
  size_t sp1 = request_line.find(' ');
  if (sp1 == std::string_view::npos) return BadRequest();
  size_t sp2 = request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return BadRequest();
  }
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (!IsUpperToken(method) || target.empty()) return BadRequest();
  if (std::any_of(target.begin(), target.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return BadRequest();
  }
  if (version.size() != 8 || !version.starts_with("HTTP/") || !IsAsciiDigit(version[5]) ||
      version[6] != '.' || !IsAsciiDigit(version[7])) {
    return BadRequest();
  }
  if (version != "HTTP/1.0" && version != "HTTP/1.1") {
    return HttpResponse("505 HTTP Version Not Supported", "HTTP Version Not Supported\n");
  }
  // absolute-form (RFC 9112 3.2.2): keep the path.
  if (target.starts_with("http://")) {
    size_t slash = target.find('/', 7);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.front() != '/') return BadRequest();
  if (method != "GET") {
    return HttpResponse("405 Method Not Allowed", "Method Not Allowed\n",
                        "text/plain; charset=utf-8", "Allow: GET\r\n");
  }
  std::string_view path = target.substr(0, target.find('?'));
  if (path == "/metrics") {
    return HttpResponse("200 OK", registry.Render(), "text/plain; version=0.0.4; charset=utf-8");
  }
  if (path == "/") return HttpResponse("200 OK", "vigild metrics: GET /metrics\n");
  return HttpResponse("404 Not Found", "Not Found\n");
}

// Sends what it can without blocking; then shuts the write side and drains.
void WriteSome(Connection& conn, const ServerOptions& options) {
  while (conn.output_sent < conn.output.size()) {
    ssize_t n = ::send(conn.fd.get(), conn.output.data() + conn.output_sent,
                       conn.output.size() - conn.output_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      conn.output_sent += static_cast<size_t>(n);
      conn.deadline = Clock::now() + options.write_timeout;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // wait for POLLOUT
    conn.done = true;  // the client went away (EPIPE, ECONNRESET)
    return;
  }
  std::string().swap(conn.output);  // a scrape can be megabytes: free it now
  ::shutdown(conn.fd.get(), SHUT_WR);
  conn.phase = Phase::kDraining;
  conn.deadline = Clock::now() + options.request_timeout;
}

void StartResponse(Connection& conn, std::string response, const ServerOptions& options) {
  std::string().swap(conn.input);
  conn.output = std::move(response);
  conn.output_sent = 0;
  conn.phase = Phase::kWriting;
  conn.deadline = Clock::now() + options.write_timeout;
  WriteSome(conn, options);
}

// The length of the header including its terminating blank line, or 0 when
// the header has not ended yet. Bare LF line ends are accepted (RFC 9112 2.2).
size_t HeaderLength(std::string_view input, std::string_view* head) {
  for (size_t i = 0; i < input.size(); ++i) {
    if (input[i] != '\n') continue;
    if (i + 1 < input.size() && input[i + 1] == '\n') {
      *head = input.substr(0, i);
      return i + 2;
    }
    if (i + 2 < input.size() && input[i + 1] == '\r' && input[i + 2] == '\n') {
      *head = input.substr(0, i > 0 && input[i - 1] == '\r' ? i - 1 : i);
      return i + 3;
    }
  }
  return 0;
}

void ReadSome(Connection& conn, const ServerOptions& options, const Registry& registry) {
  char buf[4096];
  for (;;) {
    // Read at most one byte past the limit: enough to know it was exceeded.
    size_t room = options.max_header_bytes + 1 - conn.input.size();
    ssize_t n = ::recv(conn.fd.get(), buf, std::min(sizeof(buf), room), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      conn.done = true;  // closed or reset before a complete request: nobody to answer
      return;
    }
    conn.input.append(buf, static_cast<size_t>(n));
    std::string_view head;
    size_t header_length = HeaderLength(conn.input, &head);
    if (header_length > options.max_header_bytes ||
        (header_length == 0 && conn.input.size() > options.max_header_bytes)) {
      StartResponse(
          conn,
          HttpResponse("431 Request Header Fields Too Large", "Request Header Fields Too Large\n"),
          options);
      return;
    }
    if (header_length > 0) {
      StartResponse(conn, Respond(head, registry), options);
      return;
    }
  }
}

void Drain(Connection& conn) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(conn.fd.get(), buf, sizeof(buf), 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    conn.done = true;  // EOF or error: the client has what it needs
    return;
  }
}

void OnDeadline(Connection& conn, const ServerOptions& options) {
  if (conn.phase == Phase::kReading && !conn.input.empty()) {
    StartResponse(conn, HttpResponse("408 Request Timeout", "Request Timeout\n"), options);
    // The 408 gets write_timeout to go out; a client that sent nothing just gets closed.
    if (conn.phase != Phase::kReading) return;
  }
  conn.done = true;
}

}  // namespace

void Server::Run() {
  std::vector<Connection> connections;
  std::vector<pollfd> fds;
  std::optional<Clock::time_point> accept_paused_until;

  for (;;) {
    Clock::time_point now = Clock::now();
    if (accept_paused_until && now >= *accept_paused_until) accept_paused_until.reset();

    std::optional<Clock::time_point> next_deadline = accept_paused_until;
    fds.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    // A negative fd is skipped by poll(): that is how accepting pauses.
    fds.push_back({accept_paused_until ? -1 : listen_fd_.get(), POLLIN, 0});
    for (const Connection& conn : connections) {
      short events = conn.phase == Phase::kWriting ? POLLOUT : POLLIN;
      fds.push_back({conn.fd.get(), events, 0});
      if (!next_deadline || conn.deadline < *next_deadline) next_deadline = conn.deadline;
    }
    int timeout_ms = -1;
    if (next_deadline) {
      auto wait = std::chrono::ceil<std::chrono::milliseconds>(*next_deadline - now);
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, 60'000));
    }

    int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0) {
      if (errno == EINTR || errno == ENOMEM || errno == EAGAIN) continue;
      return;  // EFAULT/EINVAL: a bug; stopping beats spinning
    }
    if (fds[0].revents != 0) return;  // the destructor asked us to stop

    // Existing connections first: accept() below appends to `connections`.
    size_t polled = connections.size();
    for (size_t i = 0; i < polled; ++i) {
      Connection& conn = connections[i];
      short revents = fds[i + 2].revents;
      if (revents == 0) continue;
      switch (conn.phase) {
        case Phase::kReading:
          ReadSome(conn, options_, registry_);
          break;
        case Phase::kWriting:
          WriteSome(conn, options_);
          break;
        case Phase::kDraining:
          Drain(conn);
          break;
      }
      if ((revents & POLLNVAL) != 0) conn.done = true;
    }

    now = Clock::now();
    for (size_t i = 0; i < polled; ++i) {
      Connection& conn = connections[i];
      if (!conn.done && now >= conn.deadline) OnDeadline(conn, options_);
    }
    std::erase_if(connections, [](const Connection& conn) { return conn.done; });

    if ((fds[1].revents & POLLIN) != 0) {
      for (;;) {
        int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            accept_paused_until = Clock::now() + kAcceptBackoff;
          }
          break;  // EAGAIN: backlog empty
        }
        UniqueFd client(fd);
        if (connections.size() >= options_.max_connections) {
          // Best effort, never blocking; the close follows at once.
          static const std::string kBusy =
              HttpResponse("503 Service Unavailable", "Too many connections\n");
          [[maybe_unused]] ssize_t sent =
              ::send(client.get(), kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
          continue;
        }
        Connection conn;
        conn.fd = std::move(client);
        conn.deadline = Clock::now() + options_.request_timeout;
        connections.push_back(std::move(conn));
      }
    }
  }
}

}  // namespace vigil::metrics
