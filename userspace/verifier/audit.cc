#include "audit.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest/verifier.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/tpm_object.h"

namespace vigil::verifier {
namespace {

using fleet::Param;
using fleet::Retry;
using fleet::Rows;

// Rows read per query: the audit holds one page of evidence at a time.
constexpr int kPage = 256;
// The service's default (DatabaseOptions::deadline_s) when the node's state
// row does not tell.
constexpr uint64_t kDefaultDeadlineS = 60;

// One stored evidence with its verdict row, as the database has it.
struct Row {
  int64_t evidence_id = 0;
  uint64_t received_unix = 0;
  std::vector<uint8_t> body, body_sha256, nonce, quote_attest, quote_signature, log_records, events;
  uint64_t log_from_seq = 0;
  std::optional<bool> trusted;
  std::string result_json;
  int64_t policy_version = 0;
};

Result<std::vector<Row>> Page(fleet::Connection& db, const std::string& node, int64_t after_id,
                              uint64_t to_unix) {
  const Param p[] = {Param::Text(node), Param::Int8(after_id),
                     Param::Int8(static_cast<int64_t>(to_unix)), Param::Int8(kPage)};
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      db.Exec("SELECT e.evidence_id, floor(extract(epoch from e.received_at))::int8, e.body,"
              " e.body_sha256, e.nonce, e.quote_attest, e.quote_signature, e.log_from_seq,"
              " e.log_records, e.events, v.trusted, v.result_json, v.policy_version"
              " FROM evidence e LEFT JOIN verdicts v USING (evidence_id)"
              " WHERE e.node_id = $1 AND e.evidence_id > $2"
              " AND e.received_at < to_timestamp($3) + interval '1 second'"
              " ORDER BY e.evidence_id LIMIT $4",
              p, Retry::kOnceIfIdempotent));
  std::vector<Row> out;
  for (int i = 0; i < rows.size(); ++i) {
    Row r;
    VIGIL_ASSIGN_OR_RETURN(r.evidence_id, rows.Int8(i, 0));
    VIGIL_ASSIGN_OR_RETURN(int64_t received, rows.Int8(i, 1));
    r.received_unix = static_cast<uint64_t>(std::max<int64_t>(received, 0));
    VIGIL_ASSIGN_OR_RETURN(r.body, rows.Bytea(i, 2));
    VIGIL_ASSIGN_OR_RETURN(r.body_sha256, rows.Bytea(i, 3));
    VIGIL_ASSIGN_OR_RETURN(r.nonce, rows.Bytea(i, 4));
    VIGIL_ASSIGN_OR_RETURN(r.quote_attest, rows.Bytea(i, 5));
    VIGIL_ASSIGN_OR_RETURN(r.quote_signature, rows.Bytea(i, 6));
    VIGIL_ASSIGN_OR_RETURN(int64_t from_seq, rows.Int8(i, 7));
    r.log_from_seq = static_cast<uint64_t>(from_seq);
    VIGIL_ASSIGN_OR_RETURN(r.log_records, rows.Bytea(i, 8));
    VIGIL_ASSIGN_OR_RETURN(r.events, rows.Bytea(i, 9));
    VIGIL_ASSIGN_OR_RETURN(bool no_verdict, rows.IsNull(i, 10));
    if (!no_verdict) {
      VIGIL_ASSIGN_OR_RETURN(bool trusted, rows.Bool(i, 10));
      r.trusted = trusted;
      VIGIL_ASSIGN_OR_RETURN(r.result_json, rows.Text(i, 11));
      VIGIL_ASSIGN_OR_RETURN(r.policy_version, rows.Int8(i, 12));
    }
    out.push_back(std::move(r));
  }
  return out;
}

// The node's deadline as the service set it: its state row's deadline less
// the last trusted evidence (or the activation) it was counted from.
Result<std::optional<uint64_t>> StoredDeadline(fleet::Connection& db, const std::string& node) {
  const Param p[] = {Param::Text(node)};
  VIGIL_ASSIGN_OR_RETURN(Rows rows, db.Exec("SELECT floor(extract(epoch from s.deadline - coalesce("
                                            "s.last_attested_at, n.activated_at)))::int8"
                                            " FROM node_state s JOIN nodes n USING (node_id)"
                                            " WHERE s.node_id = $1 AND s.deadline IS NOT NULL",
                                            p, Retry::kOnceIfIdempotent));
  if (rows.size() != 1) return std::optional<uint64_t>();
  VIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> s, rows.NullableInt8(0, 0));
  if (!s || *s <= 0) return std::optional<uint64_t>();
  return std::optional<uint64_t>(static_cast<uint64_t>(*s));
}

