// vigil-verifier: the remote verifier. Runs off the node and holds no node
// secret: it trusts an EK certificate chain (or an EK pinned at enrolment),
// checks the AK, and then decides evidence -- a TPM quote over the anchor
// registers with its nonce, the module's log and events since the last
// verified point -- under a policy file. See docs/attestation.md.
//
//   vigil-verifier enrol    --state DIR --policy P --request FILE (--ca PEM... | --pin-ek)
//   vigil-verifier activate --state DIR --policy P --node ID --secret HEX
//   vigil-verifier nonce    --state DIR --policy P --node ID
//   vigil-verifier verify   --state DIR --policy P --evidence FILE
//   vigil-verifier serve    --state DIR --policy P [--listen 127.0.0.1:8790]
//                           [--serial QEMU-CHARDEV-SOCKET]... [--deadline 60]
//   vigil-verifier --database CONNINFO [--name NAME] --policy P serve|enrol|activate|nonce|verify
//                           the same on the fleet database (docs/fleet.md): several
//                           verifiers share it; serve also takes [--lease S]
//                           [--claim-interval S] (liveness leases)
//   vigil-verifier --database CONNINFO --policy P audit --node N [--from T1] [--to T2] [--json]
//                           the node's stored evidence verified again offline (audit.h)
//   vigil-verifier check-report --report FILE (--state DIR --node ID | --ak FILE) [--nonce HEX]
//                           a signed baseline report, offline (check_report.h:
//                           exit 0 valid, 1 invalid, 2 usage, 3 error)
//
// Exit codes: 0 trusted / done, 1 untrusted, 2 usage, 3 error (a file that
// cannot be read, a refused request).
#include <httplib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit.h"
#include "check_report.h"
#include "dispatch.h"
#include "fleet_analytics.h"
#include "fleet_watch.h"
#include "http_listen.h"
#include "serial.h"
#include "service.h"
#include "vigil/cli_parse.h"
#include "vigil/read_file.h"
#include "vigil/version.h"

namespace {

constexpr int kExitTrusted = 0;
constexpr int kExitUntrusted = 1;
constexpr int kExitUsage = 2;
constexpr int kExitError = 3;
constexpr size_t kMaxInputBytes = 256u << 20;  // evidence can carry a large log

vigil::Result<std::string> ReadInput(const std::string& path) {
  return vigil::ReadFileUpTo(path, kMaxInputBytes);
}

int Fail(const vigil::Status& st) {
  std::fprintf(stderr, "vigil-verifier: %s\n", st.ToString().c_str());
  return kExitError;
}

// `serve`: HTTP on loopback and/or virtio-serial channels, one service,
// one verdict stream on stdout, a liveness watch.
struct ServeOptions {
  std::string listen;                // HOST:PORT, empty: no HTTP
  std::vector<std::string> serials;  // QEMU chardev sockets
  uint64_t deadline_s = 60;
  // --database: the liveness leases (FleetWatch).
  bool database = false;
  vigil::fleet::ConnectOptions connect;
  std::string name;
  double lease_s = 15;
  double claim_interval_s = 5;
};

// --database: the liveness watch on its own connection and thread; SIGTERM,
// SIGINT or SIGHUP stop the HTTP server, and the leases are handed back.
int ServeDatabase(vigil::verifier::Service& service, const ServeOptions& o,
                  const vigil::verifier::EnrolOptions& enrol, const std::string& host, int port) {
  using vigil::verifier::Dispatch;
  using vigil::verifier::Reply;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&stop_signals, sig);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // for every thread started below

  std::mutex mu;  // the service's connection: one request at a time
  // Deadlines are the database's (FleetWatch): no in-memory watch.
  vigil::verifier::Monitor monitor(stdout, 0);
  vigil::verifier::FleetWatchOptions wo;
  wo.name = o.name;
  wo.lease = std::chrono::milliseconds(static_cast<int64_t>(o.lease_s * 1000));
  wo.interval = std::chrono::milliseconds(static_cast<int64_t>(o.claim_interval_s * 1000));
  wo.deadline_s = o.deadline_s;
  auto watch = vigil::verifier::FleetWatch::Open(o.connect, wo, &monitor);
  if (!watch.ok()) return Fail(watch.status());

