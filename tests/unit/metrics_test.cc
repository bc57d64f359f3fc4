// The Prometheus registry (exact text exposition output, name validation,
// series limit) and the loopback HTTP endpoint (cpp-httplib) over real
// sockets on 127.0.0.1: status codes and headers, address refusal, slow and
// silent clients, the connection limit, scrapes during concurrent updates.
// Requests are written by hand, so malformed ones can be sent too.
#include "vigil/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "vigil/unique_fd.h"

namespace vigil::metrics {
namespace {

using std::chrono::milliseconds;

// ---- Registry --------------------------------------------------------------

constexpr std::string_view kEmptyDroppedFamily =
    "# HELP vigil_metrics_series_dropped_total Metric updates dropped by vigild's metrics "
    "registry, by family and reason (series_limit, label_count, invalid_value)\n"
    "# TYPE vigil_metrics_series_dropped_total counter\n";

TEST(MetricsRegistry, EmptyRegistryRendersOnlyItsOwnFamily) {
  Registry registry;
  EXPECT_EQ(registry.Render(), kEmptyDroppedFamily);
}

TEST(MetricsRegistry, RendersFamiliesInRegistrationOrderAndSeriesSorted) {
  Registry registry;
  Result<Gauge*> agents = registry.AddGauge("vigil_agents", "Tracked agents");
  ASSERT_TRUE(agents.ok()) << agents.status().ToString();
  Result<Counter*> records =
      registry.AddCounter("vigil_records_total", "Records received", {"type"});
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  Result<Gauge*> rss = registry.AddGauge("vigil_agent_rss_bytes", "RSS", {"agent", "cgroup"});
  ASSERT_TRUE(rss.ok()) << rss.status().ToString();

  (*records)->Inc({"sample"}, 7);
  (*records)->Inc({"exec"});
  (*records)->Inc({"exec"}, 2);
  (*records)->Set({"fork"}, 12345678901234.0);
  (*agents)->Set({}, 3);
  (*rss)->Set({"web", "b"}, 4096);
  (*rss)->Set({"db", "z"}, 0.5);
  (*rss)->Set({"web", "a"}, -1);

  EXPECT_EQ(registry.Render(),
            "# HELP vigil_agents Tracked agents\n"
            "# TYPE vigil_agents gauge\n"
            "vigil_agents 3\n"
            "# HELP vigil_records_total Records received\n"
            "# TYPE vigil_records_total counter\n"
            "vigil_records_total{type=\"exec\"} 3\n"
            "vigil_records_total{type=\"fork\"} 12345678901234\n"
            "vigil_records_total{type=\"sample\"} 7\n"
            "# HELP vigil_agent_rss_bytes RSS\n"
            "# TYPE vigil_agent_rss_bytes gauge\n"
            "vigil_agent_rss_bytes{agent=\"db\",cgroup=\"z\"} 0.5\n"
            "vigil_agent_rss_bytes{agent=\"web\",cgroup=\"a\"} -1\n"
            "vigil_agent_rss_bytes{agent=\"web\",cgroup=\"b\"} 4096\n" +
                std::string(kEmptyDroppedFamily));
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  Registry registry;
  Result<Gauge*> gauge =
      registry.AddGauge("vigil_test", "help with \\ backslash,\nnewline and \"quotes\"", {"name"});
  ASSERT_TRUE(gauge.ok());
  (*gauge)->Set({"a\\b\"c\nd"}, 1);
  (*gauge)->Set({""}, 2);
  (*gauge)->Set({"utf-8 \xc3\xa9"}, 3);
  std::string text = registry.Render();
  EXPECT_NE(text.find("# HELP vigil_test help with \\\\ backslash,\\nnewline and \"quotes\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_test{name=\"a\\\\b\\\"c\\nd\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_test{name=\"\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_test{name=\"utf-8 \xc3\xa9\"} 3\n"), std::string::npos) << text;
}

TEST(MetricsRegistry, FormatsValuesExactly) {
  EXPECT_EQ(FormatSampleValue(0), "0");
  EXPECT_EQ(FormatSampleValue(-0.0), "0");
  EXPECT_EQ(FormatSampleValue(42), "42");
  EXPECT_EQ(FormatSampleValue(-3), "-3");
  EXPECT_EQ(FormatSampleValue(1e16), "10000000000000000");
  EXPECT_EQ(FormatSampleValue(9007199254740993.0), "9007199254740992");  // 2^53 + 1 rounds
  EXPECT_EQ(FormatSampleValue(0.25), "0.25");
  EXPECT_EQ(FormatSampleValue(0.1), "0.1");
  EXPECT_EQ(FormatSampleValue(-1.5), "-1.5");
  EXPECT_EQ(FormatSampleValue(1e300), "1e+300");
  EXPECT_EQ(FormatSampleValue(0x1p63), "9223372036854775808");  // past int64: shortest form
  EXPECT_EQ(FormatSampleValue(1e20), "1e+20");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
}

TEST(MetricsRegistry, ValidatesNames) {
  for (std::string_view good : {"a", "_a", ":a", "vigil_records_total", "a:b_c9", "A1"}) {
    EXPECT_TRUE(IsValidMetricName(good)) << good;
  }
  for (std::string_view bad : {"", "9a", "a-b", "a b", "a.b", "é", "a\n"}) {
    EXPECT_FALSE(IsValidMetricName(bad)) << bad;
  }
  for (std::string_view good : {"a", "_a", "agent", "a_9", "Z"}) {
    EXPECT_TRUE(IsValidLabelName(good)) << good;
  }
  for (std::string_view bad : {"", "__name__", "__x", "9a", "a:b", "a-b", "a b"}) {
    EXPECT_FALSE(IsValidLabelName(bad)) << bad;
  }

  Registry registry;
  Result<Counter*> bad_name = registry.AddCounter("vigil-records", "x");
  ASSERT_FALSE(bad_name.ok());
  EXPECT_EQ(bad_name.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad_name.status().message().find("\"vigil-records\""), std::string::npos)
      << bad_name.status().message();

  Result<Gauge*> reserved_label = registry.AddGauge("vigil_x", "x", {"__agent"});
  ASSERT_FALSE(reserved_label.ok());
  EXPECT_EQ(reserved_label.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(reserved_label.status().message().find("\"__agent\""), std::string::npos);

  Result<Gauge*> bad_label = registry.AddGauge("vigil_x", "x", {"agent", "bad label"});
  ASSERT_FALSE(bad_label.ok());
  EXPECT_EQ(bad_label.status().code(), ErrorCode::kInvalidArgument);

  Result<Gauge*> repeated = registry.AddGauge("vigil_x", "x", {"agent", "agent"});
  ASSERT_FALSE(repeated.ok());
  EXPECT_NE(repeated.status().message().find("repeated"), std::string::npos);

  ASSERT_TRUE(registry.AddGauge("vigil_x", "x", {"agent"}).ok());
  Result<Counter*> again = registry.AddCounter("vigil_x", "y");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("already registered"), std::string::npos);

  Result<Counter*> own = registry.AddCounter(std::string(kSeriesDroppedMetric), "mine");
  EXPECT_FALSE(own.ok());
}

TEST(MetricsRegistry, CounterIncSetAndRefusedUpdates) {
  Registry registry;
  Counter* lost = *registry.AddCounter("vigil_lost_total", "Lost records", {"cpu"});
  lost->Inc({"0"});
  lost->Inc({"0"}, 4);
  EXPECT_EQ(lost->Value({"0"}), 5);
  lost->Set({"0"}, 100);  // mirrored kernel counter
  EXPECT_EQ(lost->Value({"0"}), 100);
  EXPECT_EQ(lost->Value({"1"}), std::nullopt);

  lost->Inc({"0"}, -1);
  lost->Inc({"0"}, std::numeric_limits<double>::quiet_NaN());
  lost->Set({"0"}, -5);
  lost->Inc({}, 1);          // wrong number of label values
  lost->Inc({"0", "x"}, 1);  // idem
  EXPECT_EQ(lost->Value({"0"}), 100);
  EXPECT_EQ(lost->SeriesCount(), 1u);

  std::string text = registry.Render();
  EXPECT_NE(text.find("vigil_metrics_series_dropped_total{family=\"vigil_lost_total\","
                      "reason=\"invalid_value\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_metrics_series_dropped_total{family=\"vigil_lost_total\","
                      "reason=\"label_count\"} 2\n"),
            std::string::npos)
      << text;
}

TEST(MetricsRegistry, GaugeSetAddRemoveClear) {
  Registry registry;
  Gauge* rss = *registry.AddGauge("vigil_agent_rss_bytes", "RSS", {"agent"});
  rss->Set({"web"}, 10);
  rss->Add({"web"}, -15);
  rss->Add({"db"}, 2.5);
  EXPECT_EQ(rss->Value({"web"}), -5);
  EXPECT_EQ(rss->Value({"db"}), 2.5);

  rss->RemoveSeries({"web"});
  rss->RemoveSeries({"never-there"});
  EXPECT_EQ(rss->Value({"web"}), std::nullopt);
  EXPECT_EQ(registry.Render().find("agent=\"web\""), std::string::npos);
  EXPECT_NE(registry.Render().find("vigil_agent_rss_bytes{agent=\"db\"} 2.5\n"), std::string::npos);

  rss->Clear();
  EXPECT_EQ(rss->SeriesCount(), 0u);
  rss->Set({"web"}, 1);  // usable after Clear
  EXPECT_EQ(rss->SeriesCount(), 1u);
}

TEST(MetricsRegistry, UnlabelledFamilyStartsAtZero) {
  Registry registry;
  Counter* scrapes = *registry.AddCounter("vigil_events_total", "Events");
  EXPECT_EQ(scrapes->Value({}), 0);
  EXPECT_NE(registry.Render().find("\nvigil_events_total 0\n"), std::string::npos);
}

TEST(MetricsRegistry, SeriesLimitDropsNewSeriesAndCountsThem) {
  Registry registry(/*max_series_per_family=*/3);
  EXPECT_EQ(registry.max_series_per_family(), 3u);
  Gauge* rss = *registry.AddGauge("vigil_agent_rss_bytes", "RSS", {"agent"});
  for (int i = 0; i < 5; ++i) rss->Set({"agent" + std::to_string(i)}, i);
  EXPECT_EQ(rss->SeriesCount(), 3u);
  EXPECT_EQ(rss->Value({"agent3"}), std::nullopt);

  rss->Set({"agent0"}, 42);  // existing series still update
  EXPECT_EQ(rss->Value({"agent0"}), 42);

  rss->RemoveSeries({"agent1"});  // room again
  rss->Set({"agent4"}, 4);
  EXPECT_EQ(rss->Value({"agent4"}), 4);

  std::string text = registry.Render();
  EXPECT_NE(text.find("vigil_metrics_series_dropped_total{family=\"vigil_agent_rss_bytes\","
                      "reason=\"series_limit\"} 2\n"),
            std::string::npos)
      << text;
}

// ---- HTTP client helpers ---------------------------------------------------

UniqueFd ConnectLoopback(uint16_t port, int family = AF_INET) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(fd.valid()) << std::strerror(errno);
  // A safety net so a server bug fails the test instead of hanging it.
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc;
  if (family == AF_INET6) {
    sockaddr_in6 sin6{};
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    sin6.sin6_addr = in6addr_loopback;
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sin6), sizeof(sin6));
  } else {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sin), sizeof(sin));
  }
  EXPECT_EQ(rc, 0) << std::strerror(errno);
  return fd;
}