std::vector<std::string> StoredReasons(const std::string& result_json) {
  std::vector<std::string> out;
  const auto j = nlohmann::json::parse(result_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("reasons") && j["reasons"].is_array()) {
    for (const auto& r : j["reasons"]) {
      if (r.is_string()) out.push_back(r.get<std::string>());
    }
  }
  return out;
}

// A refusal the audit cannot re-check offline: the nonce (issued? expired?
// answered twice?) or another verifier's concurrent state step.
bool OnlyOnlineReasons(const std::vector<std::string>& reasons) {
  if (reasons.empty()) return false;
  return std::all_of(reasons.begin(), reasons.end(), [](const std::string& r) {
    return r.rfind("nonce:", 0) == 0 || r.rfind("state:", 0) == 0;
  });
}

// Where the stored columns say other than the body (the body is what the
// node sent; the columns are copies of it for queries).
std::vector<std::string> ColumnMismatches(const Row& row, const attest::Evidence& ev) {
  std::vector<std::string> out;
  if (row.nonce != ev.nonce) out.push_back("nonce");
  if (row.quote_attest != ev.quote.attest) out.push_back("quote_attest");
  if (row.quote_signature != ev.quote.signature) out.push_back("quote_signature");
  if (row.log_from_seq != ev.log.from_seq) out.push_back("log_from_seq");
  if (row.log_records != ev.log.records) out.push_back("log_records");
  if (row.events != ev.events) out.push_back("events");
  return out;
}

std::string IsoTime(uint64_t unix_s) {
  const time_t t = static_cast<time_t>(unix_s);
  tm utc{};
  ::gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

}  // namespace

const char* AuditKindName(AuditFinding::Kind kind) {
  switch (kind) {
    case AuditFinding::Kind::kGap:
      return "gap";
    case AuditFinding::Kind::kUntrusted:
      return "untrusted";
    case AuditFinding::Kind::kContradiction:
      return "contradiction";
    case AuditFinding::Kind::kMissing:
      return "missing";
  }
  return "?";
}

Result<uint64_t> ParseAuditTime(std::string_view text) {
  const std::string s(text);
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (s.size() > 12) return Status::Error(ErrorCode::kInvalidArgument, "time out of range: " + s);
    return static_cast<uint64_t>(std::stoull(s));
  }
  tm utc{};
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &utc);
  if (end == nullptr || (*end != '\0' && std::string_view(end) != "Z")) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a time is unix seconds or ISO-8601 UTC (2026-12-08T02:00:00Z), not " +
                             format::EscapeText(s));
  }
  const time_t t = ::timegm(&utc);
  if (t < 0) return Status::Error(ErrorCode::kInvalidArgument, "time before 1970: " + s);
  return static_cast<uint64_t>(t);
}

