// Verify + aggregate throughput on a committed stream, on one core, side by
// side with raw OpenSSL SHA-256 over the same records (the chain's own
// hashing, nothing else): the ratio says what verification costs on top of
// the hash it cannot avoid.
//
// The stream is made by a software module (userspace/lib/vigil/sim/module_sim.h rules):
// agent records in a realistic mix (samples, exits, execs, forks) with
// VIGIL_REC_F_COMMITTED and contiguous seqs, a TPM-style ECDSA-signed
// checkpoint every 4096 events. Each pass starts from the raw bytes, as the
// ring buffer hands them over.
//
// Also JSON lines as vigild writes them (daemon::LineWriter: the record
// serialized, stamped with time, host and boot, written to a file), alone
// and after the whole pipeline, next to nlohmann's rendering it replaced.
//
// Run: build/bench/vigil-bench-verify [--records N] [--passes P]
//        [--json-out FILE (default /tmp/vigil-bench-lines.jsonl; /dev/null works)]
//      build/bench/vigil-bench-verify --rss-agents 10000 --records 5000000
//        (memory of the whole pipeline with that many agents instead)
#include <openssl/evp.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>


#include "line_stamp.h"
#include "vigil/sim/module_sim.h"
#include "pipeline.h"
#include "state.h"
#include "vigil/format.h"
#include "vigil/metrics.h"
#include "vigil/verify.h"
#include "vigil/cli_parse.h"
#include "vigil/version.h"

namespace {

using Clock = std::chrono::steady_clock;

// The rates count this thread's CPU time (user and system), not wall time:
// on a machine shared with other work, time spent preempted would otherwise
// land on whichever path was running, and ratios of one run would mean
// little.
struct CpuClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CpuClock>;
  static constexpr bool is_steady = true;
  static time_point now() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return time_point(duration(static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec));
  }
};

struct Stream {
  std::vector<std::vector<uint8_t>> events;  // raw bytes
  // Log records to feed after event index `at`.
  struct LogAt {
    size_t at;
    vigil::records::Record rec;
  };
  std::vector<LogAt> log;
  vigil::verify::Anchor anchor;
  size_t bytes = 0;
};

template <typename T>
void Fill(T& rec, uint16_t type, uint64_t seq, uint32_t agent) {
  std::memset(&rec, 0, sizeof(rec));
  rec.hdr.type = type;
  rec.hdr.version = 1;
  rec.hdr.size = sizeof(T);
  rec.hdr.seq = seq;
  rec.hdr.ts_ns = 1'000'000 + seq * 1000;
  rec.hdr.agent_id = agent;
  rec.hdr.flags = VIGIL_REC_F_COMMITTED;
}

// A module whose chain takes any record type (ModuleSim commits execs only).
// Hands each committed event's bytes, and each log record with the index of
// the event it follows, to the callbacks.
class StreamBuilder {
 public:
  using OnEvent = std::function<void(std::vector<uint8_t>)>;
  using OnLog = std::function<void(size_t at, vigil::records::Record)>;

  StreamBuilder(uint32_t agents, OnEvent on_event, OnLog on_log)
      : agents_(agents), on_event_(std::move(on_event)), on_log_(std::move(on_log)) {
    head_ = sim_.StartAnchor().chain_head;
    for (const auto& r : sim_.log()) on_log_(0, r);
  }
  vigil::verify::Anchor anchor() const { return sim_.StartAnchor(); }

  void Run(size_t n) {
    for (uint64_t seq = 1; seq <= n; ++seq) {
      // Every agent gets the whole mix of record types.
      const uint32_t agent = 1 + static_cast<uint32_t>((seq / 10) % agents_);
      std::vector<uint8_t> bytes;
      switch (seq % 10) {
        case 0: {
          vigil_ev_exec e;
          Fill(e, VIGIL_EV_EXEC, seq, agent);
          e.pid = static_cast<uint32_t>(seq);
          std::snprintf(e.filename, sizeof(e.filename), "/usr/bin/tool%u", agent % 8);
          bytes = Raw(e);
          break;
        }
        case 1:
        case 2: {
          vigil_ev_exit x;
          Fill(x, VIGIL_EV_EXIT, seq, agent);
          x.lifetime_ns = 50'000'000 + (seq % 97) * 100'000;
          x.utime_ns = 2'000'000 + (seq % 13) * 10'000;
          x.maxrss_kb = 4096 + seq % 64;
          x.min_flt = 300 + seq % 17;
          x.nvcsw = 10 + seq % 5;
          bytes = Raw(x);
          break;
        }
        case 3: {
          vigil_ev_fork f;
          Fill(f, VIGIL_EV_FORK, seq, agent);
          bytes = Raw(f);
          break;
        }
        default: {
          vigil_ev_sample s;
          Fill(s, VIGIL_EV_SAMPLE, seq, agent);
          s.flags = VIGIL_SAMPLE_F_SYSCALLS;
          s.interval_ns = 20'000'000;
          s.syscalls = 1000 + seq % 50;
          bytes = Raw(s);
          break;
        }
      }
      head_ = *vigil::crypto::Sha256({head_, bytes});
      on_event_(std::move(bytes));
      if (seq % 4096 == 0 || seq == n) Checkpoint(seq);
    }
  }

