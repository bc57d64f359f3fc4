// A software stand-in for vigil.ko's commit and checkpoint rules, to feed
// the verifier real-format streams: events committed into the chain,
// checkpoints linked by prev_digest and signed with an OpenSSL P-256 key the
// way the TPM signs (ECDSA over SHA-256 of the checkpoint record), or by an
// external signer (a TPM key). Used by the unit tests, the fuzz seeds, the
// benchmarks and the fleet node simulator (userspace/fleet-sim).
// Header-only. Thread-safety: a ModuleSim is not thread-safe.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_SIM_MODULE_SIM_H_
#define VIGIL_USERSPACE_LIB_VIGIL_SIM_MODULE_SIM_H_

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "vigil.h"
#include "vigil/chain.h"
#include "vigil/digest.h"
#include "vigil/records.h"
#include "vigil/replay.h"
#include "vigil/signature.h"
#include "vigil/verify.h"

namespace vigil::sim {

class ModuleSim {
 public:
  // `tpm` false: degraded mode, no KEY record (checkpoints say NO_TPM).
  // `base`: the log starts with a BASE record (one SHA-256 bank, PCRs at
  // zero) as the module's does, so it replays and Trim() works.
  explicit ModuleSim(uint8_t instance_byte = 0x5a, bool tpm = true, bool base = false) {
    if (base) log_.push_back(BaseRecord(1, 0, 0, crypto::Digest(32, 0), crypto::Digest(32, 0)));
    key_.reset(EVP_EC_gen("P-256"));
    if (!key_) throw std::runtime_error("EVP_EC_gen");
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    BN_bn2binpad(x, point_.x, 32);
    BN_bn2binpad(y, point_.y, 32);
    BN_free(x);
    BN_free(y);
    instance_.fill(instance_byte);
    head_ = *chain::InitialChain(instance_);
    tpm_ = tpm;
    if (!tpm) return;
    vigil_log_key key;
    std::memset(&key, 0, sizeof(key));
    Header(key.hdr, VIGIL_LOG_KEY, sizeof(key), log_seq_++);
    key.pcr = 11;
    key.curve = VIGIL_ECC_NIST_P256;
    key.sig_alg = VIGIL_ALG_ECDSA;
    std::memcpy(key.x, point_.x, 32);
    std::memcpy(key.y, point_.y, 32);
    log_.push_back(*records::Record::FromStruct(key));
  }

  const chain::InstanceId& instance() const { return instance_; }

  // Checkpoints from now on say `anchor` (enum vigil_anchor).
  void set_anchor(uint32_t anchor) { anchor_ = anchor; }

  // Signs with a key held elsewhere (a TPM) instead of the software key:
  // `sign` gets SHA-256 of the checkpoint and fills r and s. The KEY record
  // is rewritten to name `point`.
  using ExternalSigner = std::function<bool(const crypto::Sha256Digest& digest, uint8_t* r,
                                            uint8_t* s)>;
  void UseExternalKey(const crypto::EcPoint& point, ExternalSigner sign) {
    point_ = point;
    signer_ = std::move(sign);
    for (records::Record& rec : log_) {
      if (rec.type() != VIGIL_LOG_KEY) continue;
      vigil_log_key key = *rec.As<vigil_log_key>();
      std::memcpy(key.x, point.x, 32);
      std::memcpy(key.y, point.y, 32);
      rec = *records::Record::FromStruct(key);
    }
  }

  // The verifier's start before any event, with the key a trusted source
  // (GET_INFO) gives: none in degraded mode.
  verify::Anchor StartAnchor() const {
    verify::Anchor a;
    a.instance_id = instance_;
    a.chain_head = *chain::InitialChain(instance_);
    if (tpm_) a.key = point_;
    return a;
  }

  // Commits an exec event and returns it (as the ring buffer delivers it).
  records::Record Commit(uint32_t pid = 100) {
    vigil_ev_exec ev;
    std::memset(&ev, 0, sizeof(ev));
    Header(ev.hdr, VIGIL_EV_EXEC, sizeof(ev), ++seq_);
    ev.hdr.flags = VIGIL_REC_F_COMMITTED;
    ev.hdr.agent_id = 1;
    ev.pid = ev.tid = ev.old_pid = pid;
    std::strncpy(ev.comm, "worker", sizeof(ev.comm) - 1);
    std::strncpy(ev.filename, "/usr/bin/worker", sizeof(ev.filename) - 1);
    records::Record rec = *records::Record::FromStruct(ev);
    head_ = *crypto::Sha256({head_, rec.bytes()});
    return rec;
  }

  // Commits an event of any type as given (its header's type, agent and
  // payload kept; seq, size and the COMMITTED flag filled here).
  template <typename T>
  records::Record CommitEvent(T ev) {
    const uint32_t agent = ev.hdr.agent_id;
    Header(ev.hdr, ev.hdr.type, sizeof(T), ++seq_);
    ev.hdr.flags = VIGIL_REC_F_COMMITTED;
    ev.hdr.agent_id = agent;
    records::Record rec = *records::Record::FromStruct(ev);
    head_ = *crypto::Sha256({head_, rec.bytes()});
    return rec;
  }