Result<AuditReport> AuditNode(fleet::Store& store, const attest::Policy& policy,
                              const AuditOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(options.node));
  VIGIL_ASSIGN_OR_RETURN(std::optional<fleet::NodeRecord> record, store.GetNode(options.node));
  if (!record) {
    return Status::Error(ErrorCode::kNotFound,
                         "node " + options.node + " is not enrolled in this database");
  }
  AuditReport report;
  report.node = options.node;
  report.enrolled_unix = record->enrolled_unix;
  report.activated_unix = record->activated_unix;
  report.from_unix = options.from_unix.value_or(record->enrolled_unix);
  if (options.to_unix) {
    report.to_unix = *options.to_unix;
  } else {
    VIGIL_ASSIGN_OR_RETURN(report.to_unix, store.DatabaseNowUnix());
  }
  if (report.from_unix > report.to_unix) {
    return Status::Error(
        ErrorCode::kInvalidArgument,
        "--from " + IsoTime(report.from_unix) + " is after --to " + IsoTime(report.to_unix));
  }
  if (options.deadline_s) {
    report.deadline_s = *options.deadline_s;
    report.deadline_source = "option";
  } else {
    VIGIL_ASSIGN_OR_RETURN(std::optional<uint64_t> stored,
                           StoredDeadline(store.connection(), options.node));
    report.deadline_s = stored.value_or(kDefaultDeadlineS);
    report.deadline_source = stored ? "node state" : "default";
  }
  const uint64_t from = report.from_unix, to = report.to_unix;
  auto add = [&](AuditFinding f) { report.findings.push_back(std::move(f)); };

  if (!record->activated_unix || *record->activated_unix > to) {
    AuditFinding f;
    f.kind = AuditFinding::Kind::kGap;
    f.from_unix = from;
    f.to_unix = to;
    f.reasons.push_back("the node was not activated in the range");
    add(std::move(f));
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return report;
  }

  // The activation state: what Service::Activate stored (the enrolled AK).
  attest::NodeState state;
  state.node = options.node;
  VIGIL_ASSIGN_OR_RETURN(state.ak, tpmobj::ParseTpm2bPublic(record->enrolment.ak_public));
  // The last time the node was shown attested (trusted evidence, or its
  // activation: the service counts its deadline from there too).
  uint64_t last_trusted = *record->activated_unix;

  auto gap_until = [&](uint64_t t, const char* why) {
    if (t > last_trusted + report.deadline_s && t > from) {
      AuditFinding f;
      f.kind = AuditFinding::Kind::kGap;
      f.from_unix = last_trusted;
      f.to_unix = t;
      f.reasons.push_back(why);
      add(std::move(f));
    }
  };

  // A deleted evidence leaves every later one unverifiable (the chain has
  // a hole): its missing log range is named once, at the first after it.
  bool hole_named = false;
  int64_t after_id = 0;
  for (;;) {
    VIGIL_ASSIGN_OR_RETURN(std::vector<Row> page,
                           Page(store.connection(), options.node, after_id, to));
    for (const Row& row : page) {
      after_id = row.evidence_id;
      ++report.replayed;
      const bool in_range = row.received_unix >= from && row.received_unix <= to;
      if (in_range) {
        ++report.in_range;
        if (row.trusted && row.policy_version != policy.version) ++report.other_policy;
      }
      AuditFinding f;
      f.from_unix = f.to_unix = row.received_unix;
      f.evidence_id = row.evidence_id;
      f.stored_trusted = row.trusted;
      std::vector<std::string>& why = f.reasons;
      // The body is the authority; each check below that fails makes the
      // evidence count as not verified.
      bool verified = false;
      std::optional<attest::Evidence> parsed;
      auto digest = crypto::Sha256({std::span<const uint8_t>(row.body.data(), row.body.size())});
      if (!digest.ok() || !std::equal(digest->begin(), digest->end(), row.body_sha256.begin(),
                                      row.body_sha256.end())) {
        why.push_back("body: its SHA-256 is not the one recorded at receipt (edited)");
      }
      auto ev = attest::ParseEvidence(
          std::string_view(reinterpret_cast<const char*>(row.body.data()), row.body.size()));
      if (!ev.ok()) {
        why.push_back("body: does not parse: " + ev.status().message());
      } else if (ev->node != options.node) {
        why.push_back("body: evidence of node " + ev->node + ", stored as " + options.node + "'s");
      } else {
        parsed = std::move(ev).value();
        const std::vector<std::string> columns = ColumnMismatches(row, *parsed);
        for (const std::string& c : columns) {
          why.push_back("column " + c + ": not what the stored body says (edited)");
        }
        // Log records before this evidence's start that no stored evidence
        // covered (the service refuses gaps, so rows were deleted).
        const bool same_instance =
            !state.instance_id.empty() &&
            std::equal(state.instance_id.begin(), state.instance_id.end(),
                       parsed->module.instance.begin(), parsed->module.instance.end());
        if (same_instance && parsed->log.from_seq > state.next_log_seq && row.trusted &&
            *row.trusted && in_range && !hole_named) {
          hole_named = true;
          AuditFinding m;
          m.kind = AuditFinding::Kind::kMissing;
          m.from_unix = m.to_unix = row.received_unix;
          m.evidence_id = row.evidence_id;
          m.from_seq = state.next_log_seq;
          m.to_seq = parsed->log.from_seq - 1;
          m.reasons.push_back("no stored evidence covers log seq " + std::to_string(m.from_seq) +
                              " to " + std::to_string(m.to_seq) +
                              " before this one (evidence rows deleted?)");
          add(std::move(m));
        }
        const attest::AttestationResult result =
            attest::VerifyEvidence(policy, state, *parsed, parsed->nonce, row.received_unix);
        // The chain follows the body: where the service advanced (the row
        // says trusted and the body proves it), so does the replay, even
        // when a copied column was edited (reported below).
        if (result.trusted && row.trusted && *row.trusted) {
          state = result.next;
          hole_named = false;
        }
        if (result.trusted) {
          verified = why.empty();
        } else {
          for (const std::string& r : result.reasons) why.push_back("re-verification: " + r);
        }
      }
      const bool stored_trusted = row.trusted.value_or(false);
      const std::vector<std::string> stored = StoredReasons(row.result_json);
      if (stored_trusted && verified) {
        if (in_range) ++report.trusted_in_range;
        gap_until(row.received_unix, "no trusted evidence for longer than the deadline");
        last_trusted = std::max(last_trusted, row.received_unix);
        continue;
      }
      if (!in_range) continue;
      if (!row.trusted) {
        f.kind = AuditFinding::Kind::kContradiction;
        why.insert(why.begin(), "verdict: none stored for this evidence");
      } else if (stored_trusted) {
        // verified is false here: the row says trusted, the body does not.
        f.kind = AuditFinding::Kind::kContradiction;
        why.insert(why.begin(), "verdict: stored trusted; the stored row does not verify");
      } else if (verified && !OnlyOnlineReasons(stored)) {
        f.kind = AuditFinding::Kind::kContradiction;
        why.insert(why.begin(),
                   "verdict: stored untrusted for reasons the re-verification does not find");
        for (const std::string& r : stored) why.push_back("stored: " + r);
      } else {
        f.kind = AuditFinding::Kind::kUntrusted;
        why.clear();  // the stored reasons are the verdict's; the re-verification agrees
        for (const std::string& r : stored) why.push_back(r);
        if (why.empty()) why.push_back("untrusted (no reason stored)");
      }
      add(std::move(f));
    }
    if (page.size() < static_cast<size_t>(kPage)) break;
  }
  gap_until(to, "no trusted evidence until the end of the range");
  // Findings in time order (a gap is placed where it ends).
  std::stable_sort(
      report.findings.begin(), report.findings.end(),
      [](const AuditFinding& a, const AuditFinding& b) { return a.to_unix < b.to_unix; });
  report.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

