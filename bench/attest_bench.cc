// Quote checks per second on one core, side by side with the raw ECDSA
// P-256 verification (SHA-256 of the attest + verify, OpenSSL EVP with a
// ready key) that a quote check cannot avoid: the ratio says what the
// checks cost on top of the signature.
//
// The quote is made here, not by a TPM: a TPMS_ATTEST of type QUOTE over
// two SHA-256 PCRs with a 32-byte nonce, marshalled with tss2-mu and signed
// by an OpenSSL P-256 key whose public area is a restricted ECDSA-SHA256
// TPMT_PUBLIC. Byte for byte what a TPM's quote looks like to the verifier.
//
// Then the verifier's two budgets (issue #11), each next to the raw
// primitive it cannot avoid, in the same run:
//   - log replay: records/s of the pure engine (records::DecodeStream +
//     verify::StreamVerifier, the IMA anchor check, as VerifyEvidence runs
//     it) over a module stream of realistic events (execs, exits, forks,
//     samples, the mix of vigil-bench-verify) with a signed checkpoint every
//     4096 events, next to raw SHA-256 of the chain over the same bytes
//     (one EVP context);
//   - evidence/s: attest::VerifyEvidence on a sequence of evidences as a
//     node sends them every round (a quote of PCR 10 over the verifier's
//     nonce, 300 events and one signed checkpoint, IMA's new entries: the
//     checkpoint's and two file measurements, after 3000 measured at boot),
//     the node state carried from one to the next, next to raw ECDSA
//     verify; the same evidences in version 1 (IMA's whole list each time,
//     replayed to the stored point: what each evidence cost before the
//     incremental replay, plus that check); and the service's own
//     work per evidence apart (the evidence's JSON and CBOR parse, the
//     state's JSON both ways, the atomic state file write with fsync, and
//     with fdatasync and no directory sync);
//   - the service path: vigil-verifier serve's IssueNonce then Dispatch of
//     the pushed bytes (parse, nonce, VerifyEvidence, state file written),
//     JSON and CBOR, nonces in nonces.json or in memory, per CPU second and
//     per wall second, next to VerifyEvidence in the same run.
// The quotes and the checkpoint signatures are made here with OpenSSL P-256
// keys in the TPM's formats (ModuleSim signs checkpoints as the module's
// TPM key does).
//
// Run: build/bench/vigil-bench-attest [--seconds S (default 2 per case)]
//      [--evidence-only: VerifyEvidence and the service path alone]
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sched.h>
#include <time.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>


#include "dispatch.h"
#include "vigil/sim/ima_sim.h"
#include "vigil/sim/module_sim.h"
#include "service.h"
#include "state.h"
#include "vigil/attest/evidence.h"
#include "vigil/attest/quote.h"
#include "vigil/attest/verifier.h"
#include "vigil/ima.h"
#include "vigil/records.h"
#include "vigil/tpm_object.h"
#include "vigil/verify.h"
#include "vigil/cli_parse.h"
#include "vigil/version.h"

namespace {

using vigil::attest::PcrSelection;
using vigil::attest::PcrValue;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vigil-bench-attest: %s\n", what.c_str());
  std::exit(1);
}

// This thread's CPU time: preemption by other work on a shared machine
// does not count against the path that was running.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` in batches until `seconds` of CPU time passed; ops per second.
double Rate(double seconds, const std::function<void()>& op) {
  for (int i = 0; i < 100; ++i) op();  // warm up
  uint64_t n = 0;
  const double start = CpuSeconds();
  double now = start;
  while (now - start < seconds) {
    for (int i = 0; i < 200; ++i) op();
    n += 200;
    now = CpuSeconds();
  }
  return static_cast<double>(n) / (now - start);
}

struct Fixture {
  EVP_PKEY* key = nullptr;
  vigil::tpmobj::PublicArea ak;
  std::vector<uint8_t> attest;
  std::vector<uint8_t> signature;
  std::vector<uint8_t> nonce;
  std::vector<PcrSelection> selection;
  std::vector<PcrValue> values;
  std::vector<uint8_t> raw_der;  // the same signature as OpenSSL's DER
};

