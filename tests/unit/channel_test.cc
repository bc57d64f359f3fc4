// The node <-> verifier byte-stream channel (virtio-serial in the VM, a
// QEMU chardev socket on the host): framing, resynchronisation after cut
// frames and garbage, request ids, and vigil-verifier's end of it
// (ServeSerial) and its verdict stream (Monitor), over real sockets.
#include "vigil/attest/channel.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "dispatch.h"
#include "serial.h"
#include "vigil/unique_fd.h"

namespace vigil {
namespace {

namespace channel = attest::channel;
using std::chrono::milliseconds;

std::string Enc(const std::string& id, const std::string& verb, const std::string& body) {
  auto e = channel::Encode({id, verb, body});
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? *e : std::string();
}

std::vector<channel::Frame> DecodeAll(channel::Decoder& d) {
  std::vector<channel::Frame> out;
  while (auto f = d.Next()) out.push_back(*f);
  return out;
}

TEST(ChannelFrame, RoundTripsBodiesWithNewlinesAndBinaryBytes) {
  const std::string body = std::string("{\n  \"a\": 1\n}\n") + std::string("\0\xff\n\n", 4);
  channel::Decoder d;
  d.Feed(Enc("00ff", "evidence", body) + Enc("1", "200", ""));
  auto frames = DecodeAll(d);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].id, "00ff");
  EXPECT_EQ(frames[0].verb, "evidence");
  EXPECT_EQ(frames[0].body, body);
  EXPECT_EQ(frames[1].verb, "200");
  EXPECT_EQ(frames[1].body, "");
  EXPECT_EQ(d.dropped(), 0u);
}

TEST(ChannelFrame, ByteByByteGivesTheSameFrames) {
  const std::string bytes = Enc("ab", "nonce", "{\"node\":\"00\"}") + Enc("cd", "enrol", "x\ny");
  channel::Decoder d;
  std::vector<channel::Frame> frames;
  for (char c : bytes) {
    d.Feed(std::string_view(&c, 1));
    while (auto f = d.Next()) frames.push_back(*f);
  }
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].body, "x\ny");
}

TEST(ChannelFrame, GarbageAndACutFrameAreDroppedAndTheNextFrameIsFound) {
  channel::Decoder d;
  const std::string whole = Enc("77", "evidence", std::string(300, 'e'));
  // A writer killed in the middle of its frame, then a new writer's frame.
  d.Feed("junk line\n\x01\x02 not a header\n");
  d.Feed(whole.substr(0, 120));
  d.Feed(Enc("88", "nonce", "{\"node\":\"aa\"}"));
  d.Feed(std::string(400, 'z'));  // long enough to complete the cut frame's claimed length
  d.Feed("\n" + Enc("99", "nonce", "{}"));
  auto frames = DecodeAll(d);
  std::vector<std::string> ids;
  for (const auto& f : frames) ids.push_back(f.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"88", "99"}));
  EXPECT_GT(d.dropped(), 120u);
}

TEST(ChannelFrame, MalformedHeadersAreDropped) {
  for (const std::string& bad :
       {std::string("VIGIL2 aa nonce 2\n{}\n"), std::string("VIGIL1 xz nonce 2\n{}\n"),
        std::string("VIGIL1 ") + std::string(33, 'a') + " nonce 2\n{}\n",
        std::string("VIGIL1 aa Nonce 2\n{}\n"), std::string("VIGIL1 aa nonce 02\n{}\n"),
        std::string("VIGIL1 aa nonce -2\n{}\n"), std::string("VIGIL1 aa nonce 2 x\n{}\n"),
        std::string("VIGIL1 aa nonce 268435457\n{}\n"), std::string("VIGIL1  aa nonce 2\n{}\n"),
        std::string("VIGIL1 aa nonce 2\n{}X")}) {
    SCOPED_TRACE(bad);
    channel::Decoder d;
    d.Feed(bad);
    d.Feed("\n");
    EXPECT_TRUE(DecodeAll(d).empty());
    EXPECT_GT(d.dropped(), 0u);
  }
  EXPECT_FALSE(channel::Encode({"xyz", "nonce", ""}).ok());
  EXPECT_FALSE(channel::Encode({"aa", "Nonce", ""}).ok());
  EXPECT_FALSE(channel::Encode({"", "nonce", ""}).ok());
  EXPECT_FALSE(channel::Encode({"aa", "nonce", std::string(channel::kMaxBody + 1, 'x')}).ok());
}

