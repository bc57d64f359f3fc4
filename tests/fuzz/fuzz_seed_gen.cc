// SPDX-License-Identifier: GPL-2.0
// Writes the seed corpora of the fuzz targets: valid inputs, so the fuzzers
// start deep inside the parsers instead of at the header checks.
//   fuzz_seed_gen OUT_DIR  ->  OUT_DIR/<target>/ for record_decoder_fuzz,
//   log_parser_fuzz, state_loader_fuzz, verifier_fuzz, vigild_state_fuzz,
//   ima_log_fuzz, evidence_fuzz and enrolment_request_fuzz
// Every seed is checked with the library before it is written (a log that
// does not replay or verify would be a poor seed), so a failure here means
// the generator and the parsers disagree: the run stops with an error.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <tss2/tss2_mu.h>

#include "baseline_fuzz_config.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "state.h"
#include "vigil/attest/evidence.h"
#include "verifier_program.h"
#include "vigil.h"
#include "vigil/attest/baseline_report.h"
#include "vigil/attest/enrolment.h"
#include "vigil/baseline/store.h"
#include "vigil/chain.h"
#include "vigil/digest.h"
#include "vigil/ima.h"
#include "vigil/records.h"
#include "vigil/replay.h"
#include "vigil/verify.h"

namespace {

namespace fs = std::filesystem;
using vigil::records::Record;
using Bytes = std::vector<uint8_t>;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_seed_gen: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
void Require(const vigil::Result<T>& result, const std::string& what) {
  if (!result.ok()) Fail(what + ": " + result.status().ToString());
}

void WriteSeed(const fs::path& dir, const std::string& name, std::span<const uint8_t> bytes) {
  std::ofstream out(dir / ("seed-" + name), std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) Fail("cannot write " + (dir / name).string());
}

void WriteSeed(const fs::path& dir, const std::string& name, std::string_view text) {
  WriteSeed(dir, name,
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

template <typename T>
std::span<const uint8_t> BytesOf(const T& rec) {
  return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&rec), sizeof(T));
}

template <typename T>
T Blank(uint16_t type, uint64_t seq) {
  T rec;
  std::memset(&rec, 0, sizeof(rec));
  rec.hdr.type = type;
  rec.hdr.version = type == VIGIL_LOG_CHECKPOINT ? VIGIL_CHECKPOINT_VERSION : 1;
  rec.hdr.size = sizeof(T);
  rec.hdr.seq = seq;
  rec.hdr.ts_ns = 1'000'000 * (seq + 1);
  return rec;
}

// Events carry chain seqs and are committed, as the module delivers them.
template <typename T>
T Event(uint16_t type, uint64_t seq) {
  T ev = Blank<T>(type, seq);
  ev.hdr.flags = VIGIL_REC_F_COMMITTED;
  ev.hdr.agent_id = 1;
  return ev;
}

template <size_t N>
void SetString(char (&field)[N], std::string_view value) {
  std::memcpy(field, value.data(), std::min(value.size(), N - 1));
}

vigil_ev_exec MakeExec(uint64_t seq, uint32_t pid, std::string_view comm, std::string_view path) {
  auto ev = Event<vigil_ev_exec>(VIGIL_EV_EXEC, seq);
  ev.pid = ev.tid = ev.old_pid = pid;
  ev.ppid = 1;
  ev.uid = 1000;
  SetString(ev.comm, comm);
  SetString(ev.filename, path);
  return ev;
}

vigil_ev_exit MakeExit(uint64_t seq, uint32_t pid) {
  auto ev = Event<vigil_ev_exit>(VIGIL_EV_EXIT, seq);
  ev.pid = ev.tid = pid;
  ev.ppid = 1;
  ev.exit_code = 3;
  ev.lifetime_ns = 250'000'000;
  ev.utime_ns = 12'000'000;
  ev.stime_ns = 3'000'000;
  ev.maxrss_kb = 4096;
  ev.min_flt = 321;
  ev.nvcsw = 17;
  ev.nivcsw = 2;
  ev.read_bytes = 4096;
  ev.write_bytes = 512;
  SetString(ev.comm, "worker");
  return ev;
}

vigil_ev_user MakeUser(uint64_t seq, std::string_view payload) {
  auto ev = Event<vigil_ev_user>(VIGIL_EV_USER, seq);
  ev.pid = 42;
  ev.uid = 1000;
  ev.kind = 7;
  ev.len = static_cast<uint32_t>(payload.size());
  std::memcpy(ev.payload, payload.data(), payload.size());
  return ev;
}

vigil_ev_fork MakeFork(uint64_t seq, uint32_t parent, uint32_t child) {
  auto ev = Event<vigil_ev_fork>(VIGIL_EV_FORK, seq);
  ev.pid = ev.tid = child;
  ev.ppid = parent;
  ev.uid = 1000;
  SetString(ev.comm, "agent");
  return ev;
}

vigil_ev_agent MakeAgent(uint64_t seq) {
  auto ev = Event<vigil_ev_agent>(VIGIL_EV_AGENT, seq);
  ev.action = VIGIL_AGENT_REGISTER;
  ev.how = VIGIL_AGENT_BY_PID;
  ev.pid = 100;
  ev.uid = 1000;
  SetString(ev.name, "demo-agent");
  return ev;
}

vigil_ev_sample MakeSample(uint64_t seq) {
  auto ev = Event<vigil_ev_sample>(VIGIL_EV_SAMPLE, seq);
  ev.pid = 100;
  ev.cpu = 1;
  ev.flags = VIGIL_SAMPLE_F_HW | VIGIL_SAMPLE_F_SYSCALLS;
  ev.interval_ns = 100'000'000;
  ev.oncpu_ns = 40'000'000;
  ev.nvcsw = 9;
  ev.min_flt = 12;
  ev.cycles = 90'000'000;
  ev.instructions = 120'000'000;
  ev.syscalls = 300;
  return ev;
}

constexpr uint32_t kConfigPcr = 16;

vigil_log_base MakeBase(uint64_t log_seq, uint64_t first_kept_seq) {
  auto b = Blank<vigil_log_base>(VIGIL_LOG_BASE, log_seq);
  b.first_kept_seq = first_kept_seq;
  b.nr_banks = 2;
  b.bank[0].alg = VIGIL_ALG_SHA1;
  b.bank[1].alg = VIGIL_ALG_SHA256;  // PCRs start at zero after a reset
  return b;
}

vigil_log_measure MakeMeasure(uint64_t log_seq, uint32_t kind, std::string_view name) {
  auto m = Blank<vigil_log_measure>(VIGIL_LOG_MEASURE, log_seq);
  m.kind = kind;
  m.pcr = kConfigPcr;
  SetString(m.name, name);
  for (size_t i = 0; i < sizeof(m.digest); ++i) m.digest[i] = static_cast<uint8_t>(i * 7 + log_seq);
  return m;
}

vigil_log_key MakeKey(uint64_t log_seq) {
  auto k = Blank<vigil_log_key>(VIGIL_LOG_KEY, log_seq);
  k.pcr = kConfigPcr;
  k.curve = VIGIL_ECC_NIST_P256;
  k.sig_alg = VIGIL_ALG_ECDSA;
  for (size_t i = 0; i < sizeof(k.x); ++i) {
    k.x[i] = static_cast<uint8_t>(i + 1);
    k.y[i] = static_cast<uint8_t>(0xff - i);
  }
  k.name[0] = 0x00;
  k.name[1] = 0x0b;  // nameAlg sha256 (big endian)
  return k;
}

vigil_log_event MakeLogEvent(uint64_t log_seq, const vigil_ev_user& ev) {
  auto e = Blank<vigil_log_event>(VIGIL_LOG_EVENT, log_seq);
  e.ev = ev;
  return e;
}

vigil_log_signature MakeSignature(uint64_t log_seq, uint64_t checkpoint_seq,
                                  const vigil_log_checkpoint& cp) {
  auto s = Blank<vigil_log_signature>(VIGIL_LOG_SIGNATURE, log_seq);
  s.checkpoint_seq = checkpoint_seq;
  s.status = VIGIL_SIG_OK;
  auto digest = vigil::crypto::Sha256({BytesOf(cp)});
  Require(digest, "checkpoint digest");
  std::memcpy(s.digest, digest->data(), sizeof(s.digest));
  for (size_t i = 0; i < sizeof(s.r); ++i) {
    s.r[i] = static_cast<uint8_t>(0x10 + i);
    s.s[i] = static_cast<uint8_t>(0x80 + i);
  }
  return s;
}

template <typename T>
void Append(Bytes& stream, const T& rec) {
  const std::span<const uint8_t> bytes = BytesOf(rec);
  stream.insert(stream.end(), bytes.begin(), bytes.end());
}

std::vector<Record> Decode(const Bytes& stream, const std::string& what) {
  auto records = vigil::records::DecodeStream(stream);
  Require(records, what);
  return std::move(records).value();
}

// One module load: events 1..8, a log with measurements, the key, two user
// events copied as LOG_EVENT, and two signed checkpoints covering 1..5 and
// 6..8 whose chain heads and links are the real ones.
struct Session {
  vigil::chain::InstanceId instance_id{};
  Bytes ring_events;  // what the ring buffer delivers (all but user events)
  Bytes log;          // the whole log, from seq 1
  Bytes log_tail;     // log seqs 6.. followed by the BASE of a trim at 6
  std::vector<Bytes> single_records;
};

Session BuildSession() {
  Session s;
  for (size_t i = 0; i < s.instance_id.size(); ++i) {
    s.instance_id[i] = static_cast<uint8_t>(0xa0 + i);
  }
  const auto exec = MakeExec(1, 100, "agent", "/usr/bin/agent");
  const auto agent = MakeAgent(2);
  const auto fork = MakeFork(3, 100, 101);
  const auto user1 = MakeUser(4, "{\"hook\":\"open\",\"path\":\"/etc/passwd\"}");
  const auto sample = MakeSample(5);
  const auto exit = MakeExit(6, 101);
  const auto user2 = MakeUser(7, "payload \xff\xfe not utf-8");
  const auto exec2 = MakeExec(8, 100, "sh", "/bin/sh");

  auto chain = vigil::chain::ChainVerifier::Start(s.instance_id);
  Require(chain, "chain start");
  vigil::chain::Sha256Digest head_at_5{};
  const auto fold = [&](const auto& ev) {
    auto rec = Record::FromStruct(ev);
    Require(rec, "event");
    const vigil::Status st = chain->Append(*rec);
    if (!st.ok()) Fail("chain append: " + st.ToString());
    if (chain->last_seq() == 5) head_at_5 = chain->head();
  };
  fold(exec);
  fold(agent);
  fold(fork);
  fold(user1);
  fold(sample);
  fold(exit);
  fold(user2);
  fold(exec2);

  auto cp1 = Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, 6);
  cp1.first_seq = 1;
  cp1.last_seq = 5;
  cp1.reason = VIGIL_CP_EVENTS;
  cp1.anchor = VIGIL_ANCHOR_PCR;
  std::memcpy(cp1.chain_head, head_at_5.data(), sizeof(cp1.chain_head));
  std::memcpy(cp1.instance_id, s.instance_id.data(), sizeof(cp1.instance_id));