Fixture Make() {
  Fixture f;
  f.key = EVP_EC_gen("P-256");
  if (!f.key) Die("EVP_EC_gen");
  uint8_t point[65];
  size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(f.key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                      &point_len) != 1 ||
      point_len != 65) {
    Die("public point");
  }
  TPMT_PUBLIC pub{};
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                         TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH;
  pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  pub.unique.ecc.x.size = 32;
  std::memcpy(pub.unique.ecc.x.buffer, point + 1, 32);
  pub.unique.ecc.y.size = 32;
  std::memcpy(pub.unique.ecc.y.buffer, point + 33, 32);
  std::vector<uint8_t> pub_bytes(sizeof(TPMT_PUBLIC));
  size_t off = 0;
  if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub, pub_bytes.data(), pub_bytes.size(), &off) != 0) {
    Die("marshal public");
  }
  pub_bytes.resize(off);
  auto area = vigil::tpmobj::ParseTpmtPublic(pub_bytes);
  if (!area.ok()) Die(area.status().ToString());
  f.ak = *area;

  f.nonce.assign(32, 0x4e);
  f.selection = {{TPM2_ALG_SHA256, {16, 23}}};
  f.values = {{TPM2_ALG_SHA256, 16, vigil::crypto::Digest(32, 0x16)},
              {TPM2_ALG_SHA256, 23, vigil::crypto::Digest(32, 0x23)}};
  std::vector<uint8_t> both(f.values[0].value);
  both.insert(both.end(), f.values[1].value.begin(), f.values[1].value.end());
  auto pcr_digest = vigil::crypto::Hash(TPM2_ALG_SHA256, both);

  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.qualifiedSigner.size = 34;
  a.extraData.size = 32;
  std::memcpy(a.extraData.buffer, f.nonce.data(), 32);
  a.clockInfo = {123456789, 1, 0, TPM2_YES};
  a.firmwareVersion = 0x2000000000000ull;
  a.attested.quote.pcrSelect.count = 1;
  a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
  a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
  a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[2] = 0x81;  // 16, 23
  a.attested.quote.pcrDigest.size = 32;
  std::memcpy(a.attested.quote.pcrDigest.buffer, pcr_digest->data(), 32);
  f.attest.resize(sizeof(TPMS_ATTEST));
  off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, f.attest.data(), f.attest.size(), &off) != 0) {
    Die("marshal attest");
  }
  f.attest.resize(off);

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t der_len = 128;
  std::vector<uint8_t> der(der_len);
  if (EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, f.key, nullptr) != 1 ||
      EVP_DigestSign(ctx, der.data(), &der_len, f.attest.data(), f.attest.size()) != 1) {
    Die("sign");
  }
  EVP_MD_CTX_free(ctx);
  const uint8_t* p = der.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  if (!es) Die("d2i_ECDSA_SIG");
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  BN_bn2binpad(ECDSA_SIG_get0_r(es), sig.signature.ecdsa.signatureR.buffer, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), sig.signature.ecdsa.signatureS.buffer, 32);
  ECDSA_SIG_free(es);
  f.signature.resize(sizeof(TPMT_SIGNATURE));
  off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, f.signature.data(), f.signature.size(), &off) != 0) {
    Die("marshal signature");
  }
  f.signature.resize(off);
  f.raw_der = std::vector<uint8_t>(der.begin(), der.begin() + static_cast<long>(der_len));
  return f;
}

// A TPM2_Quote of SHA-256 PCR 10 holding `pcr10`, over `nonce`, at
// `clock`, signed by `key` (ECDSA-SHA256), as TPM2_Quote marshals it.
void SoftwareQuote(EVP_PKEY* key, std::span<const uint8_t> nonce,
                   const vigil::crypto::Digest& pcr10, uint64_t clock, std::vector<uint8_t>* attest,
                   std::vector<uint8_t>* signature) {
  TPMS_ATTEST a{};
  a.magic = TPM2_GENERATED_VALUE;
  a.type = TPM2_ST_ATTEST_QUOTE;
  a.qualifiedSigner.size = 34;
  a.extraData.size = static_cast<UINT16>(nonce.size());
  std::memcpy(a.extraData.buffer, nonce.data(), nonce.size());
  a.clockInfo = {clock, 1, 0, TPM2_YES};
  a.firmwareVersion = 0x2000000000000ull;
  a.attested.quote.pcrSelect.count = 1;
  a.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
  a.attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
  a.attested.quote.pcrSelect.pcrSelections[0].pcrSelect[1] = 0x04;  // PCR 10
  auto digest = vigil::crypto::Hash(TPM2_ALG_SHA256, pcr10);
  a.attested.quote.pcrDigest.size = 32;
  std::memcpy(a.attested.quote.pcrDigest.buffer, digest->data(), 32);
  attest->assign(sizeof(TPMS_ATTEST), 0);
  size_t off = 0;
  if (Tss2_MU_TPMS_ATTEST_Marshal(&a, attest->data(), attest->size(), &off) != 0) Die("attest");
  attest->resize(off);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t der_len = 128;
  std::vector<uint8_t> der(der_len);
  if (EVP_DigestSignInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, key, nullptr) != 1 ||
      EVP_DigestSign(ctx, der.data(), &der_len, attest->data(), attest->size()) != 1) {
    Die("sign");
  }
  EVP_MD_CTX_free(ctx);
  const uint8_t* p = der.data();
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len));
  if (!es) Die("d2i_ECDSA_SIG");
  TPMT_SIGNATURE sig{};
  sig.sigAlg = TPM2_ALG_ECDSA;
  sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
  sig.signature.ecdsa.signatureR.size = 32;
  sig.signature.ecdsa.signatureS.size = 32;
  BN_bn2binpad(ECDSA_SIG_get0_r(es), sig.signature.ecdsa.signatureR.buffer, 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), sig.signature.ecdsa.signatureS.buffer, 32);
  ECDSA_SIG_free(es);
  signature->assign(sizeof(TPMT_SIGNATURE), 0);
  off = 0;
  if (Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, signature->data(), signature->size(), &off) != 0) {
    Die("marshal signature");
  }
  signature->resize(off);
}

