// Prometheus metrics for vigild: a registry of counters and gauges rendered in
// the text exposition format 0.0.4, and a loopback-only HTTP endpoint
// (cpp-httplib) that serves it at GET /metrics.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_METRICS_H_
#define VIGIL_USERSPACE_LIB_VIGIL_METRICS_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "vigil/status.h"

namespace vigil::metrics {

// Bounds memory when many agents come and go: a family refuses new series
// beyond this and counts the refusals in kSeriesDroppedMetric.
inline constexpr size_t kDefaultMaxSeriesPerFamily = 100000;

// The registry's own counter, labelled {family, reason}; reason is
// "series_limit", "label_count" (wrong number of label values) or
// "invalid_value" (a negative or NaN counter update).
inline constexpr std::string_view kSeriesDroppedMetric = "vigil_metrics_series_dropped_total";

enum class MetricType { kCounter, kGauge };

// The label values of one series, in the order of its family's label names.
using LabelValues = std::vector<std::string>;

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsValidMetricName(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved by Prometheus).
bool IsValidLabelName(std::string_view name);
// A sample value as the exposition format writes it: integral values up to
// 2^63 without exponent or fraction ("42"), others in the shortest form that
// reads back to the same double ("0.25", "1e+300"), "NaN", "+Inf", "-Inf".
std::string FormatSampleValue(double value);

class Registry;

// One metric family: name, help, type, label names, and its series keyed by
// label values. Created by Registry::AddCounter / AddGauge and owned by the
// registry; references stay valid for the registry's lifetime.
// Updates with the wrong number of label values, and new series past the
// registry's per-family limit, are dropped and counted in kSeriesDroppedMetric
// (updates sit on hot paths, so they do not return a Status).
// Thread-safety: thread-safe; every method takes the registry's mutex.
class Family {
 public:
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;
  virtual ~Family() = default;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // The current value of one series; nullopt when it does not exist.
  std::optional<double> Value(const LabelValues& label_values) const;
  size_t SeriesCount() const;
  // Forgets one series (e.g. an agent that went away); absent series are ignored.
  void RemoveSeries(const LabelValues& label_values);
  // Forgets every series, including the unlabelled one of a family without labels.
  void Clear();

 protected:
  enum class UpdateKind { kAdd, kSet };
  Family(Registry& registry, std::string name, std::string help, MetricType type,
         std::vector<std::string> label_names);
  void Update(const LabelValues& label_values, double value, UpdateKind kind);

 private:
  friend class Registry;
  void UpdateLocked(const LabelValues& label_values, double value, UpdateKind kind);

  Registry& registry_;
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
  std::map<LabelValues, double> series_;  // guarded by registry_.mutex_; sorted for Render
};

// A monotonic count. Thread-safety: thread-safe (see Family).
class Counter final : public Family {
 public:
  // Adds delta to the series, creating it at 0 first; a negative or NaN delta is dropped.
  void Inc(const LabelValues& label_values, double delta = 1);
  // Mirrors a counter kept elsewhere (e.g. the kernel's lost-record count);
  // a negative or NaN value is dropped. A value lower than the last one reads
  // as a counter reset to Prometheus, as it should after a module reload.
  void Set(const LabelValues& label_values, double value);

 private:
  friend class Registry;
  using Family::Family;
};

// A value that goes up and down. Thread-safety: thread-safe (see Family).
class Gauge final : public Family {
 public:
  void Set(const LabelValues& label_values, double value);
  // Adds delta (which may be negative) to the series, creating it at 0 first.
  void Add(const LabelValues& label_values, double delta);

 private:
  friend class Registry;
  using Family::Family;
};

// The set of metric families vigild exports.
// Thread-safety: thread-safe; one mutex guards registration, updates and Render.
class Registry {
 public:
  explicit Registry(size_t max_series_per_family = kDefaultMaxSeriesPerFamily);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  // kInvalidArgument for a name or label name outside the Prometheus grammar,
  // a repeated label name, or a family name already registered. A family
  // without labels starts with its one series at 0.
  Result<Counter*> AddCounter(std::string_view name, std::string_view help,
                              std::vector<std::string> label_names = {});
  Result<Gauge*> AddGauge(std::string_view name, std::string_view help,
                          std::vector<std::string> label_names = {});

  // Text exposition format 0.0.4: families in registration order (the
  // registry's own kSeriesDroppedMetric last), series sorted by label values.
  std::string Render() const;
  // Render() for concurrent scrapers: one renders at a time, and a scrape
  // takes the text of a render that started after it arrived (so it is never
  // older than the request). Sixteen scrapers then cost one or two renders in
  // a row, not sixteen at once under the lock the daemon's updates take.
  std::string RenderShared() const;

  size_t max_series_per_family() const { return max_series_per_family_; }

 private:
  friend class Family;
  Status CheckNewFamily(std::string_view name, const std::vector<std::string>& label_names) const;
  void CountDroppedLocked(const std::string& family, std::string_view reason);

  const size_t max_series_per_family_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;  // registration order
  std::unique_ptr<Counter> series_dropped_;
  // RenderShared's last text and when its render started.
  mutable std::mutex shared_mutex_;
  mutable std::string shared_;
  mutable std::optional<std::chrono::steady_clock::time_point> shared_started_;
};

// Limits of the HTTP endpoint.
struct ServerOptions {
  // Connections held at once (including ones still sending their request);
  // more are answered 503 and closed.
  size_t max_connections = 16;
  // Time a client has to send its whole request header after connecting, so
  // a slow or silent client cannot hold a connection slot.
  std::chrono::milliseconds request_timeout{2000};
  // Time a client has to take the whole response: a client that reads a few
  // bytes now and then cannot hold a worker (a registry of 10,000 agents
  // renders to ~1.5 MB, more than the socket buffers hold).
  std::chrono::milliseconds write_timeout{5000};
  // Request line plus headers; longer requests get 431.
  size_t max_header_bytes = 8192;
};

// kInvalidArgument unless `listen` is HOST:PORT with HOST one of 127.0.0.0/8,
// [::1] or localhost (taken as 127.0.0.1, never resolved) and PORT 0-65535.
// The endpoint is unauthenticated, so it never listens beyond loopback.
Status CheckListenAddress(std::string_view listen);

// GET /metrics over HTTP/1.0 and 1.1 on a loopback address, served by
// cpp-httplib: one listening thread and max_connections worker threads, one
// request per connection (Connection: close). A connection that finds every
// worker busy is answered 503; a request not complete within request_timeout
// gets 408 (or is closed, when nothing came); a request header longer than
// max_header_bytes gets 431. Other paths get 404, other methods 405.
// Thread-safety: Start and the destructor from one thread; port() from any.
// The registry must outlive the server.
class Server {
 public:
  // Binds and listens, then starts the threads. Port 0 picks a free port (see
  // port()). Errors: CheckListenAddress's, bad options (kInvalidArgument),
  // bind/listen failures (errno, with the address).
  static Result<std::unique_ptr<Server>> Start(const std::string& listen, Registry& registry,
                                               const ServerOptions& options = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Shuts down every client connection, stops listening and joins the
  // threads; does not wait for clients.
  ~Server();

  // The bound port (the chosen one when Start was given port 0).
  uint16_t port() const { return port_; }

 private:
  class Http;  // httplib's server, kept out of this header
  Server() = default;

  std::unique_ptr<Http> http_;
  uint16_t port_ = 0;
  std::thread thread_;  // httplib's listening loop
  std::atomic<bool> listen_ended_ = false;
};

}  // namespace vigil::metrics

#endif  // VIGIL_USERSPACE_LIB_VIGIL_METRICS_H_
