// vigil-fleet-sim: N simulated vigil nodes, each with its own swtpm, pushing
// evidence to one vigil-verifier serve at a fixed interval; per-node and
// total counts of evidence, verdicts and latencies. See docs/fleet.md
// ("Node simulator and load test").
//
//   vigil-fleet-sim --write-policy FILE
//   vigil-fleet-sim [--verifier HOST:PORT] [--nodes N] [--interval S]
//                   [--duration S | --rounds R] [--tamper NODE:ROUND] [--json]
//
// Exit: 0 every round got the expected verdict (trusted; untrusted for a
// --tamper round), 1 an error or an unexpected verdict, 2 usage.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "sim_node.h"
#include "swtpm_process.h"
#include "vigil/cli_parse.h"
#include "vigil/version.h"

namespace {

using nlohmann::json;
using vigil::fleetsim::RoundResult;
using vigil::fleetsim::SimNode;
using vigil::fleetsim::SwtpmProcess;
using Clock = std::chrono::steady_clock;

constexpr int kExitOk = 0;
constexpr int kExitFail = 1;

// Stop requested (SIGINT, SIGTERM, SIGHUP) or the run is over.
struct StopFlag {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;  // GUARDED_BY(mu)
  void Set() {
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  }
  bool Get() {
    std::lock_guard lock(mu);
    return stop;
  }
  // Sleeps until `t` or a stop; true when stopped.
  bool SleepUntil(Clock::time_point t) {
    std::unique_lock lock(mu);
    return cv.wait_until(lock, t, [this] { return stop; });
  }
};

struct NodeStats {
  std::string node;
  uint64_t pushed = 0, trusted = 0, untrusted = 0, errors = 0, late = 0;
  uint64_t tampered_refused = 0, tampered_trusted = 0;
  std::vector<double> verify_ms, round_ms, tpm_ms, nonce_ms;
  std::vector<std::string> untrusted_reasons;
  std::string last_error;
  bool enrolled = false;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

json Summary(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return {{"n", v.size()},
          {"mean", v.empty() ? 0 : sum / static_cast<double>(v.size())},
          {"p50", Percentile(v, 50)},
          {"p99", Percentile(v, 99)},
          {"max", v.empty() ? 0 : *std::max_element(v.begin(), v.end())}};
}

double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Options {
  std::string verifier = "127.0.0.1:8790";
  int nodes = 3;
  double interval_s = 1.0;
  double duration_s = 10;
  int rounds = 0;
  int events = 3;
  std::string tamper;  // NODE:ROUND
  bool json_out = false;
  std::string work_dir = "/tmp";
  int verifier_pid = 0;
  std::string swtpm;
  std::string write_policy;
};

int Run(const Options& o) {
  vigil::fleetsim::NodeOptions node_options;
  const size_t colon = o.verifier.rfind(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no port");
    node_options.host = o.verifier.substr(0, colon);
    node_options.port = std::stoi(o.verifier.substr(colon + 1));
  } catch (const std::exception&) {
    std::fprintf(stderr, "vigil-fleet-sim: --verifier takes HOST:PORT, not \"%s\"\n",
                 o.verifier.c_str());
    return vigil::cli::kExitUsage;
  }
  node_options.events_per_round = o.events;
  int tamper_node = -1, tamper_round = -1;
  if (!o.tamper.empty()) {
    const size_t c = o.tamper.find(':');
    try {
      if (c == std::string::npos) throw std::invalid_argument("no colon");
      tamper_node = std::stoi(o.tamper.substr(0, c));
      tamper_round = std::stoi(o.tamper.substr(c + 1));
    } catch (const std::exception&) {
      tamper_node = -1;
    }
    if (tamper_node < 0 || tamper_node >= o.nodes || tamper_round < 1) {
      std::fprintf(stderr,
                   "vigil-fleet-sim: --tamper takes NODE:ROUND (node 0..%d, round from 1), not "
                   "\"%s\"\n",
                   o.nodes - 1, o.tamper.c_str());
      return vigil::cli::kExitUsage;
    }
  }
  const std::string swtpm = o.swtpm.empty() ? vigil::fleetsim::FindProgram("swtpm") : o.swtpm;
  if (swtpm.empty()) {
    std::fprintf(stderr, "vigil-fleet-sim: swtpm not found in PATH (Debian: apt install swtpm)\n");
    return kExitFail;
  }

  // SIGINT/SIGTERM/SIGHUP go to one thread that asks every node to stop;
  // the threads started below inherit the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  StopFlag stop;
  std::atomic<bool> finished{false};
  std::atomic<int> caught{0};
  std::thread signal_thread([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!finished.load()) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig > 0) {
        caught.store(sig);
        stop.Set();
      }
    }
  });

  std::string top = o.work_dir + "/vigil-fleet-sim-XXXXXX";
  if (::mkdtemp(top.data()) == nullptr) {
    std::fprintf(stderr, "vigil-fleet-sim: cannot make a directory under %s: %s\n",
                 o.work_dir.c_str(), std::strerror(errno));
    finished.store(true);
    signal_thread.join();
    return kExitFail;
  }
  int rc = kExitOk;
  std::vector<SwtpmProcess> tpms;
  tpms.reserve(static_cast<size_t>(o.nodes));
  // Started from this thread: their PR_SET_PDEATHSIG follows it.
  for (int i = 0; i < o.nodes && !stop.Get(); ++i) {
    const std::string dir = top + "/n" + std::to_string(i);
    std::filesystem::create_directory(dir);
    auto p = SwtpmProcess::Spawn(swtpm, dir);
    if (!p.ok()) {
      std::fprintf(stderr, "vigil-fleet-sim: node %d: %s\n", i, p.status().ToString().c_str());
      rc = kExitFail;
      break;
    }
    tpms.push_back(std::move(p).value());
  }
  for (size_t i = 0; i < tpms.size() && rc == kExitOk; ++i) {
    if (vigil::Status st = tpms[i].WaitReady(10000); !st.ok()) {
      std::fprintf(stderr, "vigil-fleet-sim: node %zu: %s\n", i, st.ToString().c_str());
      rc = kExitFail;
    }
  }

  std::vector<NodeStats> stats(static_cast<size_t>(o.nodes));
  std::mutex ready_mu;
  std::condition_variable ready_cv;
  int ready = 0;         // GUARDED_BY(ready_mu)
  bool go = false;       // GUARDED_BY(ready_mu)
  Clock::time_point t0;  // set before go
  Clock::time_point enrol_start = Clock::now();
  std::vector<std::thread> threads;
  if (rc == kExitOk && !stop.Get()) {
    for (int i = 0; i < o.nodes; ++i) {
      threads.emplace_back([&, i] {
        NodeStats& s = stats[static_cast<size_t>(i)];
        std::unique_ptr<SimNode> node;
        auto opened = SimNode::Open(i, tpms[static_cast<size_t>(i)].tcti(), node_options);
        if (opened.ok()) {
          node = std::move(opened).value();
          if (vigil::Status st = node->Enrol(); !st.ok()) {
            s.last_error = "enrolment: " + st.ToString();
          } else {
            s.enrolled = true;
            s.node = node->node_id();
          }
        } else {
          s.last_error = "opening the TPM: " + opened.status().ToString();
        }
        if (!s.enrolled) s.errors++;
        {
          std::unique_lock lock(ready_mu);
          ready++;
          ready_cv.notify_all();
          ready_cv.wait(lock, [&] { return go || stop.Get(); });
        }
        if (!s.enrolled || stop.Get()) return;
        // Spread over the interval so the fleet does not push in lockstep.
        const auto interval = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(o.interval_s));
        Clock::time_point next = t0 + interval * i / o.nodes;
        const Clock::time_point end = t0 + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(o.duration_s));
        for (int round = 1;; ++round) {
          if (o.rounds > 0 ? round > o.rounds : next >= end) break;
          if (stop.SleepUntil(next)) break;
          const bool tamper = i == tamper_node && round == tamper_round;
          auto r = node->Round(tamper);
          if (!r.ok()) {
            s.errors++;
            s.last_error = "round " + std::to_string(round) + ": " + r.status().ToString();
            if (stop.Get()) break;
          } else {
            s.pushed++;
            s.verify_ms.push_back(r->verify_ms);
            s.round_ms.push_back(r->round_ms);
            s.tpm_ms.push_back(r->tpm_ms);
            s.nonce_ms.push_back(r->nonce_ms);
            if (r->trusted) {
              s.trusted++;
              if (tamper) s.tampered_trusted++;
            } else {
              s.untrusted++;
              if (tamper) s.tampered_refused++;
              if (s.untrusted_reasons.size() < 5) {
                s.untrusted_reasons.push_back("round " + std::to_string(round) + ": " + r->reason);
              }
            }
          }
          next += interval;
          const auto now = Clock::now();
          if (next < now) {
            // The round took longer than the interval: no catch-up burst.
            // (--interval 0: the next round right away.)
            if (o.interval_s > 0) s.late++;
            next = now;
          }
        }
      });
    }
  }
  double enrol_s = 0;
  double cpu_swtpm0 = 0, cpu_self0 = 0, cpu_verifier0 = 0;
  {
    std::unique_lock lock(ready_mu);
    ready_cv.wait(lock, [&] { return ready == static_cast<int>(threads.size()) || stop.Get(); });
    enrol_s = std::chrono::duration<double>(Clock::now() - enrol_start).count();
    for (const SwtpmProcess& p : tpms) cpu_swtpm0 += p.CpuSeconds();
    cpu_self0 = SelfCpuSeconds();
    if (o.verifier_pid > 0) cpu_verifier0 = vigil::fleetsim::ProcessCpuSeconds(o.verifier_pid);
    t0 = Clock::now();
    go = true;
    ready_cv.notify_all();
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu_swtpm = 0;
  for (const SwtpmProcess& p : tpms) cpu_swtpm += p.CpuSeconds();
  cpu_swtpm -= cpu_swtpm0;
  const double cpu_self = SelfCpuSeconds() - cpu_self0;
  const double cpu_verifier =
      o.verifier_pid > 0 ? vigil::fleetsim::ProcessCpuSeconds(o.verifier_pid) - cpu_verifier0 : 0;
  for (SwtpmProcess& p : tpms) p.Stop();
  std::error_code ec;
  std::filesystem::remove_all(top, ec);
  finished.store(true);
  signal_thread.join();

  // Totals.
  NodeStats total;
  uint64_t enrolled = 0, tampered_refused = 0, tampered_trusted = 0;
  json per_node = json::array();
  for (size_t i = 0; i < stats.size(); ++i) {
    const NodeStats& s = stats[i];
    total.pushed += s.pushed;
    total.trusted += s.trusted;
    total.untrusted += s.untrusted;
    total.errors += s.errors;
    total.late += s.late;
    enrolled += s.enrolled ? 1 : 0;
    tampered_refused += s.tampered_refused;
    tampered_trusted += s.tampered_trusted;
    total.verify_ms.insert(total.verify_ms.end(), s.verify_ms.begin(), s.verify_ms.end());
    total.round_ms.insert(total.round_ms.end(), s.round_ms.begin(), s.round_ms.end());
    total.tpm_ms.insert(total.tpm_ms.end(), s.tpm_ms.begin(), s.tpm_ms.end());
    total.nonce_ms.insert(total.nonce_ms.end(), s.nonce_ms.begin(), s.nonce_ms.end());
    per_node.push_back({{"index", i},
                        {"node", s.node},
                        {"enrolled", s.enrolled},
                        {"pushed", s.pushed},
                        {"trusted", s.trusted},
                        {"untrusted", s.untrusted},
                        {"tampered_refused", s.tampered_refused},
                        {"errors", s.errors},
                        {"late_rounds", s.late},
                        {"verify_ms_p50", Percentile(s.verify_ms, 50)},
                        {"verify_ms_p99", Percentile(s.verify_ms, 99)},
                        {"untrusted_reasons", s.untrusted_reasons},
                        {"last_error", s.last_error}});
  }
  const bool interrupted = caught.load() != 0;
  const bool as_expected =
      rc == kExitOk && total.errors == 0 && enrolled == stats.size() && tampered_trusted == 0 &&
      total.untrusted == tampered_refused &&
      (tamper_node < 0 || o.rounds < tamper_round || interrupted || tampered_refused == 1);
  if (!as_expected && rc == kExitOk) rc = kExitFail;
  json report = {{"nodes", o.nodes},
                 {"enrolled", enrolled},
                 {"interval_s", o.interval_s},
                 {"enrol_s", enrol_s},
                 {"elapsed_s", elapsed},
                 {"evidence_pushed", total.pushed},
                 {"trusted", total.trusted},
                 {"untrusted", total.untrusted},
                 {"tampered_refused", tampered_refused},
                 {"errors", total.errors},
                 {"late_rounds", total.late},
                 {"verified_per_s", elapsed > 0 ? static_cast<double>(total.pushed) / elapsed : 0},
                 {"trusted_per_s", elapsed > 0 ? static_cast<double>(total.trusted) / elapsed : 0},
                 {"latency_ms",
                  {{"verify", Summary(total.verify_ms)},
                   {"round", Summary(total.round_ms)},
                   {"tpm", Summary(total.tpm_ms)},
                   {"nonce", Summary(total.nonce_ms)}}},
                 {"cpu_s",
                  {{"swtpm", cpu_swtpm},
                   {"simulator", cpu_self},
                   {"verifier", o.verifier_pid > 0 ? json(cpu_verifier) : json(nullptr)}}},
                 {"interrupted", interrupted},
                 {"as_expected", as_expected},
                 {"per_node", per_node}};
  if (o.json_out) {
    std::printf("%s\n", report.dump(2).c_str());
  } else {
    std::printf("%-5s %-20s %7s %7s %9s %6s %6s %9s %9s\n", "node", "id", "pushed", "trusted",
                "untrusted", "errors", "late", "p50 ms", "p99 ms");
    for (size_t i = 0; i < stats.size(); ++i) {
      const NodeStats& s = stats[i];
      std::printf("%-5zu %-20s %7lu %7lu %9lu %6lu %6lu %9.2f %9.2f\n", i,
                  s.node.substr(0, 20).c_str(), s.pushed, s.trusted, s.untrusted, s.errors, s.late,
                  Percentile(s.verify_ms, 50), Percentile(s.verify_ms, 99));
      for (const std::string& why : s.untrusted_reasons)
        std::printf("      untrusted %s\n", why.c_str());
      if (!s.last_error.empty()) std::printf("      error: %s\n", s.last_error.c_str());
    }
    std::printf(
        "total: %d nodes (%lu enrolled in %.1f s), %.1f s: %lu evidence pushed (%.1f/s), %lu "
        "trusted, %lu untrusted (%lu tampered on purpose), %lu errors, %lu late rounds\n",
        o.nodes, enrolled, enrol_s, elapsed, total.pushed,
        elapsed > 0 ? static_cast<double>(total.pushed) / elapsed : 0.0, total.trusted,
        total.untrusted, tampered_refused, total.errors, total.late);
    std::printf(
        "latency ms (p50/p99): verify %.2f/%.2f, round %.2f/%.2f, node TPM %.2f/%.2f, nonce "
        "%.2f/%.2f\n",
        Percentile(total.verify_ms, 50), Percentile(total.verify_ms, 99),
        Percentile(total.round_ms, 50), Percentile(total.round_ms, 99),
        Percentile(total.tpm_ms, 50), Percentile(total.tpm_ms, 99), Percentile(total.nonce_ms, 50),
        Percentile(total.nonce_ms, 99));
    std::printf("cpu s: swtpm %.2f, simulator %.2f", cpu_swtpm, cpu_self);
    if (o.verifier_pid > 0) std::printf(", verifier %.2f", cpu_verifier);
    std::printf("\n%s\n", as_expected ? "every verdict as expected"
                                      : "NOT as expected: see errors and untrusted rounds above");
  }
  std::fflush(stdout);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Runs N simulated vigil nodes, each with its own swtpm (real EK, AK, quotes and "
      "checkpoint signatures) and the module's commit/checkpoint rules, enrolled with one "
      "vigil-verifier serve (--pin-ek, under the policy --write-policy writes) and pushing "
      "evidence at a fixed interval. Reports evidence pushed, verdicts and latencies per node "
      "and in total. Exit 0: every verdict as expected; 1: an error or an unexpected verdict; "
      "2: usage."};
  app.set_version_flag("--version", vigil::version::VersionText("vigil-fleet-sim"));
  Options o;
  app.add_option("--write-policy", o.write_policy,
                 "Write the verifier policy the simulated nodes satisfy to FILE and exit");
  app.add_option("--verifier", o.verifier, "vigil-verifier serve's HOST:PORT")
      ->capture_default_str();
  app.add_option("--nodes", o.nodes, "Simulated nodes (one swtpm each)")
      ->check(CLI::Range(1, 2000))
      ->capture_default_str();
  app.add_option("--interval", o.interval_s,
                 "Seconds between a node's rounds (0: as fast as it can)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds to run after enrolment")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--rounds", o.rounds, "Rounds per node instead of --duration")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--events", o.events, "Events committed per node per round")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--tamper", o.tamper,
                 "NODE:ROUND: that node forges an event after signing in that round (its "
                 "verdict must be untrusted)");
  app.add_option("--verifier-pid", o.verifier_pid,
                 "The verifier's pid: its CPU time over the run is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--work-dir", o.work_dir, "Where the swtpm state directories go (removed after)")
      ->capture_default_str();
  app.add_option("--swtpm", o.swtpm, "The swtpm binary (default: swtpm in PATH)");
  app.add_flag("--json", o.json_out, "Print the report as JSON");
  if (auto code = vigil::cli::Parse(app, argc, argv)) return *code;
  if (!o.write_policy.empty()) {
    std::ofstream out(o.write_policy, std::ios::trunc);
    out << vigil::fleetsim::PolicyJson();
    out.close();
    if (!out) {
      std::fprintf(stderr, "vigil-fleet-sim: cannot write %s\n", o.write_policy.c_str());
      return kExitFail;
    }
    return kExitOk;
  }
  return Run(o);
}