 private:
  template <typename T>
  static std::vector<uint8_t> Raw(const T& rec) {
    const auto* p = reinterpret_cast<const uint8_t*>(&rec);
    return {p, p + sizeof(T)};
  }
  void Checkpoint(uint64_t last) {
    vigil_log_checkpoint cp;
    std::memset(&cp, 0, sizeof(cp));
    cp.hdr.type = VIGIL_LOG_CHECKPOINT;
    cp.hdr.version = VIGIL_CHECKPOINT_VERSION;
    cp.hdr.size = sizeof(cp);
    cp.hdr.seq = log_seq_++;
    cp.first_seq = cp_last_ + 1;
    cp.last_seq = last;
    cp.anchor = VIGIL_ANCHOR_PCR;
    std::memcpy(cp.chain_head, head_.data(), 32);
    std::memcpy(cp.prev_digest, prev_.data(), 32);
    std::memcpy(cp.instance_id, sim_.instance().data(), VIGIL_ID_LEN);
    auto rec = *vigil::records::Record::FromStruct(cp);
    prev_ = *vigil::crypto::Sha256({rec.bytes()});
    cp_last_ = last;
    vigil_log_signature sig = sim_.Sign(rec);
    sig.hdr.seq = log_seq_++;
    on_log_(last, rec);
    on_log_(last, *vigil::records::Record::FromStruct(sig));
  }

  uint32_t agents_;
  OnEvent on_event_;
  OnLog on_log_;
  vigil::sim::ModuleSim sim_;
  vigil::crypto::Sha256Digest head_{};
  vigil::crypto::Sha256Digest prev_{};
  uint64_t cp_last_ = 0;
  uint64_t log_seq_ = 2;  // after the KEY record
};

Stream BuildStream(size_t n) {
  Stream s;
  StreamBuilder b(
      64,
      [&s](std::vector<uint8_t> bytes) {
        s.bytes += bytes.size();
        s.events.push_back(std::move(bytes));
      },
      [&s](size_t at, vigil::records::Record rec) { s.log.push_back({at, std::move(rec)}); });
  s.anchor = b.anchor();
  b.Run(n);
  return s;
}

// Raw OpenSSL: SHA-256(head || record) per record, one reused context.
double RawSha256(const Stream& s, uint8_t* sink) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // explicit: no lookup per record
  uint8_t head[32] = {};
  unsigned int len = 0;
  const auto t0 = CpuClock::now();
  for (const auto& e : s.events) {
    EVP_DigestInit_ex2(ctx, md, nullptr);
    EVP_DigestUpdate(ctx, head, sizeof(head));
    EVP_DigestUpdate(ctx, e.data(), e.size());
    EVP_DigestFinal_ex(ctx, head, &len);
  }
  const double secs = std::chrono::duration<double>(CpuClock::now() - t0).count();
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  std::memcpy(sink, head, sizeof(head));
  return secs;
}

class NullBuf : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

struct PassResult {
  double secs = 0;
  uint64_t verified = 0;
  uint64_t other = 0;
  uint64_t chained = 0;
};

// Lines stamped as vigild stamps them (this host's ids, the real clock).
vigil::daemon::LineStamper Stamper() {
  return vigil::daemon::LineStamper(vigil::daemon::ReadHostIdentity());
}

