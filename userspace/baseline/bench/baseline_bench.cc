// baseline_bench: observation throughput on one core, and the memory of a
// store holding 10,000 agents x all features (issue 5 item 8: <= 64 MB).
//
// Before the Google Benchmark runs, main() builds the 10k-agent store and
// prints VmRSS before/after (from /proc/self/status), the serialized size,
// and the cost of Serialize/Parse. Agents are lognormal (sigma 0.2) with a
// per-agent scale, 300 exits each (100 learning, 200 watching), IPC on.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "../test/synthetic.h"
#include "vigil/baseline/store.h"

namespace vigil::baseline {
namespace {

using testing::AgentProfile;
using testing::AgentSimulator;

// kB of a /proc/self/status line ("VmRSS", "VmHWM"), -1 if absent.
long StatusKb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

AgentProfile ProfileFor(int i) {
  AgentProfile p;
  p.name = "agent-" + std::to_string(i);
  p.role = "role-" + std::to_string(i % 50);
  const double scale = 1.0 + (i % 17) * 0.25;
  p.cpu_median_ns *= scale;
  p.lifetime_median_ns *= scale;
  p.rss_median_bytes *= scale;
  return p;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void MemoryReport() {
  constexpr int kAgents = 10000;
  constexpr int kExits = 300;
  const long rss_before = StatusKb("VmRSS");
  std::string state;
  {
    BaselineStore store = BaselineStore::Create({}).value();
    uint64_t t = 0;
    uint64_t observations = 0;
    auto start = std::chrono::steady_clock::now();
    {
      std::vector<AgentSimulator> sims;
      sims.reserve(kAgents);
      for (int i = 0; i < kAgents; ++i) sims.emplace_back(ProfileFor(i), 1000 + i);
      for (int round = 0; round < kExits; ++round) {
        for (AgentSimulator& sim : sims) {
          (void)store.ObserveExit(sim.Next(t));
          t += 1000;
          observations += kFeatureCount;
        }
      }
    }
    const double fill_s = Seconds(start);
    malloc_trim(0);  // the simulators are gone; count only what the store holds
    const long rss_after = StatusKb("VmRSS");
    std::printf("baseline memory: %d agents x %zu features, %d exits each\n", kAgents,
                kFeatureCount, kExits);
    std::printf("  fill: %.2f s, %.2f M observations/s (10k agents, cache-cold)\n", fill_s,
                static_cast<double>(observations) / fill_s / 1e6);
    std::printf("  VmRSS before %ld kB, after %ld kB: store = %.1f MB (target <= 64 MB)\n",
                rss_before, rss_after, (rss_after - rss_before) / 1024.0);
    start = std::chrono::steady_clock::now();
    state = store.Serialize();
    std::printf("  Serialize: %.2f s, %.1f MB of JSON\n", Seconds(start),
                static_cast<double>(state.size()) / 1e6);
  }
  // Restart path: parse the state into a new store. Return freed memory to
  // the kernel and reset the peak (clear_refs "5") so VmHWM is the parse's.
  malloc_trim(0);
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  const long rss_base = StatusKb("VmRSS");
  const auto start = std::chrono::steady_clock::now();
  StateResult<BaselineStore> back = BaselineStore::Parse(state, BaselineConfig{});
  const double parse_s = Seconds(start);
  std::printf(
      "  Parse: %.2f s (%s); with the %.1f MB text held: VmRSS %ld kB -> %ld kB,"
      " peak %ld kB (parse overhead above text + store: %.1f MB)\n",
      parse_s, back.ok() ? "ok" : back.status().ToString().c_str(),
      static_cast<double>(state.size()) / 1e6, rss_base, StatusKb("VmRSS"), StatusKb("VmHWM"),
      (StatusKb("VmHWM") - StatusKb("VmRSS")) / 1024.0);
  std::fflush(stdout);
}

// One agent, one feature, watching: the hot path.
void BM_ObserveOneFeature(benchmark::State& state) {
  BaselineStore store = BaselineStore::Create({}).value();
  AgentSimulator sim(AgentProfile{.name = "a"}, 1);
  std::vector<double> values(4096);
  for (double& v : values) v = sim.LogNormal(2e6);
  uint64_t t = 0;
  for (double v : values) (void)store.Observe("a", "r", Feature::kCpuPerExec, v, t++);
  size_t i = 0;
  for (auto _ : state) {
    auto a = store.Observe("a", "r", Feature::kCpuPerExec, values[i++ & 4095], t++);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ObserveOneFeature);

// Whole exit records over N agents (7 observations per record).
void BM_ObserveExit(benchmark::State& state) {
  const int agents = static_cast<int>(state.range(0));
  BaselineStore store = BaselineStore::Create({}).value();
  std::vector<AgentSimulator> sims;
  for (int i = 0; i < agents; ++i) sims.emplace_back(ProfileFor(i), 7 + i);
  std::vector<ExitSample> samples;
  uint64_t t = 0;
  for (int r = 0; r < 8; ++r) {
    for (AgentSimulator& s : sims) samples.push_back(s.Next(t++));
  }
  for (int r = 0; r < 150; ++r) {  // past learning
    for (AgentSimulator& s : sims) (void)store.ObserveExit(s.Next(t++));
  }
  size_t i = 0;
  for (auto _ : state) {
    ExitSample s = samples[i++ % samples.size()];
    s.timestamp_ns = t++;
    auto a = store.ObserveExit(s);
    benchmark::DoNotOptimize(a);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kFeatureCount));
}
BENCHMARK(BM_ObserveExit)->Arg(1)->Arg(100)->Arg(10000);

void BM_EvaluatePools(benchmark::State& state) {
  BaselineStore store = BaselineStore::Create({}).value();
  uint64_t t = 0;
  for (int i = 0; i < 1000; ++i) {
    AgentSimulator sim(ProfileFor(i), 3 + i);
    for (int r = 0; r < 110; ++r) (void)store.ObserveExit(sim.Next(t++));
  }
  for (auto _ : state) {
    auto a = store.EvaluatePools(t);
    benchmark::DoNotOptimize(a);
  }
  state.SetLabel("1000 agents, 50 roles");
}
BENCHMARK(BM_EvaluatePools)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vigil::baseline

int main(int argc, char** argv) {
  vigil::baseline::MemoryReport();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
