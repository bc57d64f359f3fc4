#include "fleet_analytics.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include "vigil/attest/baseline_report.h"
#include "vigil/attest/enrolment.h"
#include "vigil/attest/evidence.h"
#include "vigil/baseline/feature.h"
#include "vigil/baseline/store.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/openssl_ptr.h"
#include "vigil/read_file.h"
#include "vigil/tpm_object.h"

namespace vigil::verifier::analytics {
namespace {

using fleet::Param;
using fleet::Rows;
using fleet::Transaction;
using nlohmann::json;

constexpr std::string_view kFleetReportFormat = "vigil-fleet-report";
constexpr std::string_view kSignedFormat = "vigil-fleet-report-signed";
constexpr std::string_view kSignatureAlg = "ecdsa-p256-sha256";
// Domain separation: a fleet report signature is never one over other bytes
// the same key might sign.
constexpr char kSignatureDomain[] = "vigil-fleet-report-v1";  // and its NUL
// 1.4826 * MAD estimates the standard deviation of normal data.
constexpr double kMadToSigma = 1.4826;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

double MedianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double FeatureFloor(const std::string& feature) {
  auto f = baseline::FeatureFromName(feature);
  return f ? baseline::kDefaultMinMad[baseline::FeatureIndex(*f)] : 0.0;
}

Status OpenSslError(const char* what) {
  return Status::Error(ErrorCode::kInternal, std::string("OpenSSL: ") + what);
}

// A P-256 key from PEM: a private key, or (public_only) a public key or the
// public half of a private key.
Result<ossl::PkeyPtr> ReadP256Key(std::string_view pem, bool want_private) {
  ossl::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return OpenSslError("BIO_new_mem_buf");
  ossl::PkeyPtr key;
  if (want_private) {
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  } else {
    key.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
      ossl::BioPtr again(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
      key.reset(PEM_read_bio_PrivateKey(again.get(), nullptr, nullptr, nullptr));
    }
  }
  if (!key) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         want_private ? "not a PEM private key" : "not a PEM public key");
  }
  char group[64] = {};
  size_t group_len = 0;
  if (!EVP_PKEY_is_a(key.get(), "EC") ||
      EVP_PKEY_get_group_name(key.get(), group, sizeof(group), &group_len) != 1 ||
      std::string_view(group) != "prime256v1") {
    return Status::Error(ErrorCode::kUnsupported, "the key is not an ECDSA P-256 key");
  }
  return key;
}

Result<std::string> KeySha256Hex(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return OpenSslError("i2d_PUBKEY");
  auto d = crypto::Sha256({std::span<const uint8_t>(der, static_cast<size_t>(len))});
  OPENSSL_free(der);
  if (!d.ok()) return d.status();
  return crypto::ToHex(*d);
}

std::string SignedBytes(const json& report) {
  std::string out(kSignatureDomain, sizeof(kSignatureDomain));  // with the NUL
  out += report.dump();
  return out;
}

}  // namespace

Result<std::vector<RoleFeatureStat>> RoleFeatureStats(std::string_view snapshot) {
  VIGIL_ASSIGN_OR_RETURN(baseline::BaselineStore store,
                         attest::ParseBaselineSnapshotStore(snapshot));
  std::set<std::string> roles;
  for (const std::string& agent : store.AgentNames()) {
    if (auto role = store.AgentRole(agent)) roles.insert(*role);
  }
  std::vector<RoleFeatureStat> out;
  for (const std::string& role : roles) {
    for (baseline::Feature f : baseline::kAllFeatures) {
      auto pool = store.Pool(role, f);
      if (!pool || pool->sketch.count() == 0) continue;
      auto median = pool->sketch.Quantile(0.5);
      if (!median || !std::isfinite(*median)) continue;
      out.push_back({role, std::string(baseline::FeatureName(f)), pool->agents,
                     pool->sketch.count(), *median});
    }
  }
  return out;
}