void SendAll(const UniqueFd& fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0) << std::strerror(errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Everything up to the server's close. `error` gets the errno that ended it
// instead of EOF (0 for a clean EOF).
std::string ReadUntilClose(const UniqueFd& fd, int* error = nullptr) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (error != nullptr) *error = n == 0 ? 0 : errno;
      EXPECT_FALSE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          << "no close from the server within 10 s";
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

HttpReply ParseReply(const std::string& raw) {
  HttpReply reply;
  size_t head_end = raw.find("\r\n\r\n");
  EXPECT_NE(head_end, std::string::npos) << raw;
  if (head_end == std::string::npos) return reply;
  std::string head = raw.substr(0, head_end);
  reply.body = raw.substr(head_end + 4);
  size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  EXPECT_TRUE(status_line.starts_with("HTTP/1.1 ")) << status_line;
  reply.status = std::atoi(status_line.c_str() + 9);
  while (line_end != std::string::npos) {
    size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    std::string line =
        head.substr(start, line_end == std::string::npos ? line_end : line_end - start);
    size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t value_start = line.find_first_not_of(' ', colon + 1);
    reply.headers[name] = value_start == std::string::npos ? "" : line.substr(value_start);
  }
  return reply;
}

HttpReply Exchange(uint16_t port, std::string_view request, int family = AF_INET) {
  UniqueFd fd = ConnectLoopback(port, family);
  SendAll(fd, request);
  return ParseReply(ReadUntilClose(fd));
}

HttpReply Get(uint16_t port, std::string_view target) {
  return Exchange(port, "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n\r\n");
}

std::unique_ptr<Server> StartOrDie(Registry& registry, const ServerOptions& options = {},
                                   const std::string& listen = "127.0.0.1:0") {
  Result<std::unique_ptr<Server>> server = Server::Start(listen, registry, options);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return nullptr;
  EXPECT_NE((*server)->port(), 0);
  return std::move(server).value();
}

// The value of the sample line starting with `series` ("name{labels}").
std::optional<double> SampleValue(const std::string& text, const std::string& series) {
  std::string needle = "\n" + series + " ";
  size_t at = text.find(needle);
  if (at == std::string::npos) return std::nullopt;
  return std::stod(text.substr(at + needle.size()));
}

// ---- Server ----------------------------------------------------------------

TEST(MetricsServer, ServesMetricsWithHeaders) {
  Registry registry;
  Counter* records = *registry.AddCounter("vigil_records_total", "Records received", {"type"});
  records->Inc({"exec"}, 3);
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);

  HttpReply reply = Get(server->port(), "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply.headers["content-length"], std::to_string(reply.body.size()));
  EXPECT_EQ(reply.headers["connection"], "close");
  EXPECT_EQ(reply.body, registry.Render());
  EXPECT_NE(reply.body.find("\nvigil_records_total{type=\"exec\"} 3\n"), std::string::npos);

  // Scrapes see later updates; a query string is ignored; HTTP/1.0 works.
  records->Inc({"exec"});
  reply = Exchange(server->port(), "GET /metrics?name[]=x HTTP/1.0\r\n\r\n");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(SampleValue(reply.body, "vigil_records_total{type=\"exec\"}"), 4);
}

TEST(MetricsServer, AnswersOtherRequests) {
  Registry registry;
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);
  uint16_t port = server->port();

  HttpReply root = Get(port, "/");
  EXPECT_EQ(root.status, 200);
  EXPECT_NE(root.body.find("/metrics"), std::string::npos);
  EXPECT_EQ(root.headers["content-length"], std::to_string(root.body.size()));

  EXPECT_EQ(Get(port, "/metrics/").status, 404);
  EXPECT_EQ(Get(port, "/favicon.ico").status, 404);

  HttpReply post = Exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET");
  EXPECT_EQ(Exchange(port, "DELETE / HTTP/1.1\r\n\r\n").status, 405);

  for (std::string_view malformed : {
           "garbage\r\n\r\n",
           "GET /metrics\r\n\r\n",                                  // no version
           "get /metrics HTTP/1.1\r\n\r\n",                         // methods are case-sensitive
           "GET metrics HTTP/1.1\r\n\r\n",                          // not origin-form
           "GET /metrics HTTP/1.1 extra\r\n\r\n",                   // four fields
           "GET /metrics FTP/1.1\r\n\r\n",                          // not HTTP
           "\x16\x03\x01\x02\x7f\x01\x01\x01\xfc\x03\x03\r\n\r\n",  // binary, TLS-like
       }) {
    EXPECT_EQ(Exchange(port, malformed).status, 400) << malformed;
  }
  EXPECT_EQ(Exchange(port, "GET /metrics HTTP/2.0\r\n\r\n").status, 505);

  // A request line ended by a bare LF is not HTTP/1.1 to httplib; absolute-form
  // targets are accepted.
  EXPECT_EQ(Exchange(port, "GET /metrics HTTP/1.1\nHost: x\n\n").status, 400);
  EXPECT_EQ(Exchange(port, "GET http://127.0.0.1/metrics HTTP/1.1\r\n\r\n").status, 200);
}