  auto cp2 = Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, 9);
  cp2.first_seq = 6;
  cp2.last_seq = 8;
  cp2.drops_total = 1;
  cp2.reason = VIGIL_CP_TIMER;
  cp2.anchor = VIGIL_ANCHOR_PCR;
  std::memcpy(cp2.chain_head, chain->head().data(), sizeof(cp2.chain_head));
  auto cp1_digest = vigil::crypto::Sha256({BytesOf(cp1)});
  Require(cp1_digest, "checkpoint digest");
  std::memcpy(cp2.prev_digest, cp1_digest->data(), sizeof(cp2.prev_digest));
  std::memcpy(cp2.instance_id, s.instance_id.data(), sizeof(cp2.instance_id));

  const auto base = MakeBase(1, 1);
  const auto m_module = MakeMeasure(2, VIGIL_MEASURE_MODULE, "vigil.ko");
  const auto m_params = MakeMeasure(3, VIGIL_MEASURE_PARAMS, "params");
  const auto key = MakeKey(4);
  const auto log_user1 = MakeLogEvent(5, user1);
  const auto sig1 = MakeSignature(7, 6, cp1);
  const auto log_user2 = MakeLogEvent(8, user2);
  const auto sig2 = MakeSignature(10, 9, cp2);

  Append(s.log, base);
  Append(s.log, m_module);
  Append(s.log, m_params);
  Append(s.log, key);
  Append(s.log, log_user1);
  Append(s.log, cp1);
  Append(s.log, sig1);
  Append(s.log, log_user2);
  Append(s.log, cp2);
  Append(s.log, sig2);

  Append(s.ring_events, exec);
  Append(s.ring_events, agent);
  Append(s.ring_events, fork);
  Append(s.ring_events, sample);
  Append(s.ring_events, exit);
  Append(s.ring_events, exec2);

  // A TRIM at log seq 6 writes its BASE last, after the kept records.
  Append(s.log_tail, cp1);
  Append(s.log_tail, sig1);
  Append(s.log_tail, log_user2);
  Append(s.log_tail, cp2);
  Append(s.log_tail, sig2);
  auto trim_base = MakeBase(11, 6);
  trim_base.records_trimmed = 5;
  trim_base.bytes_trimmed = 5 * 256;
  std::memset(trim_base.bank[0].config, 0x5a, 20);
  std::memset(trim_base.bank[1].config, 0x5a, 32);
  std::memset(trim_base.bank[0].events, 0x3c, 20);
  std::memset(trim_base.bank[1].events, 0x3c, 32);
  Append(s.log_tail, trim_base);

  const auto add_single = [&](const auto& rec) {
    const std::span<const uint8_t> bytes = BytesOf(rec);
    s.single_records.emplace_back(bytes.begin(), bytes.end());
  };
  add_single(exec);
  add_single(exit);
  add_single(user1);
  add_single(user2);
  add_single(fork);
  add_single(agent);
  add_single(sample);
  add_single(base);
  add_single(trim_base);
  add_single(m_module);
  add_single(key);
  add_single(cp1);
  add_single(cp2);
  add_single(sig1);
  add_single(log_user1);
  auto uncommitted = exec;  // a ring-buffer event emitted without the module
  uncommitted.hdr.seq = 0;
  uncommitted.hdr.flags = VIGIL_REC_F_NO_MODULE;
  add_single(uncommitted);
  return s;
}