TEST(ChannelFrame, ALineWithoutEndIsNotHeldForever) {
  channel::Decoder d;
  d.Feed(std::string(100000, 'g'));
  EXPECT_TRUE(DecodeAll(d).empty());
  EXPECT_EQ(d.pending(), 0u);
  d.Feed("\n" + Enc("1", "nonce", "{}"));
  EXPECT_EQ(DecodeAll(d).size(), 1u);
}

std::pair<UniqueFd, UniqueFd> SocketPair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

TEST(ChannelStream, CallSkipsAnswersMeantForAnEarlierRequester) {
  auto [a, b] = SocketPair();
  std::thread peer([fd = b.get()] {
    channel::Stream s(fd, false);
    auto req = s.Read(milliseconds(5000));
    ASSERT_TRUE(req.ok() && req->has_value());
    EXPECT_EQ((*req)->verb, "nonce");
    // A stale answer first (an earlier requester's), then ours.
    ASSERT_TRUE(s.Write(Enc("0123", "200", "stale"), milliseconds(1000)).ok());
    ASSERT_TRUE(s.Write(Enc((*req)->id, "200", "fresh:" + (*req)->body), milliseconds(1000)).ok());
  });
  channel::Stream s(a.get(), false);
  auto answer = s.Call("nonce", "{\"node\":\"ab\"}", milliseconds(5000));
  peer.join();
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->verb, "200");
  EXPECT_EQ(answer->body, "fresh:{\"node\":\"ab\"}");
}

TEST(ChannelStream, NoAnswerTimesOutAndAClosedPeerIsUnavailable) {
  auto [a, b] = SocketPair();
  channel::Stream s(a.get(), false);
  auto none = s.Call("nonce", "{}", milliseconds(300));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("timed out"), std::string::npos);
  b.Reset();
  auto closed = s.Read(milliseconds(1000));
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.status().code(), ErrorCode::kUnavailable);
}

// QEMU's side: a listening UNIX socket the verifier connects to.
class ListeningSocket {
 public:
  ListeningSocket() {
    char tmpl[] = "/tmp/vigil-chan-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    path_ = dir_ + "/sock";
    fd_.Reset(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_.get(), 1), 0);
  }
  ~ListeningSocket() {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  UniqueFd Accept() { return UniqueFd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK)); }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  UniqueFd fd_;
};

TEST(ServeSerial, AnswersFramesAndConnectsAgainAfterQemuGoesAway) {
  ListeningSocket qemu;
  std::atomic<bool> stop{false};
  std::atomic<int> handled{0};
  const verifier::Handler handle = [&](std::string_view op, std::string_view body) {
    ++handled;
    return verifier::Reply{op == "nonce" ? 200 : 404, std::string(op) + "|" + std::string(body)};
  };
  std::thread server([&] { verifier::ServeSerial(qemu.path(), handle, stop); });
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    UniqueFd conn = qemu.Accept();
    ASSERT_TRUE(conn.valid());
    channel::Stream guest(conn.get(), false);
    // Garbage first (a guest writer killed mid-frame): skipped.
    ASSERT_TRUE(guest.Write("VIGIL1 aa nonce 99\n{\"cut", milliseconds(1000)).ok());
    ASSERT_TRUE(guest.Write("\n", milliseconds(1000)).ok());
    auto ok = guest.Call("nonce", "{\"node\":\"ab\"}", milliseconds(10000));
    ASSERT_TRUE(ok.ok()) << ok.status().ToString();
    EXPECT_EQ(ok->verb, "200");
    EXPECT_EQ(ok->body, "nonce|{\"node\":\"ab\"}");
    auto unknown = guest.Call("bogus", "{}", milliseconds(10000));
    ASSERT_TRUE(unknown.ok());
    EXPECT_EQ(unknown->verb, "404");
    // conn closes here: QEMU gone; the server connects again.
  }
  stop.store(true);
  server.join();
  EXPECT_EQ(handled.load(), 4);
}