TEST(MetricsServer, OversizedHeaderGets431) {
  Registry registry;
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);

  // Just under the limit still works.
  std::string fits = "GET /metrics HTTP/1.1\r\nX-Pad: ";
  fits += std::string(8192 - fits.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(fits.size(), 8192u);
  EXPECT_EQ(Exchange(server->port(), fits).status, 200);

  // One byte over, and a much longer one: the response still arrives intact
  // although the server stops reading the request.
  std::string over = "GET /metrics HTTP/1.1\r\nX-Pad: ";
  over += std::string(8193 - over.size() - 4, 'a') + "\r\n\r\n";
  EXPECT_EQ(Exchange(server->port(), over).status, 431);
  std::string huge = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(200000, 'a') + "\r\n\r\n";
  EXPECT_EQ(Exchange(server->port(), huge).status, 431);
  // An endless request line with no line end at all.
  EXPECT_EQ(Exchange(server->port(), "GET /" + std::string(10000, 'x')).status, 431);
}

TEST(MetricsServer, ExtraBytesAfterTheRequestDoNotLoseTheResponse) {
  Registry registry;
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(registry.AddGauge("vigil_g" + std::to_string(i), "g").ok());
  }
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);
  HttpReply reply =
      Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n" + std::string(100000, 'z'));
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, registry.Render());
}