void CheckSession(const Session& s) {
  const std::vector<Record> log = Decode(s.log, "log");
  Require(vigil::replay::ReplayLog(log), "replay of the log");
  Require(vigil::replay::ReplayLog(Decode(s.log_tail, "trimmed log")),
          "replay of the trimmed log");

  std::vector<Record> events = Decode(s.ring_events, "ring events");
  for (const Record& rec : log) {
    if (rec.type() != VIGIL_LOG_EVENT) continue;
    auto ev = vigil::records::EventFromLogCopy(rec);
    Require(ev, "LOG_EVENT copy");
    events.push_back(std::move(ev).value());
  }
  // The chain the two checkpoints claim (their signatures are made up: the
  // seeds exercise parsing, not the key).
  auto chain = vigil::chain::RecomputeChain(s.instance_id, events);
  Require(chain, "chain");
  if (chain->last_seq != 8)
    Fail("the session's chain does not reach seq 8");
  const Record *last_cp = nullptr;
  for (const Record &rec : log) {
    if (rec.type() == VIGIL_LOG_CHECKPOINT)
      last_cp = &rec;
  }
  if (last_cp == nullptr ||
      std::memcmp(last_cp->As<vigil_log_checkpoint>()->chain_head,
                  chain->head.data(), 32) != 0) {
    Fail("the last checkpoint does not carry the recomputed chain head");
  }
}

void WriteRecordSeeds(const fs::path& dir, const Session& s) {
  for (size_t i = 0; i < s.single_records.size(); ++i) {
    Require(Record::Decode(s.single_records[i]), "single record " + std::to_string(i));
    const std::string type(vigil::records::TypeName(s.single_records[i][0] |
                                                    (s.single_records[i][1] << 8)));
    WriteSeed(dir, std::to_string(i) + "-" + type, s.single_records[i]);
  }
}

void WriteLogSeeds(const fs::path& dir, const Session& s) {
  WriteSeed(dir, "log", s.log);
  WriteSeed(dir, "log-trimmed", s.log_tail);
  WriteSeed(dir, "ring-events", s.ring_events);
  Bytes full = s.log;
  full.insert(full.end(), s.ring_events.begin(), s.ring_events.end());
  Decode(full, "log and events");
  WriteSeed(dir, "log-and-events", full);
}

// Stores a vigild would save: watching and learning agents in two roles,
// executables, an agent without hardware counters, and an empty store.
void WriteStateSeeds(const fs::path& dir) {
  using vigil::baseline::BaselineStore;
  const vigil::baseline::BaselineConfig config = vigil::fuzz::BaselineFuzzConfig();
  const auto write_checked = [&](const std::string& name, const BaselineStore& store) {
    const std::string text = store.Serialize();
    auto parsed = BaselineStore::Parse(text, config);
    if (!parsed.ok()) Fail("state " + name + ": " + parsed.status().ToString());
    WriteSeed(dir, name, text);
  };

  auto empty = BaselineStore::Create(config);
  if (!empty.ok()) Fail("baseline config: " + empty.status().ToString());
  write_checked("state-empty", empty.value());

  auto store = BaselineStore::Create(config);
  if (!store.ok()) Fail("baseline config: " + store.status().ToString());
  uint64_t t = 1'700'000'000'000'000'000ull;
  const char* const agents[] = {"web-0", "web-1", "web-2", "batch/job~1"};
  for (int round = 0; round < 12; ++round) {
    for (int a = 0; a < 4; ++a) {
      if (a == 3 && round >= 2) continue;  // batch/job~1 is still learning
      vigil::baseline::ExitSample sample;
      sample.agent = agents[a];
      sample.role = a == 3 ? "batch" : "web";
      sample.timestamp_ns = t;
      sample.cpu_ns = 1'000'000 * static_cast<uint64_t>(3 + a) + 10'000 * round;
      sample.lifetime_ns = 40'000'000 + 1'000'000 * static_cast<uint64_t>(round % 5);
      sample.max_rss_bytes = (16u << 20) + 4096u * round;
      sample.faults = 200 + 3 * round;
      sample.ctx_switches = 40 + round % 7;
      sample.syscalls = 900 + 11 * round;
      if (a != 1) {  // web-1 runs without hardware counters
        sample.cycles = 80'000'000 + 100'000 * round;
        sample.instructions = 120'000'000 + 50'000 * round;
      }
      (void)store->ObserveExit(sample);
      (void)store->ObserveExecutable(agents[a], sample.role,
                                     round % 3 ? "/usr/bin/app" : "/bin/sh", t);
      t += 1'000'000;
    }
  }
  (void)store->Observe("zero", "batch", vigil::baseline::Feature::kFaultRate, 0.0, t);
  (void)store->Observe("x", "batch", vigil::baseline::Feature::kIpc, -1.0, t);  // rejected
  write_checked("state-agents", store.value());
}

