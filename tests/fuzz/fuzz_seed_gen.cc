// SPDX-License-Identifier: GPL-2.0
// Writes the seed corpora of the fuzz targets: valid inputs, so the fuzzers
// start deep inside the parsers instead of at the header checks.
//   fuzz_seed_gen OUT_DIR  ->  OUT_DIR/{record_decoder,log_parser,state_loader}_fuzz/
// Every seed is checked with the library before it is written (a log that
// does not replay or verify would be a poor seed), so a failure here means
// the generator and the parsers disagree: the run stops with an error.
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

#include "baseline_fuzz_config.h"
#include "vigil.h"
#include "vigil/baseline/store.h"
#include "vigil/chain.h"
#include "vigil/digest.h"
#include "vigil/records.h"
#include "vigil/replay.h"

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
  rec.hdr.version = 1;
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
  Require(vigil::replay::ReplayLog(Decode(s.log_tail, "trimmed log")), "replay of the trimmed log");
  Require(vigil::chain::VerifyCheckpointLinks(s.instance_id, log), "checkpoint links");

  std::vector<Record> events = Decode(s.ring_events, "ring events");
  for (const Record& rec : log) {
    if (rec.type() != VIGIL_LOG_EVENT) continue;
    auto ev = vigil::records::EventFromLogCopy(rec);
    Require(ev, "LOG_EVENT copy");
    events.push_back(std::move(ev).value());
  }
  Require(vigil::chain::VerifyCheckpoints(s.instance_id, log, events), "checkpoints");
  auto chain_0 = vigil::chain::InitialChain(s.instance_id);
  Require(chain_0, "chain_0");
  auto range = vigil::chain::VerifyEventRange(*chain_0, 0, events, log);
  Require(range, "event range");
  if (range->checkpoints_checked != 2) Fail("event range checked too few checkpoints");
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

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out(argv[1]);
  const fs::path record_dir = out / "record_decoder_fuzz";
  const fs::path log_dir = out / "log_parser_fuzz";
  const fs::path state_dir = out / "state_loader_fuzz";
  for (const fs::path& dir : {record_dir, log_dir, state_dir}) fs::create_directories(dir);

  const Session session = BuildSession();
  CheckSession(session);
  WriteRecordSeeds(record_dir, session);
  WriteLogSeeds(log_dir, session);
  WriteStateSeeds(state_dir);
  return 0;
}