TEST(MetricsServer, LargeScrapeArrivesWhole) {
  Registry registry;
  Gauge* rss = *registry.AddGauge("vigil_agent_rss_bytes", "RSS", {"agent"});
  for (int i = 0; i < 50000; ++i) rss->Set({"agent-" + std::to_string(i)}, i);
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);
  HttpReply reply = Get(server->port(), "/metrics");
  EXPECT_EQ(reply.status, 200);
  EXPECT_GT(reply.body.size(), 1'000'000u);
  EXPECT_EQ(reply.headers["content-length"], std::to_string(reply.body.size()));
  EXPECT_EQ(reply.body, registry.Render());
}

TEST(MetricsServer, ListensOnLocalhostAndIpv6Loopback) {
  Registry registry;
  std::unique_ptr<Server> by_name = StartOrDie(registry, {}, "localhost:0");
  ASSERT_NE(by_name, nullptr);
  EXPECT_EQ(Get(by_name->port(), "/metrics").status, 200);

  Result<std::unique_ptr<Server>> v6 = Server::Start("[::1]:0", registry);
  if (!v6.ok() &&
      (v6.status().origin_code() == EADDRNOTAVAIL || v6.status().origin_code() == EAFNOSUPPORT)) {
    GTEST_SKIP() << "no IPv6 loopback here: " << v6.status().ToString();
  }
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(Exchange((*v6)->port(), "GET /metrics HTTP/1.1\r\n\r\n", AF_INET6).status, 200);
}