// verifier_fuzz: programs over the streams of a software module (real chain
// heads, checkpoints signed with a P-256 key; the key is new every run).
// Each is run through the fuzz target's interpreter, which checks its
// invariants, and must give its number of verdicts: all verified for the
// honest ones, at least one other verdict for the tampered ones.
using vigil::fuzz::PcrResult;
using vigil::fuzz::ProgramOptions;
using vigil::fuzz::ProgramResult;
using vigil::fuzz::ProgramRunner;
using vigil::fuzz::ProgramWriter;
using vigil::sim::ModuleSim;
using vigil::verify::Verdict;

constexpr uint8_t kSimInstance = 0x5a;

// A module plus the log records a program has been given so far.
struct Stream {
  explicit Stream(bool tpm = true) : sim(kSimInstance, tpm) {}
  ModuleSim sim;
  size_t log_fed = 0;

  std::vector<Record> Commit(int n) {
    std::vector<Record> out;
    for (int i = 0; i < n; ++i) out.push_back(sim.Commit(100 + static_cast<uint32_t>(i)));
    return out;
  }
  void FeedLog(ProgramWriter& w) {
    for (; log_fed < sim.log().size(); ++log_fed) w.Log(sim.log()[log_fed]);
  }
  // An honest round: n events, a checkpoint, the log, a take.
  void Round(ProgramWriter& w, int n, uint32_t sig_status = VIGIL_SIG_OK) {
    w.Events(Commit(n));
    sim.Checkpoint(sig_status);
    FeedLog(w);
    w.Take();
  }
};

Record FlipByte(const Record& rec, size_t offset, uint8_t mask) {
  std::vector<uint8_t> bytes(rec.bytes().begin(), rec.bytes().end());
  bytes[offset] ^= mask;
  auto out = Record::Decode(bytes);
  Require(out, "flipped record");
  return std::move(out).value();
}

// The key a module logged in its KEY record.
vigil::crypto::EcPoint KeyOf(const ModuleSim& sim) {
  for (const Record& r : sim.log()) {
    if (auto k = r.As<vigil_log_key>()) {
      vigil::crypto::EcPoint p;
      std::memcpy(p.x, k->x, sizeof(p.x));
      std::memcpy(p.y, k->y, sizeof(p.y));
      return p;
    }
  }
  Fail("module without a KEY record");
}

enum class Expect { kAllVerified, kNotAllVerified };

ProgramResult RunProgram(const std::string& name, const ProgramWriter& w, size_t verdicts,
                         Expect expect) {
  ProgramRunner runner;
  ProgramResult r = runner.Run(w.bytes());
  std::string got;
  bool all_verified = true;
  for (const auto& v : r.verdicts) {
    if (!got.empty()) got += ", ";
    got += vigil::verify::VerdictName(v.verdict);
    // "signed" is the best a program without an anchor check can get.
    all_verified = all_verified && (v.verdict == Verdict::kVerified || v.verdict == Verdict::kSigned);
  }
  if (std::getenv("VIGIL_FUZZ_SEED_DEBUG")) {
    std::fprintf(stderr, "verifier seed %s: %zu bytes, %zu ops: [%s]\n", name.c_str(),
                 w.bytes().size(), r.ops, got.c_str());
    for (const auto& v : r.verdicts) std::fprintf(stderr, "    %s\n", v.reason.c_str());
    for (const auto& f : r.findings) {
      std::fprintf(stderr, "    finding %s: %s\n",
                   std::string(vigil::verify::FindingKindName(f.kind)).c_str(), f.reason.c_str());
    }
  }
  if (r.verdicts.size() != verdicts || all_verified != (expect == Expect::kAllVerified)) {
    Fail("verifier seed " + name + ": expected " + std::to_string(verdicts) + " verdicts, " +
         (expect == Expect::kAllVerified ? "all verified" : "not all verified") + "; got [" +
         got + "]");
  }
  return r;
}

void WriteProgram(const fs::path& dir, const std::string& name, const ProgramWriter& w,
                  size_t verdicts, Expect expect) {
  RunProgram(name, w, verdicts, expect);
  WriteSeed(dir, name, w.bytes());
}

// What a restart resumes from, for the restart seed and vigild's state files.
struct RestartPoint {
  vigil::verify::Anchor anchor;
  std::vector<Record> open_events;
  uint64_t log_saved_seq = 0;
};