Result<IngestOutcome> IngestBaselineReport(fleet::Store& store, const std::string& node,
                                           std::string_view report_json,
                                           std::optional<std::span<const uint8_t>> nonce) {
  VIGIL_RETURN_IF_ERROR(attest::CheckNodeId(node));
  VIGIL_ASSIGN_OR_RETURN(std::optional<fleet::NodeRecord> record, store.GetNode(node));
  if (!record || !record->activated_unix) {
    return Status::Error(ErrorCode::kNotFound,
                         "node " + node + " is not enrolled and activated in the database");
  }
  VIGIL_ASSIGN_OR_RETURN(tpmobj::PublicArea ak,
                         tpmobj::ParseTpm2bPublic(record->enrolment.ak_public));

  VIGIL_ASSIGN_OR_RETURN(Transaction tx, store.connection().Begin());
  // One ingest per node at a time: the replay check below then sees every
  // report stored before it.
  const Param node_param[] = {Param::Text(node)};
  VIGIL_RETURN_IF_ERROR(
      tx.Exec("SELECT 1 FROM nodes WHERE node_id = $1 FOR UPDATE", node_param).status());
  if (nonce) {
    VIGIL_ASSIGN_OR_RETURN(std::optional<uint64_t> expires,
                           fleet::Store::ConsumeNonce(tx, node, *nonce));
    VIGIL_ASSIGN_OR_RETURN(uint64_t now, fleet::Store::DatabaseNowUnix(tx));
    if (!expires || *expires < now) {
      // Consumed either way: commit that, then refuse.
      VIGIL_RETURN_IF_ERROR(tx.Commit());
      return Status::Error(ErrorCode::kMismatch,
                           std::string("nonce: ") +
                               (expires ? "expired" : "not issued to the node, or used already"));
    }
  }
  attest::BaselineReportCheck c = attest::CheckBaselineReport(report_json, ak, nonce);
  if (!c.node.empty() && c.node != node) {
    c.reasons.push_back("node: the report names node " + c.node + ", checked with the AK of " +
                        node);
    c.valid = false;
  }
  if (!c.valid) {
    std::string all;
    for (const std::string& why : c.reasons) all += (all.empty() ? "" : "; ") + why;
    if (nonce) VIGIL_RETURN_IF_ERROR(tx.Commit());  // the nonce stays consumed
    return Status::Error(ErrorCode::kMismatch, "baseline report refused: " + all);
  }
  VIGIL_ASSIGN_OR_RETURN(attest::BaselineReport report, attest::ParseBaselineReport(report_json));
  const std::string_view snapshot(reinterpret_cast<const char*>(report.snapshot.data()),
                                  report.snapshot.size());
  VIGIL_ASSIGN_OR_RETURN(std::vector<RoleFeatureStat> stats, RoleFeatureStats(snapshot));

  // A MEASURE seq only grows within a module instance: a report whose seq
  // is not above every stored one of the instance is a replay or older.
  const Param seen[] = {Param::Text(node), Param::Bytea(report.instance),
                        Param::Int8(static_cast<int64_t>(report.measure_seq))};
  VIGIL_ASSIGN_OR_RETURN(
      Rows newer, tx.Exec("SELECT max(measure_seq) FROM baseline_reports WHERE node_id = $1 AND"
                          " instance = $2 AND measure_seq >= $3",
                          seen));
  VIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> stored_seq, newer.NullableInt8(0, 0));
  if (stored_seq) {
    if (nonce) VIGIL_RETURN_IF_ERROR(tx.Commit());
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "baseline report refused: replayed or older: MEASURE seq " +
                             std::to_string(report.measure_seq) + " of instance " + c.instance +
                             ", and seq " + std::to_string(*stored_seq) + " is stored already");
  }
  const Param row[] = {Param::Text(node),
                       Param::Bytea(report.instance),
                       Param::Int8(static_cast<int64_t>(report.measure_seq)),
                       Param::Bytea(report.snapshot_sha256),
                       Param::Bytea(report.nonce),
                       Param::Bool(c.fresh),
                       Param::Bytea(Bytes(report_json))};
  VIGIL_ASSIGN_OR_RETURN(
      Rows inserted,
      tx.Exec("INSERT INTO baseline_reports (node_id, instance, measure_seq, snapshot_sha256,"
              " nonce, fresh, body) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING report_id",
              row));
  VIGIL_ASSIGN_OR_RETURN(int64_t report_id, inserted.Int8(0, 0));
  for (const RoleFeatureStat& s : stats) {
    const Param stat[] = {Param::Int8(report_id),
                          Param::Text(s.role),
                          Param::Text(s.feature),
                          Param::Int8(static_cast<int64_t>(s.agents)),
                          Param::Int8(static_cast<int64_t>(s.samples)),
                          Param::Float8(s.median)};
    VIGIL_RETURN_IF_ERROR(
        tx.Exec("INSERT INTO baseline_role_features (report_id, role, feature, agents, samples,"
                " median) VALUES ($1, $2, $3, $4, $5, $6)",
                stat)
            .status());
  }
  VIGIL_RETURN_IF_ERROR(tx.Commit());
  return IngestOutcome{report_id, node, c.fresh, std::move(stats)};
}