// The collector's path: decode, verify, baselines, metrics; with `json_out`
// also every record's JSON line written there, as vigild writes them.
PassResult VerifyAndAggregate(const Stream& s, bool aggregate, const char* json_out = nullptr) {
  NullBuf null_buf;
  std::ostream null_out(&null_buf);
  std::ofstream file_out;
  if (json_out != nullptr) {
    file_out.open(json_out, std::ios::trunc);
    if (!file_out) {
      std::fprintf(stderr, "cannot write %s\n", json_out);
      std::exit(1);
    }
  }
  vigil::metrics::Registry registry;
  auto store = vigil::baseline::BaselineStore::Create({});
  vigil::daemon::PipelineOptions opt;
  opt.emit_records = json_out != nullptr;
  if (json_out != nullptr) opt.stamper = Stamper();
  auto pipe = vigil::daemon::Pipeline::Create(json_out != nullptr ? file_out : null_out, registry,
                                              std::move(store).value(),
                                              vigil::verify::StreamVerifier(s.anchor, {}), opt);
  if (!pipe.ok()) {
    std::fprintf(stderr, "pipeline: %s\n", pipe.status().ToString().c_str());
    std::exit(1);
  }
  vigil::verify::StreamVerifier verify_only(s.anchor, {});
  size_t next_log = 0;
  const auto t0 = CpuClock::now();
  for (size_t i = 0; i < s.events.size(); ++i) {
    for (; next_log < s.log.size() && s.log[next_log].at <= i; ++next_log) {
      if (aggregate) {
        (*pipe)->OnLog(s.log[next_log].rec);
      } else {
        verify_only.AddLog(s.log[next_log].rec);
      }
    }
    auto rec = vigil::records::Record::Decode(s.events[i]);
    if (!rec.ok()) std::abort();
    if (aggregate) {
      (*pipe)->OnEvent(std::move(rec).value(), 1'000'000 + i);
    } else {
      verify_only.AddEvent(std::move(rec).value());
    }
  }
  for (; next_log < s.log.size(); ++next_log) {
    if (aggregate) {
      (*pipe)->OnLog(s.log[next_log].rec);
    } else {
      verify_only.AddLog(s.log[next_log].rec);
    }
  }
  if (json_out != nullptr) {
    (*pipe)->FlushLines();
    file_out.flush();
  }
  PassResult r;
  r.secs = std::chrono::duration<double>(CpuClock::now() - t0).count();
  if (json_out != nullptr && !file_out) {
    std::fprintf(stderr, "writing %s failed\n", json_out);
    std::exit(1);
  }
  const vigil::verify::StreamVerifier& v = aggregate ? *(*pipe)->verifier() : verify_only;
  // No TPM here, so no anchor check: chain and signature verified is
  // "signed", the best verdict this input can get.
  const size_t ok = static_cast<size_t>(vigil::verify::Verdict::kSigned);
  r.verified = v.counters().verdicts[ok];
  for (size_t k = 0; k < vigil::verify::kVerdictCount; ++k) {
    if (k != ok) r.other += v.counters().verdicts[k];
  }
  r.chained = v.counters().chained;
  return r;
}

// Decode + one JSON line per record through vigild's LineWriter into a
// file: the direct serializer, or (`nlohmann`) the DOM rendering it replaced.
double JsonLines(const Stream& s, const char* path, bool nlohmann) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path);
    std::exit(1);
  }
  vigil::daemon::LineWriter writer(out, Stamper());
  std::string line;
  const auto t0 = CpuClock::now();
  for (const auto& bytes : s.events) {
    auto rec = vigil::records::Record::Decode(bytes);
    if (!rec.ok()) std::abort();
    if (nlohmann) {
      line = vigil::format::Dump(vigil::format::RecordToJson(*rec));
      writer.Write(line);
    } else {
      writer.WriteRecord(*rec);
    }
  }
  writer.Flush();
  out.flush();
  const double secs = std::chrono::duration<double>(CpuClock::now() - t0).count();
  if (!out) {
    std::fprintf(stderr, "writing %s failed\n", path);
    std::exit(1);
  }
  return secs;
}

long MaxRssKb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