  void AddDrops(uint64_t n) { drops_ += n; }
  // The module's liveness counters as the next checkpoint carries them.
  // `calls` runs of the producer of `role`, each on a firing of its
  // tracepoint (the module counts those as hits).
  void Alive(unsigned role, uint64_t calls) {
    alive_[role] += calls;
    hits_[role] += calls;
  }
  // Firings of the tracepoint that no producer saw (detached).
  void Fire(unsigned role, uint64_t n) { hits_[role] += n; }
  // Runs beyond the firings (the program attached a second time).
  void RunExtra(unsigned role, uint64_t n) { alive_[role] += n; }
  // A producer window opened and sealed, as the module logs them: a
  // WINDOW measurement, then the set's PRODUCERS measurement, each moving
  // the generation; the next checkpoints name the set's digest.
  void SealProducers(uint8_t digest_fill = 0) {
    OpenWindow();
    SealWindow(digest_fill);
  }
  void OpenWindow() {
    log_.push_back(MeasureRecord(VIGIL_MEASURE_WINDOW, "window pid=1 comm=vigild", 0xee));
    producers_gen_++;
    window_open_ = true;
  }
  // The module closed the window and is still measuring the set: a
  // checkpoint now has no window flag and the seal's records are not logged.
  void CloseWindowUnsealed() { window_open_ = false; }
  void SealWindow(uint8_t digest_fill) {
    log_.push_back(MeasureRecord(VIGIL_MEASURE_PRODUCERS, "producers n=3", digest_fill));
    producers_gen_++;
    window_open_ = false;
    std::memset(producers_digest_, digest_fill, sizeof(producers_digest_));
  }
  void Refuse(uint64_t n) { rejected_ += n; }
  // The public key as a PEM SubjectPublicKeyInfo (what `--key FILE` reads).
  std::string PublicPem() const {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key_.get());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    std::string pem(data, static_cast<size_t>(len));
    BIO_free(bio);
    return pem;
  }
  const crypto::EcPoint& key() const { return point_; }
  crypto::Sha256Digest head() const { return head_; }
  // Builds, signs and logs a checkpoint record as given (for forgeries).
  records::Record LogRecord(const records::Record& rec) {
    log_.push_back(rec);
    return rec;
  }
  uint64_t NextLogSeq() { return log_seq_++; }
  records::Record MeasureRecord(uint32_t kind, const char* name, uint8_t digest_fill) {
    vigil_log_measure m;
    std::memset(&m, 0, sizeof(m));
    Header(m.hdr, VIGIL_LOG_MEASURE, sizeof(m), log_seq_++);
    m.kind = kind;
    m.pcr = anchor_ == VIGIL_ANCHOR_IMA ? 10 : kPcrConfig;
    std::strncpy(m.name, name, sizeof(m.name) - 1);
    std::memset(m.digest, digest_fill, sizeof(m.digest));
    return *records::Record::FromStruct(m);
  }

  // Closes a checkpoint over the events since the last one; appends the
  // CHECKPOINT and SIGNATURE records to the log and returns both.
  std::vector<records::Record> Checkpoint(uint32_t sig_status = VIGIL_SIG_OK,
                                          uint32_t reason = VIGIL_CP_TIMER) {
    vigil_log_checkpoint cp;
    std::memset(&cp, 0, sizeof(cp));
    Header(cp.hdr, VIGIL_LOG_CHECKPOINT, sizeof(cp), log_seq_++);
    cp.first_seq = cp_last_ + 1;
    cp.last_seq = seq_;
    cp.drops_total = drops_;
    cp.reason = reason;
    cp.anchor = anchor_;
    std::memcpy(cp.alive, alive_, sizeof(cp.alive));
    std::memcpy(cp.hits, hits_, sizeof(cp.hits));
    cp.producers_gen = producers_gen_;
    if (window_open_) cp.cp_flags |= VIGIL_CP_F_WINDOW_OPEN;
    std::memcpy(cp.producers_digest, producers_digest_, sizeof(cp.producers_digest));
    cp.rejected_total = rejected_;
    std::memcpy(cp.chain_head, head_.data(), 32);
    std::memcpy(cp.prev_digest, prev_digest_.data(), 32);
    std::memcpy(cp.instance_id, instance_.data(), VIGIL_ID_LEN);
    records::Record cp_rec = *records::Record::FromStruct(cp);
    cp_last_ = seq_;
    prev_digest_ = *crypto::Sha256({cp_rec.bytes()});

    vigil_log_signature sig = Sign(cp_rec, sig_status);
    records::Record sig_rec = *records::Record::FromStruct(sig);
    log_.push_back(cp_rec);
    log_.push_back(sig_rec);
    return {cp_rec, sig_rec};
  }