void WriteVerifierSeeds(const fs::path& dir, RestartPoint& restart) {
  ProgramOptions with_pcr;
  with_pcr.pcr = PcrResult::kOk;
  {
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    for (int round = 0; round < 3; ++round) s.Round(w, 10);
    w.Finish().Take();
    WriteProgram(dir, "honest", w, 3, Expect::kAllVerified);
  }
  {
    // Adjacent events swapped, the last three after their checkpoint, ticks.
    ProgramOptions o;
    o.reorder_window = 8;
    o.wait_ticks = 50;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    for (int round = 0; round < 4; ++round) {
      std::vector<Record> ev = s.Commit(12);
      for (size_t i = 0; i + 1 < 9; i += 2) w.Event(ev[i + 1]).Event(ev[i]);
      w.Event(ev[8]).Tick(1);
      s.sim.Checkpoint();
      s.FeedLog(w);
      w.Tick(2).Event(ev[11]).Event(ev[9]).Event(ev[10]).Take();
    }
    WriteProgram(dir, "reordered", w, 4, Expect::kAllVerified);
  }
  {
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    s.Round(w, 5);
    std::vector<Record> ev = s.Commit(8);
    w.Events(std::vector<Record>(ev.begin(), ev.begin() + 4)).Repeat(0, false);
    w.Events(std::vector<Record>(ev.begin() + 4, ev.end()));
    s.sim.Checkpoint();
    s.FeedLog(w);
    s.Round(w, 5);
    WriteProgram(dir, "duplicate", w, 3, Expect::kNotAllVerified);
  }
  {
    // A modified event in place of the real one: the chain head differs.
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(8);
    ev[6] = FlipByte(ev[6], offsetof(vigil_ev_exec, pid), 0x01);
    w.Events(ev);
    s.sim.Checkpoint();
    s.FeedLog(w);
    s.Round(w, 4);
    WriteProgram(dir, "modified", w, 2, Expect::kNotAllVerified);
  }
  {
    // Two claims of one seq: the genuine one first (flip op), then a forged
    // one first; the checkpoint tells them apart.
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(8);
    w.Events(std::vector<Record>(ev.begin(), ev.begin() + 7));
    w.Flip(0, offsetof(vigil_ev_exec, uid), 0x04, false).Event(ev[7]);
    s.sim.Checkpoint();
    s.FeedLog(w);
    ev = s.Commit(6);
    w.Events(std::vector<Record>(ev.begin(), ev.begin() + 2));
    w.Event(FlipByte(ev[2], offsetof(vigil_ev_exec, filename) + 3, 0x20)).Event(ev[2]);
    w.Events(std::vector<Record>(ev.begin() + 3, ev.end()));
    s.sim.Checkpoint();
    s.FeedLog(w);
    s.Round(w, 3);
    WriteProgram(dir, "conflict", w, 3, Expect::kNotAllVerified);
  }
  {
    // An event never arrives before the wait ends (loss), then turns up late.
    ProgramOptions o;
    o.reorder_window = 4;
    o.wait_ticks = 10;
    o.pcr = PcrResult::kOk;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(9);
    w.Events(std::vector<Record>(ev.begin(), ev.begin() + 3));
    w.Events(std::vector<Record>(ev.begin() + 4, ev.end()));
    s.sim.Checkpoint();
    s.FeedLog(w);
    w.Tick(1).Tick(20).Take().Event(ev[3]);
    s.Round(w, 6);
    WriteProgram(dir, "missing", w, 2, Expect::kNotAllVerified);
  }
  {
    Stream s;
    ProgramWriter w(ProgramOptions{}, s.sim.StartAnchor());
    s.Round(w, 4, VIGIL_SIG_TPM_ERROR);
    s.Round(w, 4);
    s.Round(w, 4, VIGIL_SIG_TPM_ERROR);
    WriteProgram(dir, "unsigned", w, 3, Expect::kNotAllVerified);
  }
  {
    // Degraded mode: no TPM, no KEY record, nothing signed.
    Stream s(false);
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    s.Round(w, 4, VIGIL_SIG_NO_TPM);
    s.Round(w, 4, VIGIL_SIG_NO_TPM);
    WriteProgram(dir, "no-tpm", w, 2, Expect::kNotAllVerified);
  }
  {
    ProgramOptions o;
    o.pcr = PcrResult::kMismatch;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    s.Round(w, 3);
    w.SetPcr(PcrResult::kUnavailable);
    s.Round(w, 3);
    w.SetPcr(PcrResult::kOk);
    s.Round(w, 3);
    WriteProgram(dir, "pcr", w, 3, Expect::kNotAllVerified);
  }
  {
    // The module attests drops; then a busy-free honest round.
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    s.Round(w, 4);
    s.sim.AddDrops(2);
    s.Round(w, 4);
    s.Round(w, 4);
    WriteProgram(dir, "drops", w, 3, Expect::kNotAllVerified);
  }
  {
    // Window 1: an event two places late is declared missing, then late.
    ProgramOptions o;
    o.reorder_window = 1;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(6);
    w.Event(ev[0]).Event(ev[2]).Event(ev[3]).Event(ev[1]).Event(ev[4]).Event(ev[5]);
    s.sim.Checkpoint();
    s.FeedLog(w);
    s.Round(w, 5);
    WriteProgram(dir, "window-1", w, 2, Expect::kNotAllVerified);
  }
  {
    // The log breaks between a checkpoint and its signature.
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    s.Round(w, 4);
    w.Events(s.Commit(4));
    s.sim.Checkpoint();
    w.Log(s.sim.log()[s.log_fed]).LogError().Log(s.sim.log()[s.log_fed + 1]);
    s.log_fed += 2;
    w.Take().Finish();
    WriteProgram(dir, "log-error", w, 2, Expect::kNotAllVerified);
  }
  {
    // A checkpoint record replayed into the log.
    Stream s;
    ProgramWriter w(with_pcr, s.sim.StartAnchor());
    s.Round(w, 4);
    w.Events(s.Commit(4));
    s.sim.Checkpoint();
    s.FeedLog(w);
    w.Repeat(1, true).Take();
    s.Round(w, 4);
    WriteProgram(dir, "replayed-checkpoint", w, 4, Expect::kNotAllVerified);
  }
  {
    Stream s;
    ProgramWriter w(with_pcr, static_cast<uint8_t>(kSimInstance ^ 0xff));
    s.Round(w, 4);
    WriteProgram(dir, "other-instance", w, 1, Expect::kNotAllVerified);
  }
  {
    // Few records kept per interval: a forged claim can no longer be resolved.
    ProgramOptions o;
    o.max_interval_records = 3;
    o.pcr = PcrResult::kOk;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(8);
    w.Events(std::vector<Record>(ev.begin(), ev.begin() + 5));
    w.Event(FlipByte(ev[5], offsetof(vigil_ev_exec, pid), 0x02)).Event(ev[5]);
    w.Events(std::vector<Record>(ev.begin() + 6, ev.end()));
    s.sim.Checkpoint();
    s.FeedLog(w);
    s.Round(w, 6);
    w.Finish().Take();
    WriteProgram(dir, "interval-overflow", w, 2, Expect::kNotAllVerified);
  }
  {
    // A checkpoint logged before its events, whose wait ends first; events
    // that never get a checkpoint are decided at Finish.
    ProgramOptions o;
    o.wait_ticks = 3;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(5);
    s.sim.Checkpoint();
    s.FeedLog(w);
    w.Tick(1).Events(std::vector<Record>(ev.begin(), ev.begin() + 2)).Tick(5);
    w.Events(std::vector<Record>(ev.begin() + 2, ev.end())).Take();
    w.Events(s.Commit(3)).Finish();
    WriteProgram(dir, "expired", w, 1, Expect::kNotAllVerified);
  }
  {
    // A restart: the first run decides two checkpoints and leaves open
    // events; the second resumes from its anchor, is given the open events
    // again (one of them also redelivered by the ring buffer) and the whole
    // log from the start.
    Stream s;
    ProgramWriter first(with_pcr, s.sim.StartAnchor());
    s.Round(first, 6);
    s.Round(first, 6);
    std::vector<Record> open = s.Commit(5);
    first.Events(open).Take();
    const ProgramResult r = RunProgram("restart (first run)", first, 2, Expect::kAllVerified);
    if (r.open_events.size() != open.size()) Fail("restart seed: open events were not kept");
    restart.anchor = r.anchor;
    if (!restart.anchor.key) restart.anchor.key = KeyOf(s.sim);  // as vigild saves it
    restart.open_events = r.open_events;
    restart.log_saved_seq = s.sim.log().back().seq();

    ProgramWriter w(with_pcr, r.anchor);
    for (const Record& e : r.open_events) w.Recovered(e);
    w.Event(open.back()).Events(s.Commit(4));
    s.sim.Checkpoint();
    s.log_fed = 0;
    s.FeedLog(w);
    w.Take();
    s.Round(w, 3);
    WriteProgram(dir, "restart", w, 2, Expect::kAllVerified);
  }
  {
    // A fresh start anchored on the log's first checkpoint: the ring buffer
    // still delivers events from before it.
    Stream s;
    ProgramWriter first(with_pcr, s.sim.StartAnchor());
    std::vector<Record> before = s.Commit(6);
    first.Events(before);
    s.sim.Checkpoint();
    s.FeedLog(first);
    const ProgramResult r = RunProgram("started-after (first run)", first, 1, Expect::kAllVerified);
    ProgramOptions o = with_pcr;
    o.started_after_seq = static_cast<uint8_t>(r.anchor.last_seq);
    vigil::verify::Anchor anchor = r.anchor;
    if (!anchor.key) anchor.key = KeyOf(s.sim);
    ProgramWriter w(o, anchor);
    w.Events(std::vector<Record>(before.begin() + 3, before.end()));
    s.log_fed = 0;
    s.Round(w, 5);
    s.Round(w, 5);
    WriteProgram(dir, "started-after", w, 2, Expect::kAllVerified);
  }
  {
    // The anchor knows the module's key; the log's KEY record names another.
    Stream s;
    ModuleSim other(kSimInstance);
    vigil::verify::Anchor anchor = s.sim.StartAnchor();
    anchor.key = KeyOf(other);
    ProgramWriter w(with_pcr, anchor);
    s.Round(w, 4);
    s.Round(w, 4);
    WriteProgram(dir, "other-key", w, 2, Expect::kNotAllVerified);
  }
  {
    // More claims of one seq than the verifier keeps.
    ProgramOptions o = with_pcr;
    o.max_claims_per_seq = 2;
    Stream s;
    ProgramWriter w(o, s.sim.StartAnchor());
    std::vector<Record> ev = s.Commit(6);
    w.Events(std::vector<Record>(ev.begin(), ev.begin() + 2));
    for (uint8_t m = 1; m <= 3; ++m) w.Event(FlipByte(ev[2], offsetof(vigil_ev_exec, pid), m));
    w.Events(std::vector<Record>(ev.begin() + 2, ev.end()));
    s.sim.Checkpoint();
    s.FeedLog(w);
    s.Round(w, 3);
    WriteProgram(dir, "claims", w, 2, Expect::kNotAllVerified);
  }
}

