#include "dispatch.h"

#include <ctime>
#include <nlohmann/json.hpp>

namespace vigil::verifier {
namespace {

using nlohmann::json;

uint64_t NowUnix() { return static_cast<uint64_t>(::time(nullptr)); }

Reply Refuse(const Status& st) { return Reply{HttpStatus(st), ErrorBody(st)}; }

// {"node": ID, ...}: the node field of a request body.
Result<std::string> NodeField(const json& j, std::string_view shape) {
  if (!j.is_object() || !j.contains("node") || !j["node"].is_string()) {
    return Status::Error(ErrorCode::kInvalidArgument, std::string(shape));
  }
  return j["node"].get<std::string>();
}

}  // namespace

int HttpStatus(const Status& st) {
  switch (st.code()) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kFailedPrecondition:
      return 409;
    case ErrorCode::kMismatch:
      return 403;
    case ErrorCode::kInternal:
    case ErrorCode::kUnavailable:
      return 500;
    default:
      return 400;
  }
}

std::string ErrorBody(const Status& st) {
  json j = {{"error", st.message()}};
  return j.dump() + "\n";
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
  Emit(line.dump());
  Watched& w = nodes_[node];
  if (!result.trusted) return;
  if (w.overdue) {
    Emit(json{{"time_unix", now},
              {"event", "attested"},
              {"node", node},
              {"overdue_for_s", now - w.last_trusted}}
             .dump());
  }
  w.last_trusted = now;
  w.overdue = false;
}

void Monitor::Refused(const std::string& node, std::string_view op, const Status& why,
                      uint64_t now) {
  std::lock_guard lock(mu_);
  Emit(json{{"time_unix", now},
            {"event", "refused"},
            {"node", node},
            {"op", op},
            {"error", why.message()}}
           .dump());
}

void Monitor::Tick(uint64_t now) {
  if (deadline_s_ == 0) return;
  std::lock_guard lock(mu_);
  for (auto& [node, w] : nodes_) {
    if (w.overdue || now < w.last_trusted + deadline_s_) continue;
    w.overdue = true;
    Emit(json{{"time_unix", now},
              {"event", "overdue"},
              {"node", node},
              {"last_trusted_unix", w.last_trusted},
              {"deadline_s", deadline_s_}}
             .dump());
  }
}

Reply Dispatch(Service& service, std::mutex& service_mu, const EnrolOptions& enrol,
               Monitor* monitor, std::string_view op, std::string_view body) {
  std::lock_guard lock(service_mu);
  if (op == "enrol") {
    auto challenge = service.Enrol(body, enrol);
    return challenge.ok() ? Reply{200, *challenge} : Refuse(challenge.status());
  }
  if (op == "evidence") {
    // Parsed once, by the service (evidence can be large).
    auto result = service.Verify(body);
    if (!result.ok()) {
      if (monitor) monitor->Refused("", op, result.status(), NowUnix());
      return Refuse(result.status());
    }
    if (monitor) monitor->Decided(result->next.node, *result, NowUnix());
    return Reply{200, attest::ResultJson(*result)};
  }
  const json j = json::parse(body, nullptr, false);
  if (op == "activate") {
    auto node = NodeField(j, "activate takes {\"node\": ID, \"secret\": HEX}");
    if (!node.ok()) return Refuse(node.status());
    if (!j.contains("secret") || !j["secret"].is_string()) {
      return Refuse(Status::Error(ErrorCode::kInvalidArgument,
                                  "activate takes {\"node\": ID, \"secret\": HEX}"));
    }
    Status st = service.Activate(*node, j["secret"].get<std::string>());
    if (!st.ok()) return Refuse(st);
    if (monitor) monitor->Watch(*node, NowUnix());
    return Reply{200, "{\"activated\":true}\n"};
  }
  if (op == "nonce") {
    auto node = NodeField(j, "nonce takes {\"node\": ID, ...capabilities}");
    if (!node.ok()) return Refuse(node.status());
    auto issued = service.IssueNonce(*node);
    return issued.ok() ? Reply{200, *issued} : Refuse(issued.status());
  }
  return Refuse(Status::Error(ErrorCode::kNotFound,
                              "no operation \"" + std::string(op.substr(0, 32)) + "\""));
}

}  // namespace vigil::verifier