  vigil_log_signature Sign(const records::Record& cp, uint32_t status = VIGIL_SIG_OK) {
    vigil_log_signature sig;
    std::memset(&sig, 0, sizeof(sig));
    Header(sig.hdr, VIGIL_LOG_SIGNATURE, sizeof(sig), log_seq_++);
    sig.checkpoint_seq = cp.seq();
    sig.status = status;
    if (status != VIGIL_SIG_OK) return sig;
    auto digest = *crypto::Sha256({cp.bytes()});
    std::memcpy(sig.digest, digest.data(), 32);
    if (signer_) {
      if (!signer_(digest, sig.r, sig.s)) throw std::runtime_error("external signer failed");
      return sig;
    }
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr);
    EVP_PKEY_sign_init(ctx);
    size_t len = 0;
    EVP_PKEY_sign(ctx, nullptr, &len, digest.data(), 32);
    std::vector<uint8_t> der(len);
    EVP_PKEY_sign(ctx, der.data(), &len, digest.data(), 32);
    EVP_PKEY_CTX_free(ctx);
    const uint8_t* p = der.data();
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(len));
    BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), sig.r, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), sig.s, 32);
    ECDSA_SIG_free(ecdsa);
    return sig;
  }

  // Every log record the module holds (KEY first, or BASE then KEY).
  const std::vector<records::Record>& log() const { return log_; }

  // VIGIL_IOC_TRIM as the module does it: drops the records with log seq <
  // `before_seq` and appends a BASE with the PCR values at the cut (the
  // replay of what it drops), first_kept_seq = before_seq. Needs `base`.
  // Returns the BASE record.
  records::Record Trim(uint64_t before_seq) {
    std::vector<records::Record> dropped;
    for (const records::Record& r : log_) {
      if (r.seq() < before_seq) dropped.push_back(r);
    }
    auto at_cut = replay::ReplayLog(dropped);
    if (!at_cut.ok()) throw std::runtime_error("Trim: " + at_cut.status().ToString());
    for (const records::Record& r : dropped) {
      trimmed_records_++;
      trimmed_bytes_ += r.bytes().size();
    }
    std::erase_if(log_, [before_seq](const records::Record& r) { return r.seq() < before_seq; });
    records::Record base = BaseRecord(log_seq_++, before_seq, trimmed_records_,
                                      at_cut->banks[0].config(), at_cut->banks[0].events());
    log_.push_back(base);
    return base;
  }
  // The TPM's pcr_config (`config`) or pcr_events as the held log replays.
  crypto::Digest Pcr(bool config) const {
    auto r = replay::ReplayLog(log_);
    if (!r.ok()) throw std::runtime_error("Pcr: " + r.status().ToString());
    return config ? r->banks[0].config() : r->banks[0].events();
  }
  static constexpr uint32_t kPcrConfig = 11;  // the KEY record's pcr

  // A record header as the module fills it.
  static void Header(vigil_rec_hdr& h, uint16_t type, uint32_t size, uint64_t seq) {
    h.type = type;
    h.version = type == VIGIL_LOG_CHECKPOINT ? VIGIL_CHECKPOINT_VERSION : 1;
    h.size = size;
    h.seq = seq;
    h.ts_ns = 1000 + seq;
  }
 private:
  struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  };


  records::Record BaseRecord(uint64_t log_seq, uint64_t first_kept, uint64_t trimmed,
                             const crypto::Digest& config, const crypto::Digest& events) {
    vigil_log_base b;
    std::memset(&b, 0, sizeof(b));
    Header(b.hdr, VIGIL_LOG_BASE, sizeof(b), log_seq);
    b.first_kept_seq = first_kept == 0 ? log_seq : first_kept;
    b.records_trimmed = trimmed;
    b.bytes_trimmed = trimmed_bytes_;
    b.nr_banks = 1;
    b.bank[0].alg = VIGIL_ALG_SHA256;
    std::memcpy(b.bank[0].config, config.data(), 32);
    std::memcpy(b.bank[0].events, events.data(), 32);
    if (log_seq >= log_seq_) log_seq_ = log_seq + 1;
    return *records::Record::FromStruct(b);
  }

  uint64_t trimmed_records_ = 0;
  uint64_t trimmed_bytes_ = 0;
  uint64_t alive_[VIGIL_PROD_SLOTS] = {};
  uint64_t hits_[VIGIL_PROD_SLOTS] = {};
  uint32_t producers_gen_ = 0;
  bool window_open_ = false;
  uint8_t producers_digest_[VIGIL_DIGEST_LEN] = {};
  uint64_t rejected_ = 0;
  std::unique_ptr<EVP_PKEY, PkeyFree> key_;
  crypto::EcPoint point_{};
  chain::InstanceId instance_{};
  crypto::Sha256Digest head_{};
  crypto::Sha256Digest prev_digest_{};
  uint64_t seq_ = 0;
  uint64_t cp_last_ = 0;
  uint64_t log_seq_ = 1;
  uint64_t drops_ = 0;
  bool tpm_ = true;
  std::vector<records::Record> log_;
  uint32_t anchor_ = VIGIL_ANCHOR_PCR;
  ExternalSigner signer_;
};

}  // namespace vigil::sim

#endif  // VIGIL_USERSPACE_LIB_VIGIL_SIM_MODULE_SIM_H_