TEST(MetricsServer, RefusesNonLoopbackAndMalformedAddresses) {
  Registry registry;
  struct Case {
    std::string listen;
    std::string expected_text;  // part of the message
  };
  const std::vector<Case> cases = {
      {"0.0.0.0:9477", "0.0.0.0 is not a loopback address"},
      {"192.0.2.1:1", "192.0.2.1 is not a loopback address"},
      {"[::]:9477", ":: is not a loopback address"},
      {"[2001:db8::1]:9477", "is not a loopback address"},
      {"[::ffff:127.0.0.1]:9477", "is not a loopback address"},
      {":9477", "no host"},
      {"foo", "no port"},
      {"", "empty"},
      {":99999", "\":99999\""},
      {"127.0.0.1:99999", "port \"99999\" is not a number from 0 to 65535"},
      {"127.0.0.1:", "port \"\""},
      {"127.0.0.1:-1", "port \"-1\""},
      {"127.0.0.1:+80", "port \"+80\""},
      {"127.0.0.1:80x", "port \"80x\""},
      {"example.com:80", "not an IPv4 address"},
      {"localhost.localdomain:80", "not an IPv4 address"},
      {"127.1:80", "not an IPv4 address"},
      {"::1:9477", "need brackets"},
      {"[::1:9477", "brackets"},
      {"[fe80::1%lo]:9477", "not an IPv6 address"},
  };
  for (const Case& c : cases) {
    Status checked = CheckListenAddress(c.listen);
    EXPECT_EQ(checked.code(), ErrorCode::kInvalidArgument) << c.listen;
    Result<std::unique_ptr<Server>> server = Server::Start(c.listen, registry);
    ASSERT_FALSE(server.ok()) << c.listen;
    EXPECT_EQ(server.status().code(), ErrorCode::kInvalidArgument) << c.listen;
    const std::string& message = server.status().message();
    EXPECT_NE(message.find("\"" + c.listen + "\""), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected_text), std::string::npos) << message;
  }
  // The refusal of a routable address says why.
  Status wildcard = CheckListenAddress("0.0.0.0:9477");
  EXPECT_NE(wildcard.message().find("unauthenticated"), std::string::npos) << wildcard.message();

  for (std::string_view ok : {"127.0.0.1:9477", "127.8.9.10:0", "[::1]:65535", "localhost:1"}) {
    EXPECT_TRUE(CheckListenAddress(ok).ok()) << ok << ": " << CheckListenAddress(ok).ToString();
  }
}