template <typename T>
T Event(uint16_t type, uint32_t agent) {
  T e;
  std::memset(&e, 0, sizeof(e));
  e.hdr.type = type;
  e.hdr.agent_id = agent;
  return e;
}

// The node: a module (anchor=ima, producers sealed) committing the event
// mix of vigil-bench-verify, IMA's list with its checkpoints, vigild's
// measurement and other files.
struct Node {
  vigil::sim::ModuleSim sim{0x5a};
  vigil::sim::ImaSim ima;
  uint64_t n = 0;
  size_t ima_done = 0;

  // `boot_files`: file measurements IMA holds before the module loads (a
  // real node's list has thousands).
  explicit Node(size_t boot_files = 0) {
    sim.set_anchor(VIGIL_ANCHOR_IMA);
    for (uint32_t kind : {VIGIL_MEASURE_MODULE, VIGIL_MEASURE_PARAMS}) {
      vigil_log_measure m;
      std::memset(&m, 0, sizeof(m));
      vigil::sim::ModuleSim::Header(m.hdr, VIGIL_LOG_MEASURE, sizeof(m), sim.NextLogSeq());
      m.kind = kind;
      m.pcr = 10;
      std::memset(m.digest, kind == VIGIL_MEASURE_MODULE ? 0x11 : 0x22, sizeof(m.digest));
      sim.LogRecord(*vigil::records::Record::FromStruct(m));
    }
    sim.SealProducers(0x33);
    ima.BootAggregate();
    for (size_t i = 0; i < boot_files; ++i) ima.File("/usr/lib/boot/file" + std::to_string(i));
    ima.File("/usr/sbin/vigild");
    MeasureModule();
  }
  // The next event of the mix, committed.
  vigil::records::Record Commit() {
    ++n;
    const uint32_t agent = 1 + static_cast<uint32_t>((n / 10) % 64);
    switch (n % 10) {
      case 0: {
        auto e = Event<vigil_ev_exec>(VIGIL_EV_EXEC, agent);
        e.pid = static_cast<uint32_t>(n);
        std::snprintf(e.filename, sizeof(e.filename), "/usr/bin/tool%u", agent % 8);
        return sim.CommitEvent(e);
      }
      case 1:
      case 2: {
        auto x = Event<vigil_ev_exit>(VIGIL_EV_EXIT, agent);
        x.lifetime_ns = 50'000'000 + (n % 97) * 100'000;
        x.utime_ns = 2'000'000 + (n % 13) * 10'000;
        x.maxrss_kb = 4096 + n % 64;
        return sim.CommitEvent(x);
      }
      case 3:
        return sim.CommitEvent(Event<vigil_ev_fork>(VIGIL_EV_FORK, agent));
      default: {
        auto s = Event<vigil_ev_sample>(VIGIL_EV_SAMPLE, agent);
        s.flags = VIGIL_SAMPLE_F_SYSCALLS;
        s.interval_ns = 20'000'000;
        s.syscalls = 1000 + n % 50;
        return sim.CommitEvent(s);
      }
    }
  }
  // The module's new anchored records into IMA's list.
  void MeasureModule() {
    ima.Module(sim, ima_done);
    ima_done = sim.log().size();
  }
};

std::vector<uint8_t> Concat(const std::vector<vigil::records::Record>& recs, size_t from = 0) {
  std::vector<uint8_t> out;
  for (size_t i = from; i < recs.size(); ++i) {
    out.insert(out.end(), recs[i].bytes().begin(), recs[i].bytes().end());
  }
  return out;
}

std::string Hex(std::span<const uint8_t> b) { return vigil::crypto::ToHex(b); }

vigil::attest::Policy BenchPolicy() {
  vigil::attest::Policy policy;
  policy.anchor = VIGIL_ANCHOR_IMA;
  policy.module_digests = {std::string(64, '1')};
  policy.params_digests = {std::string(64, '2')};
  policy.producer_set_digests = {std::string(64, '3')};
  const std::string vigild = "/usr/sbin/vigild";  // ImaSim: a file's digest is H(path)
  policy.collector_digests = {Hex(*vigil::crypto::Hash(
      TPM2_ALG_SHA256,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(vigild.data()), vigild.size())))};
  return policy;
}

// This thread's CPU seconds around `op`, run once.
double Timed(const std::function<void()>& op) {
  const double t0 = CpuSeconds();
  op();
  return CpuSeconds() - t0;
}

