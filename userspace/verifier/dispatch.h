// One request to vigil-verifier, whatever carried it (HTTP on loopback, the
// virtio-serial channel): the operation, its JSON body, the answer. Every
// decision and every liveness alert is also printed as one JSON line (the
// verifier's verdict stream), so an operator or a test can follow a fleet
// without asking each node's state.
#ifndef VIGIL_USERSPACE_VERIFIER_DISPATCH_H_
#define VIGIL_USERSPACE_VERIFIER_DISPATCH_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "service.h"
#include "vigil/attest/channel.h"

namespace vigil::verifier {

struct Reply {
  int status = 200;  // HTTP-like: 200, 400, 403, 404, 409, 500
  std::string body;  // JSON
};

// Prints verdict lines and watches deadlines: a node that had no trusted
// evidence for `deadline_s` seconds (since its last trusted evidence, its
// activation, or the start of the watch) gets one "overdue" line per
// episode, and an "attested" line when trusted evidence comes back.
// Thread-safe.
class Monitor {
 public:
  Monitor(std::FILE* out, uint64_t deadline_s) : out_(out), deadline_s_(deadline_s) {}

  // A node to watch from `since_unix` on (serve's start, an activation).
  void Watch(const std::string& node, uint64_t since_unix);
  void Decided(const std::string& node, const attest::AttestationResult& result, uint64_t now);
  void Refused(const std::string& node, std::string_view op, const Status& why, uint64_t now);
  // Emits the overdue lines due at `now`.
  void Tick(uint64_t now);
  // The database's liveness watch (FleetWatch) decides instead of Tick:
  // these print its lines, the same "overdue" and "attested" lines.
  void Overdue(const std::string& node, uint64_t last_trusted_unix, uint64_t deadline_s,
               uint64_t now);
  void Attested(const std::string& node, uint64_t overdue_for_s, uint64_t now);
  uint64_t deadline_s() const { return deadline_s_; }

 private:
  struct Watched {
    uint64_t last_trusted = 0;
    bool overdue = false;
  };
  void Emit(const std::string& line);

  std::mutex mu_;
  std::FILE* out_;
  uint64_t deadline_s_;
  std::map<std::string, Watched> nodes_;
};

// The operations: "enrol", "activate", "nonce", "evidence". `service` is
// used under `service_mu` (its files: one request at a time); a body is
// checked for its size and JSON shape (evidence: parsed, JSON or CBOR, by
// attest::ParseEvidence with its own bounds, in one pass), before that.
// `channel` (a serial channel's name; empty for HTTP): the channel speaks
// for one node, bound at its first enrolment or nonce (Service::BindChannel);
// requests for any other node are refused (403).
Reply Dispatch(Service& service, std::mutex& service_mu, const EnrolOptions& enrol,
               Monitor* monitor, std::string_view op, std::string_view body,
               const std::string& channel = "");

// Body limits: evidence can carry a large log; the other requests are
// small. A JSON body may nest at most kMaxJsonDepth deep and hold at most
// kMaxJsonElements values (a DOM of tiny values costs ~35 times its text).
inline constexpr size_t kMaxSmallBody = attest::channel::kMaxSmallBody;
inline constexpr size_t kMaxJsonDepth = 16;
inline constexpr size_t kMaxJsonElements = 100000;
Status CheckJsonShape(std::string_view body);

// HTTP status for a refused request.
int HttpStatus(const Status& st);
std::string ErrorBody(const Status& st);

}  // namespace vigil::verifier

#endif  // VIGIL_USERSPACE_VERIFIER_DISPATCH_H_