// vigild_state_fuzz: verifier.json (first byte 0), open-events.bin (first
// byte 0x80 | anchor seq) and a saved log (first byte 0x40), each parsed
// before it is written.
void WriteVigildStateSeeds(const fs::path& dir, const RestartPoint& restart) {
  using vigil::daemon::VerifierState;
  const auto write_json = [&](const std::string& name, const VerifierState& state) {
    const std::string text = vigil::daemon::SerializeVerifierState(state);
    Require(vigil::daemon::ParseVerifierState(text), "verifier state " + name);
    WriteSeed(dir, name, std::string(1, '\0') + text);
  };
  VerifierState start;
  start.anchor.instance_id.fill(kSimInstance);
  auto head = vigil::chain::InitialChain(start.anchor.instance_id);
  Require(head, "chain_0");
  start.anchor.chain_head = *head;
  start.saved_at_ns = 1'700'000'000'000'000'000ull;
  write_json("verifier-start", start);

  VerifierState resumed = start;
  resumed.anchor = restart.anchor;
  resumed.log_saved_seq = restart.log_saved_seq;
  resumed.agent_names = {{1, "web-0"}, {7, "batch/job~1"}, {UINT32_MAX, "agent \xc3\xa9"}};
  resumed.anchor.drops_total = 3;
  write_json("verifier-restart", resumed);

  const auto write_events = [&](const std::string& name, const std::vector<Record>& events,
                                uint8_t anchor_seq) {
    const std::string bytes = vigil::daemon::SerializeOpenEvents(events);
    Require(vigil::daemon::ParseOpenEvents(bytes, anchor_seq), "open events " + name);
    WriteSeed(dir, name, std::string(1, static_cast<char>(0x80 | anchor_seq)) + bytes);
  };
  write_events("open-events", restart.open_events,
               static_cast<uint8_t>(restart.anchor.last_seq & 0x7f));
  ModuleSim sim(kSimInstance);
  std::vector<Record> events;
  for (int i = 0; i < 6; ++i) events.push_back(sim.Commit(200 + static_cast<uint32_t>(i)));
  write_events("open-events-covered", events, 3);
  write_events("open-events-empty", {}, 0);

  sim.Checkpoint();
  std::string log_bytes;
  for (const Record& r : sim.log()) {
    log_bytes.append(reinterpret_cast<const char*>(r.bytes().data()), r.bytes().size());
  }
  Require(vigil::daemon::ScanSavedLog(log_bytes, std::span<const uint8_t>(sim.instance())),
          "saved log");
  WriteSeed(dir, "saved-log", std::string(1, '\x40') + log_bytes);
}

}  // namespace

// IMA's binary log as ima_fs.c writes it: an ima-ng boot_aggregate and an
// ima-buf entry per anchored record of a simulated module (the fuzz input's
// first byte is the piece size).
void WriteImaSeeds(const fs::path& dir) {
  auto put_u32 = [](std::vector<uint8_t>& out, uint32_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
  };
  auto entry = [&](std::vector<uint8_t>& log, const std::string& tname,
                   const std::vector<std::vector<uint8_t>>& fields) {
    std::vector<uint8_t> data;
    for (const auto& f : fields) {
      put_u32(data, static_cast<uint32_t>(f.size()));
      data.insert(data.end(), f.begin(), f.end());
    }
    const auto sha1 = *vigil::crypto::Hash(0x0004, data);
    put_u32(log, 10);
    log.insert(log.end(), sha1.begin(), sha1.end());
    put_u32(log, static_cast<uint32_t>(tname.size()));
    log.insert(log.end(), tname.begin(), tname.end());
    put_u32(log, static_cast<uint32_t>(data.size()));
    log.insert(log.end(), data.begin(), data.end());
  };
  auto digest_field = [](std::span<const uint8_t> content) {
    std::vector<uint8_t> f{'s', 'h', 'a', '2', '5', '6', ':', '\0'};
    const auto d = *vigil::crypto::Hash(0x000B, content);
    f.insert(f.end(), d.begin(), d.end());
    return f;
  };
  auto name_field = [](const std::string& name) {
    std::vector<uint8_t> f(name.begin(), name.end());
    f.push_back('\0');
    return f;
  };
  vigil::sim::ModuleSim sim;
  for (int i = 0; i < 3; ++i) sim.Commit();
  sim.Checkpoint();
  std::vector<uint8_t> log{16};  // piece size
  const std::vector<uint8_t> agg(32, 0x11);
  entry(log, "ima-ng", {digest_field(agg), name_field("boot_aggregate")});
  for (const Record& r : sim.log()) {
    if (r.type() != VIGIL_LOG_KEY && r.type() != VIGIL_LOG_CHECKPOINT) continue;
    const std::vector<uint8_t> buf(r.bytes().begin(), r.bytes().end());
    entry(log, "ima-buf",
          {digest_field(buf), name_field(vigil::ima::EntryName(sim.instance(), r.type(), r.seq())),
           buf});
  }
  WriteSeed(dir, "boot-and-module", log);
}