  httplib::Server server;
  server.set_payload_max_length(kMaxInputBytes);
  for (const char* op : {"enrol", "activate", "nonce", "evidence"}) {
    server.Post(std::string("/v1/") + op,
                [&, op](const httplib::Request& req, httplib::Response& res) {
                  const Reply r = Dispatch(service, mu, enrol, &monitor, op, req.body);
                  res.status = r.status;
                  res.set_content(r.body, "application/json");
                });
  }
  std::atomic<bool> stop{false}, listening_done{false};
  std::thread watcher([&] { watch->Run(stop); });
  std::thread signals([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!listening_done.load()) {
      const int sig = sigtimedwait(&stop_signals, nullptr, &tick);
      if (sig <= 0) continue;
      std::fprintf(stderr, "vigil-verifier: signal %d: stopping\n", sig);
      stop.store(true);
      // Until listen() has returned (a signal may come before it runs).
      while (!listening_done.load()) {
        server.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });
  std::fprintf(stderr, "vigil-verifier: listening on %s (database, verifier %s)\n",
               o.listen.c_str(), o.name.c_str());
  int rc = kExitTrusted;
  if (!stop.load()) {
    if (vigil::Status st = vigil::verifier::ListenHttp(server, host, port);
        !st.ok() && !stop.load()) {
      std::fprintf(stderr, "vigil-verifier: %s\n", st.ToString().c_str());
      rc = kExitError;
    }
  }
  listening_done.store(true);
  stop.store(true);
  signals.join();
  watcher.join();
  if (vigil::Status st = watch->ReleaseAll(); !st.ok()) {
    std::fprintf(stderr, "vigil-verifier: releasing leases: %s\n", st.ToString().c_str());
  }
  return rc;
}

int Serve(vigil::verifier::Service& service, const ServeOptions& o,
          const vigil::verifier::EnrolOptions& enrol) {
  using vigil::verifier::Dispatch;
  using vigil::verifier::Reply;
  std::string host;
  int port = 0;
  if (!o.listen.empty()) {
    const size_t colon = o.listen.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "vigil-verifier: --listen takes HOST:PORT\n");
      return kExitUsage;
    }
    host = o.listen.substr(0, colon);
    try {
      port = std::stoi(o.listen.substr(colon + 1));
    } catch (...) {
      port = -1;
    }
    if (port <= 0 || port > 65535) {
      std::fprintf(stderr, "vigil-verifier: bad port in --listen %s\n", o.listen.c_str());
      return kExitUsage;
    }
  }
  if (o.database) return ServeDatabase(service, o, enrol, host, port);
  std::mutex mu;  // the service's files: one request at a time
  vigil::verifier::Monitor monitor(stdout, o.deadline_s);
  const uint64_t start = static_cast<uint64_t>(::time(nullptr));
  auto known = service.ActivatedNodes();
  if (!known.ok()) return Fail(known.status());
  for (const auto& [node, last] : *known) monitor.Watch(node, std::max(last, start));
  const auto handle = [&](std::string_view op, std::string_view body) {
    return Dispatch(service, mu, enrol, &monitor, op, body);
  };

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    while (!stop.load()) {
      monitor.Tick(static_cast<uint64_t>(::time(nullptr)));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  for (const std::string& spec : o.serials) {
    // PATH or PATH=NODE: a channel bound to its node from the start.
    std::string path = spec;
    if (const size_t eq = spec.rfind('='); eq != std::string::npos &&
                                           vigil::verifier::CheckNodeId(spec.substr(eq + 1)).ok()) {
      path = spec.substr(0, eq);
      std::lock_guard lock(mu);
      if (vigil::Status st = service.BindChannel(path, spec.substr(eq + 1)); !st.ok()) {
        stop.store(true);
        for (std::thread& t : threads) t.join();
        return Fail(st);
      }
    }
    threads.emplace_back([&, path] {
      vigil::verifier::ServeSerial(
          path,
          [&, path](std::string_view op, std::string_view body) {
            return Dispatch(service, mu, enrol, &monitor, op, body, path);
          },
          stop);
    });
  }
  int rc = kExitTrusted;
  if (!o.listen.empty()) {
    httplib::Server server;
    server.set_payload_max_length(kMaxInputBytes);
    for (const char* op : {"enrol", "activate", "nonce", "evidence"}) {
      server.Post(std::string("/v1/") + op,
                  [&, op](const httplib::Request& req, httplib::Response& res) {
                    const Reply r = handle(op, req.body);
                    res.status = r.status;
                    res.set_content(r.body, "application/json");
                  });
    }
    std::fprintf(stderr, "vigil-verifier: listening on %s\n", o.listen.c_str());
    if (vigil::Status st = vigil::verifier::ListenHttp(server, host, port); !st.ok()) {
      std::fprintf(stderr, "vigil-verifier: %s\n", st.ToString().c_str());
      rc = kExitError;
    }
  } else {
    // Channels only: run until a signal ends the process.
    for (;;) ::pause();
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil-verifier: remote attestation of vigil nodes (TPM quote + log replay)"};
  app.set_version_flag("--version", vigil::version::VersionText("vigil-verifier"));
  app.require_subcommand(1);
  std::string state_dir, policy_file;
  // Required by every command but check-report (checked after parsing).
  app.add_option("--state", state_dir, "Verifier state directory (created 0700)");
  app.add_option("--policy", policy_file, "Policy file (docs/attestation.md)");
  std::string database, verifier_name;
  app.add_option("--database", database,
                 "The fleet database instead of --state: a libpq connection string "
                 "(\"host=/run/postgresql dbname=vigil user=vigil\"; docs/fleet.md)");
  app.add_option("--name", verifier_name,
                 "This verifier's name in the database's verdicts and leases "
                 "(default HOSTNAME-PID)");

  vigil::verifier::EnrolOptions enrol_options;
  std::string request_file, node, secret, evidence_file;
  ServeOptions serve_options;
  bool json_out = false;
  auto* enrol =
      app.add_subcommand("enrol", "Check a node's enrolment request; print its challenge");
  enrol->add_option("--request", request_file, "Enrolment request (vigilctl attest enrol-request)")
      ->required();
  enrol->add_option("--ca", enrol_options.ca_files, "CA certificate (PEM) of the EK certificate");
  enrol->add_flag("--pin-ek", enrol_options.pin_ek,
                  "Trust the EK as sent (no certificate chain): trust on first use");
  enrol->add_flag("--re-enrol", enrol_options.re_enrol,
                  "Enrol a node that is enrolled already (a new AK; its history restarts)");
  auto* activate = app.add_subcommand("activate", "Check the node's activated credential");
  activate->add_option("--node", node, "Node id (hex EK name)")->required();
  activate->add_option("--secret", secret, "The secret ActivateCredential returned (hex)")
      ->required();
  activate
      ->add_option("--deadline", serve_options.deadline_s,
                   "--database: seconds the node has for its first trusted evidence (0: never)")
      ->capture_default_str();
  auto* nonce = app.add_subcommand("nonce", "Issue a nonce for the node's next evidence");
  nonce->add_option("--node", node, "Node id (hex EK name)")->required();
  auto* verify = app.add_subcommand("verify", "Decide one piece of evidence");
  verify->add_option("--evidence", evidence_file, "Evidence file (vigilctl attest evidence)")
      ->required();
  verify->add_flag("--json", json_out, "Print the result as JSON");
  verify
      ->add_option("--deadline", serve_options.deadline_s,
                   "--database: seconds after this evidence's nonce the node is overdue")
      ->capture_default_str();
  auto* serve = app.add_subcommand(
      "serve",
      "Serve enrolment, nonces and evidence (HTTP, virtio-serial); print verdicts as JSON lines");
  serve->add_option("--listen", serve_options.listen,
                    "HTTP on HOST:PORT (default 127.0.0.1:8790 unless --serial is given)");
  serve->add_option("--serial", serve_options.serials,
                    "A QEMU chardev UNIX socket of a guest's virtio-serial port, PATH or "
                    "PATH=NODE (repeatable); a channel speaks for one node, bound at its first "
                    "enrolment or nonce (or here)");
  serve
      ->add_option("--deadline", serve_options.deadline_s,
                   "Seconds without trusted evidence before a node is overdue (0: never)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{86400 * 365}));
  serve
      ->add_option("--lease", serve_options.lease_s,
                   "--database: seconds a liveness lease on a node lasts (a dead verifier's "
                   "nodes move to another after it)")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  serve
      ->add_option("--claim-interval", serve_options.claim_interval_s,
                   "--database: seconds between lease rounds (claim, renew, overdue check); "
                   "less than --lease")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  serve->add_option("--ca", enrol_options.ca_files, "CA certificate (PEM) of EK certificates");
  serve->add_flag("--pin-ek", enrol_options.pin_ek, "Trust EKs as sent (no certificate chain)");
  vigil::verifier::AuditOptions audit_options;
  std::string audit_from, audit_to;
  uint64_t audit_deadline = 0;
  auto* audit = app.add_subcommand(
      "audit",
      "--database: verify a node's stored evidence again offline; was it attested "
      "throughout? (exit 0 yes, 1 no, 2 usage error, 3 error)");
  audit->add_option("--node", audit_options.node, "Node id (hex EK name)")->required();
  audit->add_option("--from", audit_from,
                    "Start: unix seconds or ISO-8601 UTC (default: the node's enrolment)");
  audit->add_option("--to", audit_to, "End: unix seconds or ISO-8601 UTC (default: now)");
  auto* audit_deadline_opt = audit->add_option(
      "--deadline", audit_deadline,
      "Seconds between trusted evidence beyond which a gap is reported (default: the node's, "
      "from its state row)");
  audit->add_flag("--json", json_out, "Print the audit as JSON");
  vigil::verifier::CheckReportOptions report_options;
  auto* check_report = app.add_subcommand(
      "check-report", "Check a signed baseline report offline (vigilctl baseline report)");
  check_report->fallthrough();  // --state also after check-report
  check_report->add_option("--report", report_options.report, "The report file")->required();
  check_report->add_option("--node", report_options.node, "Node id: its enrolled AK (--state)");
  check_report->add_option("--ak", report_options.ak_file, "The AK: PEM, TPM2B_PUBLIC or its hex");
  check_report->add_option("--nonce", report_options.nonce, "The nonce given to the node (hex)");
  check_report->add_flag("--json", report_options.json, "Print the result as JSON");

  vigil::verifier::analytics::Commands analytics;  // fleet_analytics.h
  vigil::verifier::analytics::AddCommands(app, analytics);

  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
  if (auto exit_code = vigil::verifier::analytics::RunCommand(analytics, database)) {
    return *exit_code;
  }
  if (*check_report) {
    report_options.state_dir = state_dir;
    return vigil::verifier::CheckReport(report_options);
  }
  if (*audit) {
    if (database.empty() || policy_file.empty()) {
      std::fprintf(stderr, "vigil-verifier: audit needs --database and --policy\n");
      return kExitUsage;
    }
    for (auto [text, out] : {std::pair{&audit_from, &audit_options.from_unix},
                             std::pair{&audit_to, &audit_options.to_unix}}) {
      if (text->empty()) continue;
      auto t = vigil::verifier::ParseAuditTime(*text);
      if (!t.ok()) {
        std::fprintf(stderr, "vigil-verifier: audit: %s\n", t.status().message().c_str());
        return kExitUsage;
      }
      *out = *t;
    }
    if (audit_options.from_unix && audit_options.to_unix &&
        *audit_options.from_unix > *audit_options.to_unix) {
      std::fprintf(stderr, "vigil-verifier: audit: --from %s is after --to %s\n",
                   audit_from.c_str(), audit_to.c_str());
      return kExitUsage;
    }
    if (*audit_deadline_opt) audit_options.deadline_s = audit_deadline;
  }
  if (state_dir.empty() == database.empty() || policy_file.empty()) {
    std::fprintf(stderr,
                 "vigil-verifier: --policy and one of --state or --database are required\n");
    return kExitUsage;
  }
  vigil::verifier::DatabaseOptions db_options;
  if (!database.empty()) {
    auto connect = vigil::fleet::ParseConnInfo(database);
    if (!connect.ok()) {
      std::fprintf(stderr, "vigil-verifier: --database: %s\n", connect.status().message().c_str());
      return kExitUsage;
    }
    db_options.connect = *connect;
    db_options.connect.application_name = "vigil-verifier";
    if (verifier_name.empty()) {
      char host[256] = {};
      ::gethostname(host, sizeof(host) - 1);
      verifier_name = std::string(host) + "-" + std::to_string(::getpid());
    }
    if (verifier_name.size() > vigil::fleet::kMaxOwnerBytes) {
      std::fprintf(stderr, "vigil-verifier: --name is at most %zu bytes\n",
                   vigil::fleet::kMaxOwnerBytes);
      return kExitUsage;
    }
    db_options.name = verifier_name;
    db_options.deadline_s = serve_options.deadline_s;
    if (*serve) {
      if (!serve_options.serials.empty()) {
        std::fprintf(stderr, "vigil-verifier: --serial needs --state (channels are bound there)\n");
        return kExitUsage;
      }
      if (serve_options.claim_interval_s >= serve_options.lease_s) {
        std::fprintf(stderr, "vigil-verifier: --claim-interval must be less than --lease\n");
        return kExitUsage;
      }
      serve_options.database = true;
      serve_options.connect = db_options.connect;
      serve_options.name = verifier_name;
    }
  }

  auto policy_text = ReadInput(policy_file);
  if (!policy_text.ok()) return Fail(policy_text.status());
  auto policy = vigil::attest::ParsePolicy(*policy_text);
  if (!policy.ok()) return Fail(policy.status());
  if (*audit) {
    return vigil::verifier::RunAudit(db_options.connect, *policy, audit_options, json_out);
  }
  // serve holds its nonces in memory (no fsynced write per nonce); the
  // one-shot `nonce` and `verify` are separate processes: they share the file.
  auto service = !database.empty()
                     ? vigil::verifier::Service::OpenDatabase(db_options, *policy)
                     : vigil::verifier::Service::Open(state_dir, *policy,
                                                      *serve ? vigil::verifier::NonceStore::kMemory
                                                             : vigil::verifier::NonceStore::kFile);
  if (!service.ok()) return Fail(service.status());

  if (*enrol) {
    auto request = ReadInput(request_file);
    if (!request.ok()) return Fail(request.status());
    auto challenge = service->Enrol(*request, enrol_options);
    if (!challenge.ok()) return Fail(challenge.status());
    std::fputs(challenge->c_str(), stdout);
    return kExitTrusted;
  }
  if (*activate) {
    vigil::Status st = service->Activate(node, secret);
    if (!st.ok()) return Fail(st);
    std::printf("node %s: activated\n", node.c_str());
    return kExitTrusted;
  }
  if (*nonce) {
    auto issued = service->IssueNonce(node);
    if (!issued.ok()) return Fail(issued.status());
    std::fputs(issued->c_str(), stdout);
    return kExitTrusted;
  }
  if (*verify) {
    auto evidence = ReadInput(evidence_file);
    if (!evidence.ok()) return Fail(evidence.status());
    auto result = service->Verify(*evidence);
    if (!result.ok()) return Fail(result.status());
    if (json_out) {
      std::fputs(vigil::attest::ResultJson(*result).c_str(), stdout);
    } else {
      std::printf("%s: %zu checkpoints, %llu log records, %llu events\n",
                  result->trusted ? "trusted" : "UNTRUSTED", result->verdicts.size(),
                  static_cast<unsigned long long>(result->records),
                  static_cast<unsigned long long>(result->events));
      for (const std::string& why : result->reasons) std::printf("  %s\n", why.c_str());
    }
    return result->trusted ? kExitTrusted : kExitUntrusted;
  }
  if (*serve) {
    std::signal(SIGPIPE, SIG_IGN);
    if (serve_options.listen.empty() && serve_options.serials.empty()) {
      serve_options.listen = "127.0.0.1:8790";
    }
    return Serve(*service, serve_options, enrol_options);
  }
  return kExitUsage;
}