std::string AuditJson(const AuditReport& r) {
  nlohmann::json findings = nlohmann::json::array();
  for (const AuditFinding& f : r.findings) {
    nlohmann::json j = {{"kind", AuditKindName(f.kind)}, {"reasons", f.reasons}};
    if (f.kind == AuditFinding::Kind::kGap) {
      j["from_unix"] = f.from_unix;
      j["to_unix"] = f.to_unix;
      j["from"] = IsoTime(f.from_unix);
      j["to"] = IsoTime(f.to_unix);
      j["seconds"] = f.to_unix - f.from_unix;
    } else {
      j["evidence_id"] = f.evidence_id;
      j["received_unix"] = f.from_unix;
      j["received"] = IsoTime(f.from_unix);
      j["stored_trusted"] = f.stored_trusted ? nlohmann::json(*f.stored_trusted) : nullptr;
    }
    if (f.kind == AuditFinding::Kind::kMissing) {
      j["from_seq"] = f.from_seq;
      j["to_seq"] = f.to_seq;
    }
    findings.push_back(std::move(j));
  }
  const nlohmann::json j = {
      {"node", r.node},
      {"from_unix", r.from_unix},
      {"to_unix", r.to_unix},
      {"from", IsoTime(r.from_unix)},
      {"to", IsoTime(r.to_unix)},
      {"deadline_s", r.deadline_s},
      {"deadline_source", r.deadline_source},
      {"replay_from", "activation"},
      {"enrolled_unix", r.enrolled_unix},
      {"activated_unix", r.activated_unix ? nlohmann::json(*r.activated_unix) : nullptr},
      {"attested", r.attested()},
      {"evidence",
       {{"replayed", r.replayed},
        {"in_range", r.in_range},
        {"trusted_in_range", r.trusted_in_range},
        {"decided_under_other_policy", r.other_policy}}},
      {"findings", findings},
      {"seconds", r.seconds}};
  return j.dump() + "\n";
}