// Remote attestation evidence (format v1) around a simulated module's log:
// with every optional part, and without them; JSON and CBOR.
void WriteEvidenceSeeds(const fs::path& dir) {
  vigil::sim::ModuleSim sim;
  for (int i = 0; i < 3; ++i) sim.Commit();
  sim.Checkpoint();
  vigil::attest::Evidence e;
  e.node = "000b" + std::string(64, 'e');
  e.nonce.assign(32, 0x4e);
  e.quote.attest = {0xff, 0x54, 0x43, 0x47, 0x80, 0x18};
  e.quote.signature = {0x00, 0x18, 0x00, 0x0b};
  e.pcrs = {{0x000B, 16, Bytes(32, 0x16)}, {0x000B, 23, Bytes(32, 0x23)},
            {0x0004, 10, Bytes(20, 0x10)}};
  for (const Record& r : sim.log()) {
    e.log.records.insert(e.log.records.end(), r.bytes().begin(), r.bytes().end());
  }
  e.module.instance = sim.instance();
  e.module.tpm_flags = VIGIL_TPM_PRESENT | VIGIL_TPM_KEY;
  e.module.pcr_config = 16;
  e.module.pcr_events = 23;
  e.module.banks = {0x0004, 0x000B};
  const std::string bare = vigil::attest::SerializeEvidence(e);
  Require(vigil::attest::ParseEvidence(bare), "bare evidence");
  WriteSeed(dir, "bare", bare);
  const std::string bare_cbor = vigil::attest::SerializeEvidenceCbor(e);
  Require(vigil::attest::ParseEvidence(bare_cbor), "bare evidence, CBOR");
  WriteSeed(dir, "bare-cbor", bare_cbor);
  e.anchor = vigil::attest::AnchorKind::kIma;
  e.ima = vigil::attest::Evidence::Ima{7, Bytes(64, 0x49)};
  e.key_certification = vigil::attest::Evidence::KeyCertification{
      Bytes(90, 0x01), Bytes(), Bytes(120, 0x02), Bytes(72, 0x03)};
  const std::string full = vigil::attest::SerializeEvidence(e);
  Require(vigil::attest::ParseEvidence(full), "full evidence");
  WriteSeed(dir, "full", full);
  const std::string full_cbor = vigil::attest::SerializeEvidenceCbor(e);
  Require(vigil::attest::ParseEvidence(full_cbor), "full evidence, CBOR");
  WriteSeed(dir, "full-cbor", full_cbor);
}

// Signed baseline reports (format v1): a real snapshot measured into an
// IMA-format log, with a quote no key signed (the checker refuses it at the
// signature; the snapshot and format checks still run).
void WriteBaselineReportSeeds(const fs::path& dir) {
  auto store = vigil::baseline::BaselineStore::Create(vigil::baseline::BaselineConfig{});
  if (!store.ok()) Fail("baseline config: " + store.status().ToString());
  for (int i = 0; i < 12; ++i) {
    vigil::baseline::ExitSample sample;
    sample.agent = "web-0";
    sample.role = "web";
    sample.timestamp_ns = 1'700'000'000'000'000'000ull + 1'000'000'000ull * i;
    sample.cpu_ns = 3'000'000 + 10'000 * i;
    sample.lifetime_ns = 40'000'000 + 100'000 * i;
    sample.max_rss_bytes = 16u << 20;
    sample.faults = 200 + i;
    sample.ctx_switches = 20 + i;
    sample.syscalls = 2000 + i;
    store->ObserveExit(sample);
  }
  const std::string snapshot = store->Serialize();
  vigil::attest::BaselineReport r;
  r.node = "000b" + std::string(64, 'e');
  r.snapshot.assign(snapshot.begin(), snapshot.end());
  r.snapshot_sha256 = *vigil::crypto::Hash(0x000B, r.snapshot);
  r.instance.fill(0x5a);
  r.measure_seq = 9;
  r.nonce.assign(16, 0x4e);
  r.quote_attest = {0xff, 0x54, 0x43, 0x47, 0x80, 0x18};
  r.quote_signature = {0x00, 0x18, 0x00, 0x0b};
  vigil::sim::ImaSim ima;
  ima.BootAggregate();
  vigil_log_measure m;
  std::memset(&m, 0, sizeof(m));
  vigil::sim::ModuleSim::Header(m.hdr, VIGIL_LOG_MEASURE, sizeof(m), r.measure_seq);
  m.kind = VIGIL_MEASURE_USER;
  m.pcr = VIGIL_PCR_NONE;
  std::strncpy(m.name, "baseline", sizeof(m.name) - 1);
  std::memcpy(m.digest, r.snapshot_sha256.data(), sizeof(m.digest));
  ima.Record(r.instance, *Record::FromStruct(m));
  r.pcr10_sha256 = ima.pcr10[0x000B];
  r.ima_entries = ima.log;
  r.ak_public = Bytes(90, 0x01);
  const std::string text = vigil::attest::SerializeBaselineReport(r);
  Require(vigil::attest::ParseBaselineReport(text), "baseline report");
  WriteSeed(dir, "report", text);
}