std::vector<nlohmann::json> Lines(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::vector<nlohmann::json> out;
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), f)) out.push_back(nlohmann::json::parse(buf));
  return out;
}

TEST(Monitor, OverdueOncePerEpisodeAndAttestedWhenTrustedEvidenceReturns) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  verifier::Monitor m(out, 10);
  m.Watch("aa", 100);
  m.Tick(105);
  m.Tick(109);
  EXPECT_TRUE(Lines(out).empty()) << "not due before the deadline";
  m.Tick(110);
  m.Tick(200);
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 1u) << "one overdue line per episode";
  EXPECT_EQ(lines[0]["event"], "overdue");
  EXPECT_EQ(lines[0]["node"], "aa");
  EXPECT_EQ(lines[0]["last_trusted_unix"], 100);

  attest::AttestationResult untrusted;
  untrusted.reasons = {"producers: producer_silent"};
  m.Decided("aa", untrusted, 201);
  attest::AttestationResult trusted;
  trusted.trusted = true;
  m.Decided("aa", trusted, 202);
  m.Tick(211);
  m.Tick(212);
  lines = Lines(out);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[1]["event"], "verdict");
  EXPECT_EQ(lines[1]["trusted"], false);
  EXPECT_EQ(lines[1]["reasons"][0], "producers: producer_silent");
  EXPECT_EQ(lines[2]["trusted"], true);
  EXPECT_EQ(lines[3]["event"], "attested");
  EXPECT_EQ(lines[3]["overdue_for_s"], 102);
  EXPECT_EQ(lines[4]["event"], "overdue");
  EXPECT_EQ(lines[4]["last_trusted_unix"], 202) << "an untrusted verdict does not count";
  std::fclose(out);

  verifier::Monitor never(nullptr, 0);
  never.Watch("bb", 0);
  never.Tick(1u << 30);  // deadline 0: no watch (and no output stream)
}

// Found by an attacker review: a header, then millions of newlines and a
// wrong terminator made the resynchronisation search the whole buffer for
// every line (quadratic: days of CPU for 256 MiB). This finishes at once
// now; before the fix it ran past the test's timeout.
TEST(ChannelFrame, ManyShortLinesAfterACutFrameAreLinear) {
  channel::Decoder d;
  const size_t n = 8u << 20;
  d.Feed("VIGIL1 01 evidence " + std::to_string(n) + "\n");
  d.Feed(std::string(n, '\n'));
  d.Feed("X");
  EXPECT_TRUE(DecodeAll(d).empty());
  d.Feed("\n" + Enc("02", "nonce", "{}"));
  auto frames = DecodeAll(d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].id, "02");
}

// A small request claiming a large body is refused at its header: nothing
// of it is buffered (answers and evidence may be large).
TEST(ChannelFrame, SmallRequestsCannotClaimLargeBodies) {
  EXPECT_EQ(channel::MaxBody("nonce"), channel::kMaxSmallBody);
  EXPECT_EQ(channel::MaxBody("enrol"), channel::kMaxSmallBody);
  EXPECT_EQ(channel::MaxBody("evidence"), channel::kMaxBody);
  EXPECT_EQ(channel::MaxBody("200"), channel::kMaxBody);
  channel::Decoder d;
  d.Feed("VIGIL1 01 nonce " + std::to_string(channel::kMaxSmallBody + 1) + "\n");
  EXPECT_TRUE(DecodeAll(d).empty());
  EXPECT_EQ(d.pending(), 0u) << "the header was dropped, nothing waits for its body";
  EXPECT_FALSE(channel::Encode({"01", "nonce", std::string(channel::kMaxSmallBody + 1, ' ')}).ok());
  EXPECT_TRUE(channel::Encode({"01", "evidence", std::string(channel::kMaxSmallBody + 1, ' ')}).ok());
}