TEST(MetricsServer, RefusesBadOptionsAndBusyPort) {
  Registry registry;
  ServerOptions no_connections;
  no_connections.max_connections = 0;
  Result<std::unique_ptr<Server>> bad = Server::Start("127.0.0.1:0", registry, no_connections);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);

  std::unique_ptr<Server> first = StartOrDie(registry);
  ASSERT_NE(first, nullptr);
  std::string taken = "127.0.0.1:" + std::to_string(first->port());
  Result<std::unique_ptr<Server>> second = Server::Start(taken, registry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().origin_code(), EADDRINUSE);
  EXPECT_NE(second.status().message().find(taken), std::string::npos);
}

TEST(MetricsServer, SilentClientDoesNotBlockScrapesAndIsClosed) {
  Registry registry;
  ServerOptions options;
  options.request_timeout = milliseconds(300);
  std::unique_ptr<Server> server = StartOrDie(registry, options);
  ASSERT_NE(server, nullptr);

  UniqueFd silent = ConnectLoopback(server->port());  // connects, never sends
  UniqueFd partial = ConnectLoopback(server->port());
  SendAll(partial, "GET /metr");  // starts a request, never finishes it

  // Both still connected: a scrape goes through regardless.
  EXPECT_EQ(Get(server->port(), "/metrics").status, 200);

  // The server gives up on them after request_timeout: the silent one is just
  // closed, the partial one gets 408.
  int error = -1;
  EXPECT_EQ(ReadUntilClose(silent, &error), "");
  EXPECT_EQ(error, 0);
  EXPECT_EQ(ParseReply(ReadUntilClose(partial)).status, 408);
}

