#include "dispatch.h"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/digest.h"
#include "vigil/tpm_object.h"

namespace vigil::verifier {
namespace {

using nlohmann::json;

uint64_t NowUnix() { return static_cast<uint64_t>(::time(nullptr)); }

// Messages and node ids can carry bytes of a hostile request (a key cut to
// 64 bytes inside a UTF-8 sequence, a node id): replaced, never thrown on.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Reply Refuse(const Status& st) { return Reply{HttpStatus(st), ErrorBody(st)}; }

}  // namespace

int HttpStatus(const Status& st) {
  switch (st.code()) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kMismatch:
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kInternal:
    case ErrorCode::kUnavailable:
      return 500;
    default:
      return 400;
  }
}

std::string ErrorBody(const Status& st) {
  if (!st.sqlstate().empty()) {
    // A database error's text (SQL, server messages, socket paths) is the
    // operator's, not the client's: logged here, a generic answer sent.
    std::fprintf(stderr, "vigil-verifier: database error: %s\n", st.ToString().c_str());
    json j = {{"error", st.code() == ErrorCode::kUnavailable
                            ? "the fleet database is unavailable; try again"
                            : "the fleet database could not complete the request"}};
    return Dump(j) + "\n";
  }
  json j = {{"error", st.message()}};
  return Dump(j) + "\n";
}

void Monitor::Emit(const std::string& line) {
  if (!out_) return;
  std::fputs(line.c_str(), out_);
  std::fputc('\n', out_);
  std::fflush(out_);
}

void Monitor::Watch(const std::string& node, uint64_t since_unix) {
  std::lock_guard lock(mu_);
  Watched& w = nodes_[node];
  w.last_trusted = std::max(w.last_trusted, since_unix);
}

void Monitor::Decided(const std::string& node, const attest::AttestationResult& result,
                      uint64_t now) {
  std::lock_guard lock(mu_);
  json line = {
      {"time_unix", now},          {"event", "verdict"},           {"node", node},
      {"trusted", result.trusted}, {"reasons", result.reasons},    {"records", result.records},
      {"events", result.events},   {"tpm_reset", result.tpm_reset}};
  json findings = json::array();
  for (const verify::Finding& f : result.findings) {
    findings.push_back(std::string(verify::FindingKindName(f.kind)));
  }
  line["findings"] = findings;
  Emit(Dump(line));
  Watched& w = nodes_[node];
  if (!result.trusted) return;
  if (w.overdue) {
    Emit(Dump(json{{"time_unix", now},
                   {"event", "attested"},
                   {"node", node},
                   {"overdue_for_s", now - w.last_trusted}}));
  }
  // As of when the evidence's nonce was issued (Service::Verify stamps
  // it): evidence held back does not stretch the deadline.
  const uint64_t as_of = result.next.last_attested_unix;
  w.last_trusted = std::max(w.last_trusted, as_of != 0 && as_of < now ? as_of : now);
  w.overdue = false;
}

void Monitor::Refused(const std::string& node, std::string_view op, const Status& why,
                      uint64_t now) {
  std::lock_guard lock(mu_);
  Emit(Dump(json{{"time_unix", now},
                 {"event", "refused"},
                 {"node", node},
                 {"op", op},
                 {"error", why.message()}}));
}

void Monitor::Tick(uint64_t now) {
  if (deadline_s_ == 0) return;
  std::lock_guard lock(mu_);
  for (auto& [node, w] : nodes_) {
    if (w.overdue || now < w.last_trusted + deadline_s_) continue;
    w.overdue = true;
    Emit(Dump(json{{"time_unix", now},
                   {"event", "overdue"},
                   {"node", node},
                   {"last_trusted_unix", w.last_trusted},
                   {"deadline_s", deadline_s_}}));
  }
}

void Monitor::Overdue(const std::string& node, uint64_t last_trusted_unix, uint64_t deadline_s,
                      uint64_t now) {
  std::lock_guard lock(mu_);
  Emit(Dump(json{{"time_unix", now},
                 {"event", "overdue"},
                 {"node", node},
                 {"last_trusted_unix", last_trusted_unix},
                 {"deadline_s", deadline_s}}));
}

void Monitor::Attested(const std::string& node, uint64_t overdue_for_s, uint64_t now) {
  std::lock_guard lock(mu_);
  Emit(Dump(json{{"time_unix", now},
                 {"event", "attested"},
                 {"node", node},
                 {"overdue_for_s", overdue_for_s}}));
}

namespace {

// Counts values and depth without building a DOM; stops at the limits.
class ShapeCounter : public nlohmann::json_sax<json> {
 public:
  std::string error;
  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t at, const std::string&,
                   const nlohmann::detail::exception&) override {
    error = "not JSON (at byte " + std::to_string(at) + ")";
    return false;
  }