struct ReplayFigures {
  double records_per_s = 0;
  double raw_sha256_per_s = 0;
  size_t events = 0;
  size_t checkpoints = 0;
  size_t bytes = 0;
};

// Log replay: the pure engine over `events` events with a signed
// checkpoint every `per_checkpoint`, IMA anchor checked, next to raw
// SHA-256 of the chain over the same bytes.
ReplayFigures ReplayBench(double seconds, size_t events, size_t per_checkpoint) {
  Node node;
  std::vector<vigil::records::Record> evs;
  evs.reserve(events);
  for (size_t i = 1; i <= events; ++i) {
    evs.push_back(node.Commit());
    if (i % per_checkpoint == 0 || i == events) node.sim.Checkpoint();
  }
  node.MeasureModule();
  const std::vector<uint8_t> event_bytes = Concat(evs);
  const std::vector<uint8_t> log_bytes = Concat(node.sim.log());
  auto ima_log = vigil::ima::ImaLog::Create({TPM2_ALG_SHA256});
  if (!ima_log.ok() || !ima_log->Append(node.ima.log).ok()) Die("ima log");
  auto prefix = ima_log->MatchPcr10({{TPM2_ALG_SHA256, node.ima.pcr10.at(TPM2_ALG_SHA256)}});
  if (!prefix.ok()) Die("ima prefix");
  const vigil::verify::Anchor start = node.sim.StartAnchor();
  const vigil::chain::InstanceId instance = node.sim.instance();

  size_t verified = 0;
  const auto replay = [&] {
    auto log = vigil::records::DecodeStream(log_bytes);
    if (!log.ok()) Die("decode");
    // VerifyEvidence's own check pass over the events (decoded, not kept).
    for (size_t off = 0; off < event_bytes.size();) {
      auto rec = vigil::records::Record::Decode(std::span<const uint8_t>(event_bytes).subspan(off));
      if (!rec.ok()) Die("decode");
      off += rec->bytes().size();
    }
    vigil::verify::VerifierOptions options;
    options.module_anchor = VIGIL_ANCHOR_IMA;
    options.checkpoint_wait_ns = 0;
    options.ima_check = [&](const std::vector<vigil::records::Record>& v) {
      return ima_log->CheckModuleRecords(v, instance, *prefix);
    };
    vigil::verify::StreamVerifier verifier(start, std::move(options));
    if (!vigil::attest::FeedSegment(verifier, event_bytes, *log).ok()) Die("feed");
    verified = 0;
    for (const auto& v : verifier.TakeVerdicts()) {
      if (v.verdict != vigil::verify::Verdict::kVerified) Die("replay verdict: " + v.reason);
      ++verified;
    }
  };
  replay();
  ReplayFigures f;
  f.events = events;
  f.checkpoints = verified;
  f.bytes = event_bytes.size();
  uint64_t passes = 0;
  double spent = 0;
  while (spent < seconds) {
    spent += Timed(replay);
    ++passes;
  }
  f.records_per_s = static_cast<double>(passes * events) / spent;

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  uint8_t head[32] = {};
  unsigned int len = 0;
  passes = 0;
  spent = 0;
  while (spent < seconds) {
    spent += Timed([&] {
      for (const vigil::records::Record& e : evs) {
        EVP_DigestInit_ex2(ctx, md, nullptr);
        EVP_DigestUpdate(ctx, head, sizeof(head));
        EVP_DigestUpdate(ctx, e.bytes().data(), e.bytes().size());
        EVP_DigestFinal_ex(ctx, head, &len);
      }
    });
    ++passes;
  }
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  f.raw_sha256_per_s = static_cast<double>(passes * events) / spent;
  return f;
}

struct EvidenceFigures {
  double evidence_per_s = 0;
  double whole_list_per_s = 0;   // version 1: IMA's whole list in every evidence
  size_t ima_entries = 0;        // IMA's list at the last round
  double json_parse_per_s = 0;   // ParseEvidence of the JSON text
  double state_json_per_s = 0;   // SerializeNodeState + ParseNodeState
  double state_write_per_s = 0;  // StateDir::WriteAtomic (write, fsync, rename, fsync dir), CPU
  double state_write_wall_ms = 0;
  double cbor_parse_per_s = 0;     // ParseEvidence of the CBOR bytes
  double state_replace_per_s = 0;  // write, fdatasync, rename (no directory fsync), CPU
  double state_replace_wall_ms = 0;
  struct Service {
    const char* what;
    double cpu_per_s = 0;   // evidences per CPU second of this thread
    double wall_per_s = 0;  // evidences per second of wall time (the service's steps only)
  };
  std::vector<Service> service;
  size_t cbor_bytes = 0;
  size_t evidence_bytes = 0;
  size_t state_bytes = 0;
};

