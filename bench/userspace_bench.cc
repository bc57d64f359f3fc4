// User-space hot paths: decoding a ring buffer record, folding an event into
// the chain (one SHA-256 over 32 + record bytes), JSON rendering, log replay.
// Run: build/bench/vigil-bench-userspace [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "vigil.h"
#include "vigil/chain.h"
#include "vigil/format.h"
#include "vigil/records.h"
#include "vigil/replay.h"

namespace {

vigil_ev_exit MakeExit(uint64_t seq) {
  vigil_ev_exit ev;
  std::memset(&ev, 0, sizeof(ev));
  ev.hdr.type = VIGIL_EV_EXIT;
  ev.hdr.version = 1;
  ev.hdr.size = sizeof(ev);
  ev.hdr.seq = seq;
  ev.hdr.flags = VIGIL_REC_F_COMMITTED;
  ev.pid = 1234;
  std::strcpy(ev.comm, "worker");
  return ev;
}

std::span<const uint8_t> Bytes(const auto& rec) {
  return {reinterpret_cast<const uint8_t*>(&rec), sizeof(rec)};
}

void BM_DecodeExit(benchmark::State& state) {
  const vigil_ev_exit ev = MakeExit(1);
  for (auto _ : state) {
    auto rec = vigil::records::Record::Decode(Bytes(ev));
    benchmark::DoNotOptimize(rec);
  }
}
BENCHMARK(BM_DecodeExit);

void BM_ChainAppend(benchmark::State& state) {
  vigil::chain::InstanceId id{};
  auto verifier = vigil::chain::ChainVerifier::Start(id);
  uint64_t seq = 0;
  std::vector<uint8_t> buf(sizeof(vigil_ev_exit));
  for (auto _ : state) {
    vigil_ev_exit ev = MakeExit(++seq);
    auto rec = vigil::records::Record::Decode(Bytes(ev));
    if (!verifier->Append(*rec).ok()) state.SkipWithError("append failed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChainAppend);

void BM_ExitToJson(benchmark::State& state) {
  auto rec = vigil::records::Record::Decode(Bytes(MakeExit(1)));
  for (auto _ : state) {
    std::string line = vigil::format::RecordToJson(*rec).dump();
    benchmark::DoNotOptimize(line);
  }
}
BENCHMARK(BM_ExitToJson);

// The same line as vigild writes it now (format::AppendRecordJson).
void BM_ExitToJsonDirect(benchmark::State& state) {
  auto rec = vigil::records::Record::Decode(Bytes(MakeExit(1)));
  std::string line;
  for (auto _ : state) {
    line.clear();
    vigil::format::AppendRecordJson(*rec, line);
    benchmark::DoNotOptimize(line);
  }
}
BENCHMARK(BM_ExitToJsonDirect);

// A log of one BASE (4 banks) and N checkpoints, replayed per bank.
void BM_ReplayCheckpoints(benchmark::State& state) {
  std::vector<vigil::records::Record> log;
  vigil_log_base base;
  std::memset(&base, 0, sizeof(base));
  base.hdr = {VIGIL_LOG_BASE, 1, sizeof(base), 1, 0, 0, 0};
  base.first_kept_seq = 1;
  base.nr_banks = 4;
  const uint16_t algs[] = {VIGIL_ALG_SHA1, VIGIL_ALG_SHA256, VIGIL_ALG_SHA384, VIGIL_ALG_SHA512};
  for (int i = 0; i < 4; ++i) base.bank[i].alg = algs[i];
  log.push_back(*vigil::records::Record::FromStruct(base));
  for (int64_t i = 0; i < state.range(0); ++i) {
    vigil_log_checkpoint cp;
    std::memset(&cp, 0, sizeof(cp));
    cp.hdr = {VIGIL_LOG_CHECKPOINT, VIGIL_CHECKPOINT_VERSION, sizeof(cp), static_cast<uint64_t>(i + 2), 0, 0, 0};
    cp.anchor = VIGIL_ANCHOR_PCR;
    log.push_back(*vigil::records::Record::FromStruct(cp));
  }
  for (auto _ : state) {
    auto r = vigil::replay::ReplayLog(log);
    if (!r.ok()) state.SkipWithError("replay failed");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ReplayCheckpoints)->Arg(100)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();