 private:
  bool Value() {
    if (++values_ <= kMaxJsonElements) return true;
    error = "more than " + std::to_string(kMaxJsonElements) + " JSON values";
    return false;
  }
  bool Open() {
    if (!Value()) return false;
    if (++depth_ <= kMaxJsonDepth) return true;
    error = "JSON nested deeper than " + std::to_string(kMaxJsonDepth);
    return false;
  }
  bool Close() {
    --depth_;
    return true;
  }
  size_t values_ = 0, depth_ = 0;
};

// The node a request body names, {"node": ID, ...}.
Result<std::string> NamedNode(std::string_view body) {
  const json j = json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("node") || !j["node"].is_string()) {
    return Status::Error(ErrorCode::kInvalidArgument, "the request names no \"node\"");
  }
  return j["node"].get<std::string>();
}

}  // namespace

Status CheckJsonShape(std::string_view body) {
  ShapeCounter counter;
  if (!json::sax_parse(body, &counter) || !counter.error.empty()) {
    return Status::Error(
        ErrorCode::kInvalidArgument,
        "body: " + (counter.error.empty() ? std::string("not JSON") : counter.error));
  }
  return Status::Ok();
}

Reply Dispatch(Service& service, std::mutex& service_mu, const EnrolOptions& enrol,
               Monitor* monitor, std::string_view op, std::string_view body,
               const std::string& channel) {
  if (op != "evidence" && body.size() > kMaxSmallBody) {
    return Refuse(Status::Error(ErrorCode::kInvalidArgument,
                                std::string(op.substr(0, 16)) + ": a body of " +
                                    std::to_string(body.size()) + " bytes is too large"));
  }
  if (op == "evidence") {
    // Parsed outside the lock (evidence can be large), JSON or CBOR, in
    // one pass that bounds its depth and values itself; decided once.
    auto evidence = attest::ParseEvidence(body);
    if (!evidence.ok()) {
      if (monitor) monitor->Refused("", op, evidence.status(), NowUnix());
      return Refuse(evidence.status());
    }
    std::lock_guard lock(service_mu);
    bool bind = false;
    if (Status st = service.CheckChannel(channel, evidence->node, &bind); !st.ok()) {
      if (monitor) monitor->Refused("", op, st, NowUnix());
      return Refuse(st);
    }
    auto result = service.Verify(*evidence, body);
    if (!result.ok()) {
      if (monitor) monitor->Refused(evidence->node.substr(0, 132), op, result.status(), NowUnix());
      return Refuse(result.status());
    }
    if (monitor) monitor->Decided(result->next.node, *result, NowUnix());
    return Reply{200, attest::ResultJson(*result)};
  }
  if (Status st = CheckJsonShape(body); !st.ok()) return Refuse(st);
  // The node a request is for: an enrolment's is its EK's name.
  std::string node;
  if (op == "enrol") {
    auto request = attest::ParseEnrolmentRequest(body);
    if (!request.ok()) return Refuse(request.status());
    auto name = tpmobj::Name(request->ek);
    if (!name.ok()) return Refuse(name.status());
    node = crypto::ToHex(*name);
  } else if (op == "activate" || op == "nonce") {
    auto named = NamedNode(body);
    if (!named.ok()) return Refuse(named.status());
    node = *named;
  } else {
    return Refuse(Status::Error(ErrorCode::kNotFound,
                                "no operation \"" + std::string(op.substr(0, 32)) + "\""));
  }
  std::lock_guard lock(service_mu);
  bool bind = false;
  if (Status st = service.CheckChannel(channel, node, &bind); !st.ok()) return Refuse(st);
  // A channel is bound to the node it enrols or asks a nonce for first.
  const auto bound = [&](Reply reply) {
    if (bind && reply.status == 200) {
      if (Status st = service.BindChannel(channel, node); !st.ok()) return Refuse(st);
    }
    return reply;
  };
  if (op == "enrol") {
    auto challenge = service.Enrol(body, enrol);
    return challenge.ok() ? bound(Reply{200, *challenge}) : Refuse(challenge.status());
  }
  if (op == "nonce") {
    auto issued = service.IssueNonce(node);
    return issued.ok() ? bound(Reply{200, *issued}) : Refuse(issued.status());
  }
  const json j = json::parse(body, nullptr, false);
  if (!j.contains("secret") || !j["secret"].is_string()) {
    return Refuse(Status::Error(ErrorCode::kInvalidArgument,
                                "activate takes {\"node\": ID, \"secret\": HEX}"));
  }
  Status st = service.Activate(node, j["secret"].get<std::string>());
  if (!st.ok()) return Refuse(st);
  if (monitor) monitor->Watch(node, NowUnix());
  return Reply{200, "{\"activated\":true}\n"};
}

}  // namespace vigil::verifier