std::string AuditText(const AuditReport& r) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "node %s, %s to %s (deadline %llu s, from the %s):\n",
                r.node.c_str(), IsoTime(r.from_unix).c_str(), IsoTime(r.to_unix).c_str(),
                static_cast<unsigned long long>(r.deadline_s), r.deadline_source.c_str());
  out += line;
  std::snprintf(line, sizeof(line),
                "  %s: %llu evidence in the range, %llu trusted (%llu re-verified from "
                "activation in %.3f s)\n",
                r.attested() ? "ATTESTED throughout" : "NOT attested throughout",
                static_cast<unsigned long long>(r.in_range),
                static_cast<unsigned long long>(r.trusted_in_range),
                static_cast<unsigned long long>(r.replayed), r.seconds);
  out += line;
  if (r.other_policy > 0) {
    std::snprintf(line, sizeof(line),
                  "  note: %llu of them were decided under another policy version\n",
                  static_cast<unsigned long long>(r.other_policy));
    out += line;
  }
  for (const AuditFinding& f : r.findings) {
    if (f.kind == AuditFinding::Kind::kGap) {
      std::snprintf(line, sizeof(line), "  gap %s to %s (%llu s)", IsoTime(f.from_unix).c_str(),
                    IsoTime(f.to_unix).c_str(),
                    static_cast<unsigned long long>(f.to_unix - f.from_unix));
    } else {
      std::snprintf(line, sizeof(line), "  %s: evidence %lld received %s", AuditKindName(f.kind),
                    static_cast<long long>(f.evidence_id), IsoTime(f.from_unix).c_str());
    }
    out += line;
    if (f.kind == AuditFinding::Kind::kMissing) {
      std::snprintf(line, sizeof(line), ": log seq %llu to %llu",
                    static_cast<unsigned long long>(f.from_seq),
                    static_cast<unsigned long long>(f.to_seq));
      out += line;
    }
    out += "\n";
    for (const std::string& why : f.reasons) out += "    " + format::EscapeText(why) + "\n";
  }
  return out;
}

int RunAudit(const fleet::ConnectOptions& connect, const attest::Policy& policy,
             const AuditOptions& options, bool json) {
  auto store = fleet::Store::Open(connect);
  if (!store.ok()) {
    std::fprintf(stderr, "vigil-verifier: audit: %s\n", store.status().ToString().c_str());
    return 3;
  }
  auto report = AuditNode(*store, policy, options);
  if (!report.ok()) {
    std::fprintf(stderr, "vigil-verifier: audit: %s\n", report.status().ToString().c_str());
    return 3;
  }
  const std::string text = json ? AuditJson(*report) : AuditText(*report);
  std::fputs(text.c_str(), stdout);
  return report->attested() ? 0 : 1;
}

}  // namespace vigil::verifier