// Enrolment requests: structurally valid, with a real P-256 AK point (so
// CheckAkPublic passes and the fuzzer reaches CheckAkCreation), with and
// without an EK certificate field. Every seed parses.
void WriteEnrolmentSeeds(const fs::path& dir) {
  auto marshal_public = [](const TPMT_PUBLIC& pub) {
    TPM2B_PUBLIC wrapped{};
    wrapped.publicArea = pub;
    Bytes out(sizeof(TPM2B_PUBLIC));
    size_t off = 0;
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(&wrapped, out.data(), out.size(), &off) != TSS2_RC_SUCCESS) {
      Fail("marshalling a seed public area");
    }
    out.resize(off);
    return out;
  };
  TPMT_PUBLIC ek{};
  ek.type = TPM2_ALG_RSA;
  ek.nameAlg = TPM2_ALG_SHA256;
  ek.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                        TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                        TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  ek.authPolicy.size = 32;
  ek.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
  ek.parameters.rsaDetail.symmetric.keyBits.aes = 128;
  ek.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  ek.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
  ek.parameters.rsaDetail.keyBits = 2048;
  ek.unique.rsa.size = 256;
  for (size_t i = 0; i < 256; ++i) ek.unique.rsa.buffer[i] = static_cast<uint8_t>(0x80 | i);

  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) Fail("P-256 key for the enrolment seed");
  uint8_t point[65];
  size_t point_len = 0;
  const int got = EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                                  sizeof(point), &point_len);
  EVP_PKEY_free(key);
  if (got != 1 || point_len != 65) Fail("P-256 point for the enrolment seed");
  TPMT_PUBLIC ak{};
  ak.type = TPM2_ALG_ECC;
  ak.nameAlg = TPM2_ALG_SHA256;
  ak.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                        TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                        TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  ak.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  ak.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  ak.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  ak.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  ak.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  ak.unique.ecc.x.size = 32;
  std::memcpy(ak.unique.ecc.x.buffer, point + 1, 32);
  ak.unique.ecc.y.size = 32;
  std::memcpy(ak.unique.ecc.y.buffer, point + 33, 32);

  vigil::attest::EnrolmentRequest request;
  auto ek_area = vigil::tpmobj::ParseTpm2bPublic(marshal_public(ek));
  auto ak_area = vigil::tpmobj::ParseTpm2bPublic(marshal_public(ak));
  Require(ek_area, "seed EK public");
  Require(ak_area, "seed AK public");
  request.ek = *ek_area;
  request.ak = *ak_area;

  TPMS_CREATION_DATA creation{};
  creation.parentNameAlg = TPM2_ALG_SHA256;
  creation.locality = 1;
  creation.parentName.size = 4;
  std::memcpy(creation.parentName.name, "\x40\x00\x00\x01", 4);
  Bytes creation_bytes(sizeof(creation));
  size_t off = 0;
  if (Tss2_MU_TPMS_CREATION_DATA_Marshal(&creation, creation_bytes.data(), creation_bytes.size(),
                                         &off) != TSS2_RC_SUCCESS) {
    Fail("marshalling the seed creation data");
  }
  creation_bytes.resize(off);
  request.ak_creation_data = creation_bytes;

  TPMS_ATTEST attest{};
  attest.magic = TPM2_GENERATED_VALUE;
  attest.type = TPM2_ST_ATTEST_CREATION;
  attest.qualifiedSigner.size = 0;
  auto name = vigil::tpmobj::Name(request.ak);
  Require(name, "seed AK name");
  attest.attested.creation.objectName.size = static_cast<UINT16>(name->size());
  std::memcpy(attest.attested.creation.objectName.name, name->data(), name->size());
  auto hash = vigil::crypto::Hash(TPM2_ALG_SHA256, creation_bytes);
  Require(hash, "seed creation hash");
  attest.attested.creation.creationHash.size = static_cast<UINT16>(hash->size());
  std::memcpy(attest.attested.creation.creationHash.buffer, hash->data(), hash->size());
  Bytes attest_bytes(sizeof(attest));
  off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&attest, attest_bytes.data(), attest_bytes.size(), &off) !=
      TSS2_RC_SUCCESS) {
    Fail("marshalling the seed attest");
  }
  attest_bytes.resize(off);
  request.ak_creation_attest = attest_bytes;

  request.ak_creation_signature.sigAlg = TPM2_ALG_ECDSA;
  request.ak_creation_signature.signature.ecdsa.hash = TPM2_ALG_SHA256;
  request.ak_creation_signature.signature.ecdsa.signatureR.size = 32;
  request.ak_creation_signature.signature.ecdsa.signatureS.size = 32;
  request.ak_creation_signature.signature.ecdsa.signatureR.buffer[31] = 1;
  request.ak_creation_signature.signature.ecdsa.signatureS.buffer[31] = 1;

  const std::string no_cert = vigil::attest::SerializeEnrolmentRequest(request);
  Require(vigil::attest::ParseEnrolmentRequest(no_cert), "seed enrolment request (no cert)");
  WriteSeed(dir, "no-cert", no_cert);
  // A minimal DER certificate-shaped SEQUENCE as the EK certificate field.
  request.ek_certificate_der = {0x30, 0x03, 0x02, 0x01, 0x01};
  const std::string with_cert = vigil::attest::SerializeEnrolmentRequest(request);
  Require(vigil::attest::ParseEnrolmentRequest(with_cert), "seed enrolment request (cert)");
  WriteSeed(dir, "with-cert", with_cert);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out(argv[1]);
  const fs::path record_dir = out / "record_decoder_fuzz";
  const fs::path log_dir = out / "log_parser_fuzz";
  const fs::path state_dir = out / "state_loader_fuzz";
  const fs::path verifier_dir = out / "verifier_fuzz";
  const fs::path vigild_state_dir = out / "vigild_state_fuzz";
  const fs::path ima_dir = out / "ima_log_fuzz";
  const fs::path evidence_dir = out / "evidence_fuzz";
  const fs::path enrolment_dir = out / "enrolment_request_fuzz";
  const fs::path report_dir = out / "baseline_report_fuzz";
  for (const fs::path& dir : {record_dir, log_dir, state_dir, verifier_dir, vigild_state_dir,
                              ima_dir, evidence_dir, enrolment_dir, report_dir}) {
    fs::create_directories(dir);
  }

  const Session session = BuildSession();
  CheckSession(session);
  WriteRecordSeeds(record_dir, session);
  WriteLogSeeds(log_dir, session);
  WriteStateSeeds(state_dir);
  RestartPoint restart;
  WriteVerifierSeeds(verifier_dir, restart);
  WriteVigildStateSeeds(vigild_state_dir, restart);
  WriteImaSeeds(ima_dir);
  WriteEvidenceSeeds(evidence_dir);
  WriteEnrolmentSeeds(enrolment_dir);
  WriteBaselineReportSeeds(report_dir);
  return 0;
}