Result<std::vector<NodeStat>> LatestNodeStats(fleet::Store& store) {
  VIGIL_ASSIGN_OR_RETURN(
      Rows rows,
      store.connection().Exec(
          "SELECT r.node_id, r.report_id, f.role, f.feature, f.agents, f.samples, f.median"
          " FROM (SELECT DISTINCT ON (node_id) node_id, report_id FROM baseline_reports"
          "       ORDER BY node_id, report_id DESC) r"
          " JOIN baseline_role_features f ON f.report_id = r.report_id"
          " ORDER BY f.role, f.feature, r.node_id",
          {}, fleet::Retry::kOnceIfIdempotent));
  std::vector<NodeStat> out;
  out.reserve(static_cast<size_t>(rows.size()));
  for (int i = 0; i < rows.size(); ++i) {
    NodeStat s;
    VIGIL_ASSIGN_OR_RETURN(s.node, rows.Text(i, 0));
    VIGIL_ASSIGN_OR_RETURN(s.report_id, rows.Int8(i, 1));
    VIGIL_ASSIGN_OR_RETURN(s.stat.role, rows.Text(i, 2));
    VIGIL_ASSIGN_OR_RETURN(s.stat.feature, rows.Text(i, 3));
    VIGIL_ASSIGN_OR_RETURN(int64_t agents, rows.Int8(i, 4));
    VIGIL_ASSIGN_OR_RETURN(int64_t samples, rows.Int8(i, 5));
    s.stat.agents = static_cast<uint64_t>(agents);
    s.stat.samples = static_cast<uint64_t>(samples);
    VIGIL_ASSIGN_OR_RETURN(s.stat.median, rows.Float8(i, 6));
    out.push_back(std::move(s));
  }
  return out;
}

FleetAnalysis Analyse(std::span<const NodeStat> stats, const AnalysisOptions& options,
                      uint64_t generated_unix) {
  FleetAnalysis out;
  out.generated_unix = generated_unix;
  out.options = options;
  std::set<std::string> nodes;
  std::map<std::pair<std::string, std::string>, std::vector<const NodeStat*>> pools;
  for (const NodeStat& s : stats) {
    nodes.insert(s.node);
    pools[{s.stat.role, s.stat.feature}].push_back(&s);
  }
  out.nodes = nodes.size();
  for (const auto& [key, members] : pools) {
    std::vector<double> values;
    for (const NodeStat* s : members) values.push_back(s->stat.median);
    Pool p;
    p.role = key.first;
    p.feature = key.second;
    p.nodes = members.size();
    p.median = MedianOf(values);
    std::vector<double> deviations;
    for (double v : values) deviations.push_back(std::fabs(v - p.median));
    p.mad = MedianOf(deviations);
    // Floors: honest nodes that agree closely would otherwise make any
    // small difference an outlier.
    p.scale = kMadToSigma * std::max({p.mad, options.min_relative_mad * std::fabs(p.median),
                                      FeatureFloor(p.feature)});
    if (p.nodes >= options.min_nodes && p.scale > 0) {
      for (const NodeStat* s : members) {
        const double score = std::fabs(s->stat.median - p.median) / p.scale;
        if (score >= options.threshold) {
          Alert a;
          a.node = s->node;
          a.role = p.role;
          a.feature = p.feature;
          a.value = s->stat.median;
          a.fleet_median = p.median;
          a.fleet_mad = p.mad;
          a.score = score;
          out.alerts.push_back(std::move(a));
        }
      }
    }
    out.pools.push_back(std::move(p));
  }
  return out;
}