// The verifier service's path for one push, as `serve` runs it: the nonce
// issued (IssueNonce), then the pushed bytes dispatched (verifier::Dispatch:
// parse, nonce consumed, VerifyEvidence, state file written), on a state
// directory in /tmp. The node's part (quote over the issued nonce, encoding)
// is not timed. CPU time of this thread and wall time of the timed steps.
struct ServiceRound {
  vigil::attest::Evidence ev;  // its nonce and quote are replaced each round
  uint64_t clock = 0;
};

EvidenceFigures::Service ServiceBench(const char* what, double seconds, const Fixture& ak,
                                      const vigil::attest::Policy& policy,
                                      const vigil::attest::NodeState& start,
                                      const std::vector<ServiceRound>& rounds, bool cbor,
                                      vigil::verifier::NonceStore store, bool shape_pass,
                                      const char* base = "/tmp") {
  std::string tmpl = std::string(base) + "/vigil-bench-service-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) Die(std::string("mkdtemp in ") + base);
  const std::string dir = tmpl;
  auto service = vigil::verifier::Service::Open(dir, policy, store);
  if (!service.ok()) Die(service.status().ToString());
  std::mutex mu;
  const vigil::verifier::EnrolOptions enrol;
  const std::string start_text = vigil::attest::SerializeNodeState(start);
  double cpu = 0, wall = 0;
  uint64_t decided = 0;
  while (cpu < seconds || decided < 2 * rounds.size()) {
    {  // the node's state at the start of the sequence (not timed)
      auto nd = vigil::daemon::StateDir::Open(dir + "/nodes/" + start.node);
      if (!nd.ok() || !nd->WriteAtomic("state.json", start_text).ok()) Die("state reset");
    }
    for (const ServiceRound& r : rounds) {
      const auto step = [&](const std::function<void()>& op) {
        const auto w0 = std::chrono::steady_clock::now();
        cpu += Timed(op);
        wall += std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      };
      std::string answer;
      step([&] {
        auto issued = service->IssueNonce(start.node);
        if (!issued.ok()) Die("IssueNonce: " + issued.status().ToString());
        answer = std::move(*issued);
      });
      vigil::attest::Evidence ev = r.ev;
      ev.nonce =
          *vigil::crypto::FromHex(nlohmann::json::parse(answer).at("nonce").get<std::string>());
      SoftwareQuote(ak.key, ev.nonce, ev.pcrs.at(0).value, r.clock, &ev.quote.attest,
                    &ev.quote.signature);
      const std::string body =
          cbor ? vigil::attest::SerializeEvidenceCbor(ev) : vigil::attest::SerializeEvidence(ev);
      step([&] {
        // The dispatcher before this change lexed JSON evidence twice.
        if (shape_pass && !vigil::verifier::CheckJsonShape(body).ok()) Die("shape");
        const vigil::verifier::Reply reply =
            vigil::verifier::Dispatch(*service, mu, enrol, nullptr, "evidence", body);
        if (reply.status != 200 || reply.body.find("\"trusted\":true") == std::string::npos) {
          Die(std::string("service: ") + what + ": " + reply.body.substr(0, 300));
        }
      });
      ++decided;
    }
  }
  std::filesystem::remove_all(dir);
  return {what, static_cast<double>(decided) / cpu, static_cast<double>(decided) / wall};
}