// Review finding: the write timeout counted from the last progress, so a
// client that took a few bytes now and then held its worker forever (16 of
// them: every scrape 503). The whole response must be taken within
// write_timeout of its first byte.
TEST(MetricsServer, SlowReaderCannotHoldAWorker) {
  // More than the server's socket can buffer (tcp_wmem's 4 MiB): ~9 MB.
  Registry registry(200000);
  for (const char* name : {"vigil_a_bytes", "vigil_b_bytes", "vigil_c_bytes", "vigil_d_bytes"}) {
    Gauge* g = *registry.AddGauge(name, "test", {"agent"});
    for (int i = 0; i < 50000; ++i) g->Set({"agent-" + std::to_string(i)}, i);
  }
  ServerOptions options;
  options.max_connections = 1;
  options.write_timeout = milliseconds(400);
  std::unique_ptr<Server> server = StartOrDie(registry, options);
  ASSERT_NE(server, nullptr);

  UniqueFd slow = ConnectLoopback(server->port());
  SendAll(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  // Take 1 KiB every 100 ms (well inside write_timeout each time) for 2 s.
  size_t taken = 0;
  bool closed = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  char buf[1024];
  while (!closed && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(100));
    const ssize_t n = ::recv(slow.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
    if (n > 0) taken += static_cast<size_t>(n);
  }
  // Its only worker is free again: the next scrape is served, not 503.
  EXPECT_EQ(Get(server->port(), "/metrics").status, 200) << taken << " bytes taken";
  EXPECT_LT(taken, 8'000'000u);
}

TEST(MetricsServer, ConnectionLimitAnswers503) {
  Registry registry;
  ServerOptions options;
  options.max_connections = 2;
  std::unique_ptr<Server> server = StartOrDie(registry, options);
  ASSERT_NE(server, nullptr);

  // Accepted in order, so the first two hold both slots.
  std::vector<UniqueFd> idle;
  idle.push_back(ConnectLoopback(server->port()));
  idle.push_back(ConnectLoopback(server->port()));
  UniqueFd extra = ConnectLoopback(server->port());
  EXPECT_EQ(ParseReply(ReadUntilClose(extra)).status, 503);

  // Freed slots serve again. The server notices the closes asynchronously:
  // retry (bounded) until it has, instead of sleeping a guessed time.
  idle.clear();
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (status != 200 && std::chrono::steady_clock::now() < give_up) {
    status = Get(server->port(), "/metrics").status;
  }
  EXPECT_EQ(status, 200);
}

TEST(MetricsServer, StopsWithClientsConnected) {
  Registry registry;
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);
  UniqueFd idle = ConnectLoopback(server->port());
  SendAll(idle, "GET /");
  UniqueFd silent = ConnectLoopback(server->port());
  const auto started = std::chrono::steady_clock::now();
  server.reset();  // must not wait for the clients' request deadline (2 s)
  EXPECT_LT(std::chrono::steady_clock::now() - started, milliseconds(1000));
  int error = -1;
  EXPECT_EQ(ReadUntilClose(idle, &error), "");
  EXPECT_TRUE(error == 0 || error == ECONNRESET) << std::strerror(error);
}

TEST(MetricsServer, HttpClientScrapes) {
  Registry registry;
  Counter* records = *registry.AddCounter("vigil_records_total", "Records received", {"type"});
  records->Inc({"exit"}, 5);
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);

  httplib::Client client("127.0.0.1", server->port());
  client.set_read_timeout(10, 0);
  httplib::Result got = client.Get("/metrics");
  ASSERT_TRUE(got) << httplib::to_string(got.error());
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(got->body, registry.Render());

  got = client.Get("/nothing");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 404);
  got = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 405);
  EXPECT_EQ(got->get_header_value("Allow"), "GET");
}

TEST(MetricsServer, ScrapesDuringConcurrentUpdates) {
  Registry registry;
  Counter* records = *registry.AddCounter("vigil_records_total", "Records received", {"type"});
  Gauge* rss = *registry.AddGauge("vigil_agent_rss_bytes", "RSS", {"agent"});
  std::unique_ptr<Server> server = StartOrDie(registry);
  ASSERT_NE(server, nullptr);

  constexpr int kUpdates = 200000;
  std::atomic<bool> writer_done = false;
  std::thread writer([&] {
    for (int i = 1; i <= kUpdates; ++i) {
      records->Inc({"exec"});
      rss->Set({"agent-" + std::to_string(i % 64)}, i);
      if (i % 1000 == 0) rss->RemoveSeries({"agent-" + std::to_string((i / 1000) % 64)});
    }
    writer_done = true;
  });

  // Every scrape is a consistent snapshot: complete, and the counter never goes back.
  double last = 0;
  int scrapes = 0;
  while (!writer_done || scrapes < 3) {
    HttpReply reply = Get(server->port(), "/metrics");
    ASSERT_EQ(reply.status, 200);
    ASSERT_EQ(reply.headers["content-length"], std::to_string(reply.body.size()));
    ASSERT_TRUE(reply.body.ends_with("# TYPE vigil_metrics_series_dropped_total counter\n"));
    double value = SampleValue(reply.body, "vigil_records_total{type=\"exec\"}").value_or(0);
    EXPECT_GE(value, last);
    EXPECT_LE(value, kUpdates);
    last = value;
    ++scrapes;
  }
  writer.join();
  EXPECT_EQ(SampleValue(Get(server->port(), "/metrics").body, "vigil_records_total{type=\"exec\"}"),
            kUpdates);
}

}  // namespace
}  // namespace vigil::metrics