long VmRssKb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// The collector's memory with many agents: records generated on the fly
// (nothing held), fed through the whole pipeline.
int RssRun(uint32_t agents, size_t records) {
  NullBuf null_buf;
  std::ostream null_out(&null_buf);
  vigil::metrics::Registry registry;
  const long before = VmRssKb();
  auto store = vigil::baseline::BaselineStore::Create({});
  vigil::daemon::PipelineOptions opt;
  opt.emit_records = false;
  std::unique_ptr<vigil::daemon::Pipeline> pipe;
  std::vector<vigil::records::Record> early_log;
  StreamBuilder b(
      agents,
      [&](std::vector<uint8_t> bytes) {
        auto rec = vigil::records::Record::Decode(bytes);
        pipe->OnEvent(std::move(rec).value(), 1'000'000);
      },
      [&](size_t, vigil::records::Record rec) {
        if (pipe) {
          pipe->OnLog(std::move(rec));
        } else {
          early_log.push_back(std::move(rec));
        }
      });
  auto made = vigil::daemon::Pipeline::Create(null_out, registry, std::move(store).value(),
                                              vigil::verify::StreamVerifier(b.anchor(), {}), opt);
  if (!made.ok()) return 1;
  pipe = std::move(made).value();
  for (auto& r : early_log) pipe->OnLog(std::move(r));
  b.Run(records);
  pipe->Tick(1, 1);  // metrics flushed, per-agent series created
  const long after = VmRssKb();
  const vigil::verify::VerifierCounters c = pipe->verifier()->counters();
  // No TPM here: chain and signature verified is "signed".
  const auto at = [&](vigil::verify::Verdict v) { return c.verdicts[static_cast<size_t>(v)]; };
  const uint64_t held = at(vigil::verify::Verdict::kVerified) + at(vigil::verify::Verdict::kSigned);
  uint64_t others = 0;
  for (uint64_t n : c.verdicts) others += n;
  others -= held;
  std::printf("pipeline with %u agents after %zu records: VmRSS %.1f MB (%.1f MB before), %zu "
              "baselines, %llu checkpoints verified (chain and signature), %llu other\n",
              agents, records, after / 1024.0, before / 1024.0, pipe->store().agent_count(),
              static_cast<unsigned long long>(held), static_cast<unsigned long long>(others));
  std::printf("target: <= 64 MB with 10k agents: %s\n", after <= 64 * 1024 ? "met" : "NOT met");
  // What vigild does at every --baseline-interval: the store written in
  // pieces to baselines.json in a state directory (temp, fsync, rename).
  char tmpl[] = "/tmp/vigil-bench-state.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  auto dir = vigil::daemon::StateDir::Open(tmpl);
  if (!dir.ok()) return 1;
  const long peak_before = MaxRssKb();
  size_t saved_bytes = 0;
  const auto t0 = Clock::now();
  const vigil::Status st = dir->WriteAtomicPieces(
      vigil::daemon::kBaselinesFile, [&](const vigil::daemon::StateDir::PieceWriter& write) {
        return pipe->store().SerializeTo([&](std::string_view piece) {
          saved_bytes += piece.size();
          return write(piece);
        });
      });
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!st.ok()) {
    std::fprintf(stderr, "saving: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf("saving the baselines as vigild does: %.1f MB of JSON in %.2f s; peak RSS %.1f MB "
              "(%.1f MB before)\n",
              static_cast<double>(saved_bytes) / 1e6, secs, MaxRssKb() / 1024.0,
              peak_before / 1024.0);
  // And what a restarted vigild does: the pipeline gone, the file streamed
  // back into a store (agent by agent, never the whole text).
  pipe.reset();
  const auto t1 = Clock::now();
  std::FILE* file = std::fopen((std::string(tmpl) + "/" + vigil::daemon::kBaselinesFile).c_str(), "r");
  auto back = file ? vigil::baseline::BaselineStore::ParseFile(file, saved_bytes, {})
                   : vigil::baseline::StateResult<vigil::baseline::BaselineStore>(
                         vigil::baseline::StateStatus(vigil::baseline::StateCode::kTruncated, "",
                                                      "cannot open the saved file"));
  if (file) std::fclose(file);
  std::filesystem::remove_all(tmpl);
  if (!back.ok()) {
    std::fprintf(stderr, "reloading: %s\n", back.status().ToString().c_str());
    return 1;
  }
  std::printf("reloading it: %zu agents in %.2f s; VmRSS %.1f MB, peak RSS of the whole run %.1f MB\n",
              back->agent_count(),
              std::chrono::duration<double>(Clock::now() - t1).count(), VmRssKb() / 1024.0,
              MaxRssKb() / 1024.0);

  return c.verdicts[1] + c.verdicts[2] + c.verdicts[3] == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  size_t records = 1'000'000;
  int passes = 3;
  uint32_t rss_agents = 0;
  std::string only;  // "raw", "verify", "full", "json", "full-json": one path (for a profiler)
  std::string json_out = "/tmp/vigil-bench-lines.jsonl";
  CLI::App app{"vigil-bench-verify: chain verification and aggregation on one core, beside raw "
                "SHA-256"};
  app.set_version_flag("--version", vigil::version::VersionText("vigil-bench-verify"));
  app.add_option("--records", records, "Records in the committed stream")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{100'000'000}));
  app.add_option("--passes", passes, "Passes; the best of each path is kept")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--only", only, "One path alone (for a profiler)")
      ->check(CLI::IsMember({"raw", "verify", "full", "json", "full-json"}));
  app.add_option("--json-out", json_out, "Where the JSON lines go")->capture_default_str();
  app.add_option("--rss-agents", rss_agents,
                 "Measure the collector's resident memory with this many agents instead")
      ->check(CLI::Range(1u, 10'000'000u));
  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
  if (rss_agents != 0) return RssRun(rss_agents, records);
  // One core, as the target says.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  const bool pinned = sched_setaffinity(0, sizeof(one), &one) == 0;

  std::printf("building a committed stream of %zu records ...\n", records);
  Stream s = BuildStream(records);
  std::printf("stream: %zu records, %.1f MB, %zu log records (checkpoint every 4096), %s\n",
              s.events.size(), static_cast<double>(s.bytes) / 1e6, s.log.size(),
              pinned ? "pinned to CPU 0" : "NOT pinned (sched_setaffinity failed)");

  uint8_t sink[32];
  double best_raw = 1e9, best_verify = 1e9, best_full = 1e9;
  double best_json = 1e9, best_json_dom = 1e9, best_full_json = 1e9;
  PassResult full{}, verify{}, full_json{};
  const bool all = only.empty();
  for (int p = 0; p < passes; ++p) {
    if (only.empty() || only == "raw") best_raw = std::min(best_raw, RawSha256(s, sink));
    if (only.empty() || only == "verify") {
      verify = VerifyAndAggregate(s, false);
      best_verify = std::min(best_verify, verify.secs);
    }
    if (only.empty() || only == "full") {
      full = VerifyAndAggregate(s, true);
      best_full = std::min(best_full, full.secs);
    }
    if (all || only == "json") {
      best_json = std::min(best_json, JsonLines(s, json_out.c_str(), false));
    }
    if (all) best_json_dom = std::min(best_json_dom, JsonLines(s, json_out.c_str(), true));
    if (all || only == "full-json") {
      full_json = VerifyAndAggregate(s, true, json_out.c_str());
      best_full_json = std::min(best_full_json, full_json.secs);
    }
  }
  if (!all) {
    const double secs = only == "raw"         ? best_raw
                        : only == "verify"    ? best_verify
                        : only == "json"      ? best_json
                        : only == "full-json" ? best_full_json
                                              : best_full;
    if (only == "json") {
      std::printf("json only: %.0f records/s\n", static_cast<double>(s.events.size()) / secs);
      return 0;
    }
    const PassResult& r = only == "verify" ? verify : only == "full-json" ? full_json : full;
    std::printf("%s only: %.0f records/s\n", only.c_str(),
                static_cast<double>(s.events.size()) / secs);
    return only == "raw" || (r.other == 0 && r.verified > 0) ? 0 : 1;
  }
  const double n = static_cast<double>(s.events.size());
  const double raw_rate = n / best_raw;
  const double verify_rate = n / best_verify;
  const double full_rate = n / best_full;
  const double json_rate = n / best_json;
  const double json_dom_rate = n / best_json_dom;
  const double full_json_rate = n / best_full_json;
  const auto row = [&](const char* path, double rate) {
    std::printf("%-44s %12.0f %9.1f%% %9.1f%%\n", path, rate, 100.0 * rate / raw_rate,
                100.0 * rate / verify_rate);
  };
  std::printf("\n%-44s %12s %10s %10s\n", "path (best of passes, one core, CPU time)", "records/s",
              "vs raw", "vs verify");
  row("raw OpenSSL SHA-256 chain step", raw_rate);
  row("decode + verify", verify_rate);
  row("decode + verify + aggregate", full_rate);
  row("decode + JSON lines (LineWriter, to file)", json_rate);
  row("  the same through nlohmann's DOM (before)", json_dom_rate);
  row("decode + verify + aggregate + JSON lines", full_json_rate);
  std::printf("\nJSON lines written to %s; the direct writer is %.1fx nlohmann's DOM\n",
              json_out.c_str(), json_rate / json_dom_rate);
  std::printf("checkpoints: %llu verified, %llu other; %llu events chained; max RSS %ld KB\n",
              static_cast<unsigned long long>(full.verified),
              static_cast<unsigned long long>(full.other),
              static_cast<unsigned long long>(full.chained), MaxRssKb());
  std::printf("targets: verify + aggregate >= 2000000 records/s: %s; >= 50%% of raw SHA-256: %s; "
              "JSON lines >= 1000000 records/s: %s\n",
              full_rate >= 2e6 ? "met" : "NOT met",
              full_rate >= 0.5 * raw_rate ? "met" : "NOT met",
              json_rate >= 1e6 ? "met" : "NOT met");
  // Every checkpoint of an honest stream must verify, or the rate is meaningless.
  return full.other == 0 && verify.other == 0 && full_json.other == 0 && full.verified > 0 ? 0
                                                                                            : 1;
}