// A sequence of evidences as a node sends them round after round, decided
// one after the other with the state carried.
EvidenceFigures EvidenceBench(double seconds, const Fixture& ak, size_t rounds,
                              size_t events_per_round, size_t boot_files) {
  Node node(boot_files);
  const vigil::attest::Policy policy = BenchPolicy();
  // The state after the instance's first evidence (its MEASURE and KEY
  // records verified, its key certified): what every later round meets.
  vigil::attest::NodeState start;
  start.node = "00aa11bb";
  start.ak = ak.ak;
  start.instance_id.assign(node.sim.instance().begin(), node.sim.instance().end());
  start.module_key = node.sim.key();
  start.anchor = node.sim.StartAnchor();
  start.next_log_seq = node.sim.log().back().seq() + 1;
  auto entries = vigil::ima::ParseBinaryLog(node.ima.log);
  vigil::attest::ImaPoint point;
  point.reset_count = 1;
  point.entries = entries->size();
  point.pcr10[TPM2_ALG_SHA256] = node.ima.pcr10.at(TPM2_ALG_SHA256);
  point.instances.push_back(
      {Hex(std::span<const uint8_t>(node.sim.instance().data(), 4)), boot_files + 2, 0, false});
  point.collector_digests = policy.collector_digests;
  start.ima = point;

  struct Round {
    vigil::attest::Evidence ev;
    vigil::attest::Evidence v1;  // the same with IMA's whole list (version 1)
    std::vector<uint8_t> nonce;
  };
  std::vector<Round> seq;
  uint64_t from_seq = start.next_log_seq;
  uint64_t events_after = 0;
  size_t ima_from = point.entries;
  for (size_t r = 0; r < rounds; ++r) {
    std::vector<vigil::records::Record> evs;
    for (size_t i = 0; i < events_per_round; ++i) evs.push_back(node.Commit());
    const size_t log_before = node.sim.log().size();
    node.sim.Checkpoint();
    node.MeasureModule();
    node.ima.File("/usr/bin/job" + std::to_string(r));
    node.ima.File("/etc/job" + std::to_string(r) + ".conf");
    Round round;
    round.nonce.assign(32, static_cast<uint8_t>(r));
    round.nonce[31] = 0xee;
    vigil::attest::Evidence& ev = round.ev;
    ev.version = vigil::attest::kEvidenceVersion;
    ev.node = start.node;
    ev.nonce = round.nonce;
    const vigil::crypto::Digest pcr10 = node.ima.pcr10.at(TPM2_ALG_SHA256);
    SoftwareQuote(ak.key, round.nonce, pcr10, 1'000'000 + r * 5000, &ev.quote.attest,
                  &ev.quote.signature);
    ev.pcrs = {{TPM2_ALG_SHA256, vigil::ima::kImaPcr, pcr10}};
    ev.anchor = vigil::attest::AnchorKind::kIma;
    ev.log.from_seq = from_seq;
    ev.log.records = Concat(node.sim.log(), log_before);
    ev.events_after = events_after;
    ev.events = Concat(evs);
    auto offset = vigil::ima::EntryOffset(node.ima.log, ima_from);
    if (!offset.ok()) Die("ima offset");
    ev.ima = vigil::attest::Evidence::Ima{
        ima_from, std::vector<uint8_t>(node.ima.log.begin() + static_cast<ptrdiff_t>(*offset),
                                       node.ima.log.end())};
    std::memcpy(ev.module.instance.data(), node.sim.instance().data(), 16);
    ev.module.banks = {TPM2_ALG_SHA256};
    from_seq = node.sim.log().back().seq() + 1;
    events_after = evs.back().seq();
    ima_from = vigil::ima::ParseBinaryLog(node.ima.log)->size();
    round.v1 = ev;
    round.v1.version = 1;
    round.v1.ima = vigil::attest::Evidence::Ima{0, node.ima.log};
    seq.push_back(std::move(round));
  }

  // What is timed passes.
  vigil::attest::NodeState state = start;
  for (const Round& r : seq) {
    auto out = vigil::attest::VerifyEvidence(policy, state, r.ev, r.nonce, 1);
    if (!out.trusted) Die("evidence not trusted: " + vigil::attest::ResultJson(out));
    state = std::move(out.next);
  }

  EvidenceFigures f;
  uint64_t decided = 0;
  double spent = 0;
  while (spent < seconds) {
    spent += Timed([&] {
      vigil::attest::NodeState s = start;
      for (const Round& r : seq) {
        auto out = vigil::attest::VerifyEvidence(policy, s, r.ev, r.nonce, 1);
        if (!out.trusted) Die("untrusted in the timed loop");
        s = std::move(out.next);
      }
    });
    decided += seq.size();
  }
  f.evidence_per_s = static_cast<double>(decided) / spent;
  f.ima_entries = ima_from;
  decided = 0;
  spent = 0;
  while (spent < seconds) {
    spent += Timed([&] {
      vigil::attest::NodeState s = start;
      for (const Round& r : seq) {
        auto out = vigil::attest::VerifyEvidence(policy, s, r.v1, r.nonce, 1);
        if (!out.trusted) Die("untrusted v1: " + vigil::attest::ResultJson(out));
        s = std::move(out.next);
      }
    });
    decided += seq.size();
  }
  f.whole_list_per_s = static_cast<double>(decided) / spent;

  // The service's own work per evidence.
  std::vector<std::string> texts;
  for (const Round& r : seq) texts.push_back(vigil::attest::SerializeEvidence(r.ev));
  f.evidence_bytes = texts.back().size();
  f.json_parse_per_s = Rate(seconds, [&, i = size_t{0}]() mutable {
    if (!vigil::attest::ParseEvidence(texts[i++ % texts.size()]).ok()) Die("parse");
  });
  const std::string state_text = vigil::attest::SerializeNodeState(state);
  f.state_bytes = state_text.size();
  f.state_json_per_s = Rate(seconds, [&] {
    auto parsed = vigil::attest::ParseNodeState(state_text);
    if (!parsed.ok() || vigil::attest::SerializeNodeState(*parsed).empty()) Die("state json");
  });
  char tmpl[] = "/tmp/vigil-bench-attest-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  auto dir = vigil::daemon::StateDir::Open(tmpl);
  if (!dir.ok()) Die(dir.status().ToString());
  uint64_t writes = 0;
  const auto wall0 = std::chrono::steady_clock::now();
  const double cpu0 = CpuSeconds();
  while (writes < 50 || std::chrono::steady_clock::now() - wall0 < std::chrono::seconds(1)) {
    if (!dir->WriteAtomic("state.json", state_text).ok()) Die("state write");
    ++writes;
  }
  const double cpu = CpuSeconds() - cpu0;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  f.state_write_per_s = static_cast<double>(writes) / cpu;
  f.state_write_wall_ms = wall * 1000.0 / static_cast<double>(writes);
  {  // the alternative: write, fdatasync, rename; the directory not synced
    const std::string tmp = std::string(tmpl) + "/state.json.tmp";
    const std::string file = std::string(tmpl) + "/state.json";
    uint64_t n = 0;
    const auto w0 = std::chrono::steady_clock::now();
    const double c0 = CpuSeconds();
    while (n < 50 || std::chrono::steady_clock::now() - w0 < std::chrono::seconds(1)) {
      const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0 ||
          ::write(fd, state_text.data(), state_text.size()) !=
              static_cast<ssize_t>(state_text.size()) ||
          ::fdatasync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), file.c_str()) != 0) {
        Die("state replace");
      }
      ++n;
    }
    f.state_replace_per_s = static_cast<double>(n) / (CpuSeconds() - c0);
    f.state_replace_wall_ms =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count() * 1000.0 /
        static_cast<double>(n);
  }
  std::filesystem::remove_all(tmpl);

  std::vector<std::string> cbors;
  for (const Round& r : seq) cbors.push_back(vigil::attest::SerializeEvidenceCbor(r.ev));
  f.cbor_bytes = cbors.back().size();
  f.cbor_parse_per_s = Rate(seconds, [&, i = size_t{0}]() mutable {
    if (!vigil::attest::ParseEvidence(cbors[i++ % cbors.size()]).ok()) Die("parse cbor");
  });

  // The service around VerifyEvidence: bytes of a push in, verdict out,
  // state persisted. Rounds with their clock (a quote is made per nonce).
  std::vector<ServiceRound> service_rounds;
  for (size_t r = 0; r < seq.size(); ++r) {
    service_rounds.push_back({seq[r].ev, 1'000'000 + r * 5000});
  }
  using vigil::verifier::NonceStore;
  f.service.push_back(ServiceBench("JSON, shape pass + parse, nonces in nonces.json (as before)",
                                   seconds, ak, policy, start, service_rounds, false,
                                   NonceStore::kFile, true));
  f.service.push_back(ServiceBench("JSON, one parse, nonces in memory", seconds, ak, policy, start,
                                   service_rounds, false, NonceStore::kMemory, false));
  f.service.push_back(ServiceBench("CBOR, nonces in memory (vigilctl attest push)", seconds, ak,
                                   policy, start, service_rounds, true, NonceStore::kMemory,
                                   false));
  // The same with the state directory on tmpfs: what the service costs
  // besides the disk's sync (not a deployment: nothing there survives).
  if (std::filesystem::is_directory("/dev/shm")) {
    f.service.push_back(ServiceBench("CBOR, nonces in memory, state on tmpfs (no disk)", seconds,
                                     ak, policy, start, service_rounds, true, NonceStore::kMemory,
                                     false, "/dev/shm"));
  }
  return f;
}