json FleetReportJson(const FleetAnalysis& a) {
  json pools = json::array();
  for (const Pool& p : a.pools) {
    pools.push_back({{"role", p.role},
                     {"feature", p.feature},
                     {"nodes", p.nodes},
                     {"median", p.median},
                     {"mad", p.mad},
                     {"scale", p.scale}});
  }
  json alerts = json::array();
  for (const Alert& x : a.alerts) {
    alerts.push_back({{"kind", x.kind},
                      {"node", x.node},
                      {"role", x.role},
                      {"feature", x.feature},
                      {"value", x.value},
                      {"fleet_median", x.fleet_median},
                      {"fleet_mad", x.fleet_mad},
                      {"score", x.score}});
  }
  return {{"format", kFleetReportFormat},
          {"version", 1},
          {"generated_unix", a.generated_unix},
          {"threshold", a.options.threshold},
          {"min_nodes", a.options.min_nodes},
          {"min_relative_mad", a.options.min_relative_mad},
          {"nodes", a.nodes},
          {"pools", pools},
          {"alerts", alerts}};
}

Result<std::string> SignFleetReport(const json& report, std::string_view private_key_pem) {
  VIGIL_ASSIGN_OR_RETURN(ossl::PkeyPtr key, ReadP256Key(private_key_pem, true));
  const std::string message = SignedBytes(report);
  ossl::MdCtxPtr md(EVP_MD_CTX_new());
  if (!md) return OpenSslError("EVP_MD_CTX_new");
  size_t len = 0;
  if (EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(md.get(), nullptr, &len, Bytes(message).data(), message.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  std::vector<uint8_t> sig(len);
  if (EVP_DigestSign(md.get(), sig.data(), &len, Bytes(message).data(), message.size()) != 1) {
    return OpenSslError("EVP_DigestSign");
  }
  sig.resize(len);
  VIGIL_ASSIGN_OR_RETURN(std::string key_sha256, KeySha256Hex(key.get()));
  const json envelope = {
      {"format", kSignedFormat},
      {"version", 1},
      {"report", report},
      {"signature",
       {{"alg", kSignatureAlg}, {"key_sha256", key_sha256}, {"value", attest::EncodeBase64(sig)}}}};
  return envelope.dump(2) + "\n";
}

Result<json> VerifyFleetReport(std::string_view envelope_text, std::string_view public_key_pem) {
  VIGIL_ASSIGN_OR_RETURN(ossl::PkeyPtr key, ReadP256Key(public_key_pem, false));
  const json envelope = json::parse(envelope_text, nullptr, /*allow_exceptions=*/false);
  auto malformed = [](const std::string& why) {
    return Status::Error(ErrorCode::kMalformed, "fleet report: " + why);
  };
  if (!envelope.is_object()) return malformed("not a JSON object");
  for (const char* k : {"format", "version", "report", "signature"}) {
    if (!envelope.contains(k)) return malformed(std::string("no \"") + k + "\"");
  }
  if (envelope.size() != 4) return malformed("unknown keys");
  if (envelope["format"] != kSignedFormat)
    return malformed("format is not " + std::string(kSignedFormat));
  if (envelope["version"] != 1) {
    return Status::Error(ErrorCode::kUnsupported, "fleet report: version is not 1");
  }
  const json& report = envelope["report"];
  const json& sig = envelope["signature"];
  if (!report.is_object() || report.value("format", "") != kFleetReportFormat) {
    return malformed("report is not a vigil-fleet-report object");
  }
  if (!sig.is_object() || sig.size() != 3 || !sig.contains("alg") || !sig.contains("key_sha256") ||
      !sig.contains("value") || !sig["alg"].is_string() || !sig["key_sha256"].is_string() ||
      !sig["value"].is_string()) {
    return malformed("signature is not {alg, key_sha256, value}");
  }
  if (sig["alg"] != kSignatureAlg)
    return malformed("signature.alg is not " + std::string(kSignatureAlg));
  VIGIL_ASSIGN_OR_RETURN(std::string key_sha256, KeySha256Hex(key.get()));
  if (sig["key_sha256"].get<std::string>() != key_sha256) {
    return Status::Error(ErrorCode::kMismatch,
                         "fleet report: signed by another key (key_sha256 " +
                             format::EscapeText(sig["key_sha256"].get<std::string>()) + ", given " +
                             key_sha256 + ")");
  }
  auto value = attest::DecodeBase64(sig["value"].get<std::string>(), 1024);
  if (!value.ok()) return malformed("signature.value: " + value.status().message());
  const std::string message = SignedBytes(report);
  ossl::MdCtxPtr md(EVP_MD_CTX_new());
  if (!md) return OpenSslError("EVP_MD_CTX_new");
  if (EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return OpenSslError("EVP_DigestVerifyInit");
  }
  if (EVP_DigestVerify(md.get(), value->data(), value->size(), Bytes(message).data(),
                       message.size()) != 1) {
    return Status::Error(ErrorCode::kMismatch,
                         "fleet report: the signature does not verify (edited, or another key)");
  }
  return report;
}

// ---- the subcommands ----

void AddCommands(CLI::App& app, Commands& c) {
  c.submit = app.add_subcommand(
      "submit-report",
      "--database: check a node's signed baseline report with its enrolled AK and store its "
      "per-role statistics");
  c.submit->fallthrough();
  c.submit->add_option("--node", c.node, "Node id (hex EK name)")->required();
  c.submit->add_option("--report", c.report_file, "The report (vigilctl baseline report)")
      ->required();
  c.submit->add_option("--nonce", c.nonce,
                       "The nonce the database issued to the node (hex; consumed)");
  c.report = app.add_subcommand(
      "fleet-report",
      "--database: pool the nodes' baselines per role; print pools and byzantine_outlier alerts");
  c.report->fallthrough();
  c.report->add_flag("--json", c.json, "Print the report as JSON (signed with --signing-key)");
  c.report->add_option("-o,--output", c.output,
                       "Write the signed report here (needs --signing-key)");
  c.report->add_option("--signing-key", c.signing_key,
                       "The verifier's ECDSA P-256 private key (PEM) that signs the report");
  c.report->add_option("--threshold", c.options.threshold, "Robust z score of an outlier")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 1000.0));
  c.report
      ->add_option("--min-nodes", c.options.min_nodes, "Nodes a pool needs before it flags anyone")
      ->capture_default_str()
      ->check(CLI::Range(size_t{3}, size_t{1000000}));
  c.verify = app.add_subcommand("verify-fleet-report",
                                "Check a signed fleet report with the verifier's public key");
  c.verify->add_option("--report", c.report_file, "The signed fleet report")->required();
  c.verify->add_option("--pubkey", c.pubkey, "The verifier's public key (PEM)")->required();
}