// A body's JSON shape is checked without building it: a DOM of tiny values
// costs ~35 times the text (an attacker review: 9 GB for 256 MiB).
TEST(Dispatch, JsonShapeIsBoundedBeforeParsing) {
  EXPECT_TRUE(verifier::CheckJsonShape(R"({"node":"ab","x":[1,2,{"y":null}]})").ok());
  std::string deep(verifier::kMaxJsonDepth + 1, '[');
  deep += std::string(verifier::kMaxJsonDepth + 1, ']');
  auto st = verifier::CheckJsonShape(deep);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("deeper"), std::string::npos) << st.message();
  std::string wide = "[";
  for (size_t i = 0; i <= verifier::kMaxJsonElements; ++i) wide += "{},";
  wide += "{}]";
  st = verifier::CheckJsonShape(wide);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("JSON values"), std::string::npos) << st.message();
  EXPECT_FALSE(verifier::CheckJsonShape("{\"a\":").ok());
}

// Evidence is lexed once (no shape pass before it): ParseEvidence bounds
// its depth and values while it reads, JSON or CBOR, and each refusal is a
// 400 naming why, before the service is asked anything.
TEST(Dispatch, EvidenceIsBoundedWhileParsedInEitherEncoding) {
  char tmpl[] = "/tmp/vigil-dispatch-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  auto service = verifier::Service::Open(tmpl, attest::Policy{}, verifier::NonceStore::kMemory);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  std::mutex mu;
  const auto refused = [&](const std::string& body, const std::string& why) {
    const verifier::Reply r =
        verifier::Dispatch(*service, mu, verifier::EnrolOptions{}, nullptr, "evidence", body);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find(why), std::string::npos) << why << " not in " << r.body;
  };
  refused(std::string(100000, '[') + std::string(100000, ']'), "nested deeper");
  std::string wide = "{\"pcrs\":[";
  for (int i = 0; i < 200000; ++i) wide += "1,";
  wide += "1]}";
  refused(wide, "more than 4096 values");
  refused("{\"version\":2,\"version\":2}", "appears twice");
  refused(std::string("\xa2\x61\x61\x01\x61\x61\x01", 7), "appears twice");  // {"a":1,"a":1}
  refused(std::string("\xa1\x61", 2), "not CBOR");
  refused("{\"version\":", "not JSON");
  // A repeated key is named cut to 64 bytes, here inside a UTF-8 sequence:
  // the answer is still JSON (the cut bytes replaced), not an exception.
  const std::string key = std::string(63, 'k') + "\xc3\xa9";
  const std::string dup = "{\"" + key + "\":1,\"" + key + "\":1}";
  refused(dup, "appears twice");
  const verifier::Reply r =
      verifier::Dispatch(*service, mu, verifier::EnrolOptions{}, nullptr, "evidence", dup);
  EXPECT_TRUE(nlohmann::json::accept(r.body)) << r.body;
  std::filesystem::remove_all(tmpl);
}

// Evidence held back until its nonce nearly expires does not stretch the
// deadline: the last trusted time is when the nonce was issued.
TEST(Monitor, TrustedEvidenceCountsAsOfItsNonce) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  verifier::Monitor m(out, 10);
  m.Watch("aa", 100);
  attest::AttestationResult held;
  held.trusted = true;
  held.next.last_attested_unix = 101;  // the nonce's issue time
  m.Decided("aa", held, 150);          // sent 49 s later
  m.Tick(111);
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["event"], "overdue");
  EXPECT_EQ(lines[1]["last_trusted_unix"], 101);
  std::fclose(out);
}

}  // namespace
}  // namespace vigil