void PrintService(const EvidenceFigures& ev) {
  std::printf(
      "service: Dispatch of a push (bytes -> verdict, state persisted), IssueNonce included; "
      "JSON %zu bytes, CBOR %zu bytes\n",
      ev.evidence_bytes, ev.cbor_bytes);
  std::printf("  VerifyEvidence alone, same run                     %10.0f evidence/s\n",
              ev.evidence_per_s);
  for (const EvidenceFigures::Service& s : ev.service) {
    std::printf("  %-50s %10.0f evidence/s CPU  %8.0f /s wall\n", s.what, s.cpu_per_s,
                s.wall_per_s);
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 2.0;
  bool replay_only = false;
  bool evidence_only = false;
  CLI::App app{"vigil-bench-attest: quote checks, log replay and the verifier service on one core, "
                "beside raw ECDSA P-256 verification"};
  app.set_version_flag("--version", vigil::version::VersionText("vigil-bench-attest"));
  app.add_option("--seconds", seconds, "Seconds per measured loop")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  auto* replay = app.add_flag("--replay-only", replay_only, "The log replay alone (for a profiler)");
  app.add_flag("--evidence-only", evidence_only, "VerifyEvidence and the service around it")
      ->excludes(replay);
  if (auto exit_code = vigil::cli::Parse(app, argc, argv)) return *exit_code;
  // One core: the figures are per core.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  sched_setaffinity(0, sizeof(one), &one);

  if (replay_only) {
    const ReplayFigures rep = ReplayBench(seconds, 1u << 18, 4096);
    std::printf("replay %.0f records/s, raw SHA-256 %.0f records/s\n", rep.records_per_s,
                rep.raw_sha256_per_s);
    return 0;
  }
  Fixture f = Make();
  if (evidence_only) {
    const EvidenceFigures ev = EvidenceBench(seconds, f, 64, 300, 3000);
    std::printf("VerifyEvidence %.0f evidence/s (whole list %.0f/s)\n", ev.evidence_per_s,
                ev.whole_list_per_s);
    PrintService(ev);
    return 0;
  }
  // Sanity: what is timed passes.
  auto facts = vigil::attest::CheckQuote(f.ak, f.attest, f.signature, f.nonce);
  if (!facts.ok()) Die("CheckQuote: " + facts.status().ToString());
  if (!vigil::attest::CheckPcrs(*facts, f.selection, f.values).ok()) Die("CheckPcrs");

  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const double raw = Rate(seconds, [&] {
    if (EVP_DigestVerifyInit_ex(ctx, nullptr, "SHA256", nullptr, nullptr, f.key, nullptr) != 1 ||
        EVP_DigestVerify(ctx, f.raw_der.data(), f.raw_der.size(), f.attest.data(),
                         f.attest.size()) != 1) {
      Die("raw verify");
    }
  });
  EVP_MD_CTX_free(ctx);
  const double quote = Rate(seconds, [&] {
    if (!vigil::attest::CheckQuote(f.ak, f.attest, f.signature, f.nonce).ok()) Die("CheckQuote");
  });
  const double quote_pcrs = Rate(seconds, [&] {
    auto q = vigil::attest::CheckQuote(f.ak, f.attest, f.signature, f.nonce);
    if (!q.ok() || !vigil::attest::CheckPcrs(*q, f.selection, f.values).ok()) Die("checks");
  });
  TPMS_CLOCK_INFO prev = facts->clock;
  prev.clock -= 1000;
  const double clock = Rate(seconds, [&] {
    if (!vigil::attest::CheckClock(&prev, facts->clock).ok()) Die("CheckClock");
  });
  std::printf("attest bytes %zu, signature bytes %zu, one core, CPU time\n", f.attest.size(),
              f.signature.size());
  std::printf("raw ECDSA P-256 verify (SHA-256 + verify, key ready)  %10.0f /s\n", raw);
  std::printf("CheckQuote (parse, key from public area, verify)     %10.0f /s  (%.2fx raw)\n",
              quote, quote / raw);
  std::printf("CheckQuote + CheckPcrs (2 PCRs)                      %10.0f /s  (%.2fx raw)\n",
              quote_pcrs, quote_pcrs / raw);
  std::printf("CheckClock                                           %10.0f /s\n", clock);

  const ReplayFigures rep = ReplayBench(seconds, 1u << 18, 4096);
  std::printf("\nlog replay: %zu events (%zu bytes), %zu signed checkpoints, IMA anchor\n",
              rep.events, rep.bytes, rep.checkpoints);
  std::printf("raw SHA-256 chain (one EVP context, same bytes)      %10.0f records/s\n",
              rep.raw_sha256_per_s);
  std::printf(
      "decode + StreamVerifier (chain, signatures, IMA)     %10.0f records/s  (%.2fx raw)\n",
      rep.records_per_s, rep.records_per_s / rep.raw_sha256_per_s);

  const EvidenceFigures ev = EvidenceBench(seconds, f, 64, 300, 3000);
  std::printf(
      "\nevidence: 300 events + 1 signed checkpoint + 3 new IMA entries each (list of 3000+), "
      "state carried; JSON %zu bytes, state %zu bytes\n",
      ev.evidence_bytes, ev.state_bytes);
  std::printf("raw ECDSA P-256 verify                               %10.0f /s\n", raw);
  std::printf(
      "VerifyEvidence                                       %10.0f evidence/s  (%.2fx raw "
      "ECDSA; a floor of 2 ECDSA + 300 SHA-256: %.0f/s)\n",
      ev.evidence_per_s, ev.evidence_per_s / raw, 1.0 / (2.0 / raw + 300.0 / rep.raw_sha256_per_s));
  std::printf(
      "VerifyEvidence, version 1 (IMA's whole list, ~%zu entries) %10.0f evidence/s  "
      "(%.2fx raw ECDSA)\n",
      ev.ima_entries, ev.whole_list_per_s, ev.whole_list_per_s / raw);
  std::printf("  service: ParseEvidence (JSON)                      %10.0f /s\n",
              ev.json_parse_per_s);
  std::printf("  service: ParseEvidence (CBOR, %zu bytes)           %10.0f /s\n", ev.cbor_bytes,
              ev.cbor_parse_per_s);
  std::printf("  service: state JSON parse + serialize              %10.0f /s\n",
              ev.state_json_per_s);
  std::printf(
      "  service: state file write + fsync (CPU)            %10.0f /s  (wall %.2f ms each)\n",
      ev.state_write_per_s, ev.state_write_wall_ms);
  std::printf(
      "  service: state write + fdatasync + rename (CPU)    %10.0f /s  (wall %.2f ms each)\n",
      ev.state_replace_per_s, ev.state_replace_wall_ms);
  PrintService(ev);
  EVP_PKEY_free(f.key);
  return 0;
}