namespace {

int Fail(const char* cmd, const Status& st, int code) {
  std::fprintf(stderr, "vigil-verifier %s: %s\n", cmd, st.ToString().c_str());
  return code;
}

Result<fleet::Store> OpenStore(const std::string& database) {
  VIGIL_ASSIGN_OR_RETURN(fleet::ConnectOptions connect, fleet::ParseConnInfo(database));
  connect.application_name = "vigil-verifier";
  return fleet::Store::Open(connect);
}

int Submit(const Commands& c, const std::string& database) {
  std::optional<std::vector<uint8_t>> nonce;
  if (!c.nonce.empty()) {
    auto bytes = crypto::FromHex(c.nonce);
    if (!bytes.ok() || bytes->empty()) {
      std::fprintf(stderr, "vigil-verifier submit-report: --nonce takes hex\n");
      return 2;
    }
    nonce = std::move(bytes).value();
  }
  auto text = ReadFileUpTo(c.report_file, attest::kMaxBaselineReportBytes);
  if (!text.ok()) return Fail("submit-report", text.status(), 3);
  auto store = OpenStore(database);
  if (!store.ok()) return Fail("submit-report", store.status(), 3);
  std::optional<std::span<const uint8_t>> expected;
  if (nonce) expected = std::span<const uint8_t>(*nonce);
  auto outcome = IngestBaselineReport(*store, c.node, *text, expected);
  if (!outcome.ok()) {
    const ErrorCode code = outcome.status().code();
    const bool refused = code == ErrorCode::kMismatch || code == ErrorCode::kFailedPrecondition;
    return Fail("submit-report", outcome.status(), refused ? 1 : 3);
  }
  std::set<std::string> roles;
  for (const RoleFeatureStat& s : outcome->stats) roles.insert(s.role);
  std::printf("stored: node %s report %lld, %zu roles, %zu statistics, %s\n", c.node.c_str(),
              static_cast<long long>(outcome->report_id), roles.size(), outcome->stats.size(),
              outcome->fresh ? "fresh (the database's nonce)" : "not shown fresh (no --nonce)");
  return 0;
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

int Report(const Commands& c, const std::string& database) {
  if (!c.output.empty() && c.signing_key.empty()) {
    std::fprintf(stderr, "vigil-verifier fleet-report: -o needs --signing-key\n");
    return 2;
  }
  std::string key_pem;
  if (!c.signing_key.empty()) {
    auto k = ReadFileUpTo(c.signing_key, 1u << 20);
    if (!k.ok()) return Fail("fleet-report", k.status(), 3);
    key_pem = std::move(k).value();
  }
  auto store = OpenStore(database);
  if (!store.ok()) return Fail("fleet-report", store.status(), 3);
  auto stats = LatestNodeStats(*store);
  if (!stats.ok()) return Fail("fleet-report", stats.status(), 3);
  auto now = store->DatabaseNowUnix();
  if (!now.ok()) return Fail("fleet-report", now.status(), 3);
  const FleetAnalysis analysis = Analyse(*stats, c.options, *now);
  const json report = FleetReportJson(analysis);
  std::string signed_text;
  if (!key_pem.empty()) {
    auto s = SignFleetReport(report, key_pem);
    if (!s.ok()) return Fail("fleet-report", s.status(), 3);
    signed_text = std::move(s).value();
  }
  if (!c.output.empty()) {
    std::ofstream out(c.output, std::ios::binary | std::ios::trunc);
    out << signed_text;
    out.close();
    if (!out) {
      return Fail("fleet-report",
                  Status::Error(ErrorCode::kUnavailable, "cannot write " + c.output), 3);
    }
  }
  if (c.json) {
    std::fputs(signed_text.empty() ? (report.dump(2) + "\n").c_str() : signed_text.c_str(), stdout);
    return 0;
  }
  std::printf(
      "fleet: %zu nodes, %zu pools, %zu byzantine_outlier alerts (robust z >= %s, "
      "pools of >= %zu nodes)\n",
      analysis.nodes, analysis.pools.size(), analysis.alerts.size(),
      Number(analysis.options.threshold).c_str(), analysis.options.min_nodes);
  for (const Pool& p : analysis.pools) {
    std::printf("pool role %s %s: %zu nodes, median %s, MAD %s\n",
                format::EscapeText(p.role).c_str(), p.feature.c_str(), p.nodes,
                Number(p.median).c_str(), Number(p.mad).c_str());
  }
  for (const Alert& a : analysis.alerts) {
    std::printf(
        "ALERT byzantine_outlier: node %s role %s feature %s: %s (fleet median %s, MAD %s, "
        "z %s)\n",
        a.node.c_str(), format::EscapeText(a.role).c_str(), a.feature.c_str(),
        Number(a.value).c_str(), Number(a.fleet_median).c_str(), Number(a.fleet_mad).c_str(),
        Number(a.score).c_str());
  }
  return 0;
}

int Verify(const Commands& c) {
  auto text = ReadFileUpTo(c.report_file, 64u << 20);
  if (!text.ok()) return Fail("verify-fleet-report", text.status(), 3);
  auto key = ReadFileUpTo(c.pubkey, 1u << 20);
  if (!key.ok()) return Fail("verify-fleet-report", key.status(), 3);
  auto report = VerifyFleetReport(*text, *key);
  if (!report.ok()) {
    const ErrorCode code = report.status().code();
    if (code == ErrorCode::kInvalidArgument || code == ErrorCode::kUnsupported) {
      return Fail("verify-fleet-report", report.status(), 3);  // the key
    }
    std::printf("INVALID: %s\n", report.status().message().c_str());
    return 1;
  }
  std::printf("valid: fleet report of %s nodes, %zu pools, %zu alerts, generated at unix %s\n",
              report->value("nodes", json(0)).dump().c_str(),
              report->value("pools", json::array()).size(),
              report->value("alerts", json::array()).size(),
              report->value("generated_unix", json(0)).dump().c_str());
  return 0;
}

}  // namespace

std::optional<int> RunCommand(const Commands& c, const std::string& database) {
  if (c.verify && *c.verify) return Verify(c);
  if ((c.submit && *c.submit) || (c.report && *c.report)) {
    if (database.empty()) {
      std::fprintf(stderr, "vigil-verifier: %s needs --database\n",
                   *c.submit ? "submit-report" : "fleet-report");
      return 2;
    }
    return *c.submit ? Submit(c, database) : Report(c, database);
  }
  return std::nullopt;
}

}  // namespace vigil::verifier::analytics
