// Logs for the CEL-JSON export tests: a module log built the way vigil.ko
// writes it at load (BASE, identity and parameters MEASUREs, KEY, then
// checkpoints with their SIGNATUREs), and an IMA binary log the way IMA
// writes it (ima_fs.c), each with the extends the TPM saw, computed here
// with OpenSSL directly (not with the code under test) so a test can replay
// them into swtpm or compare.
#ifndef VIGIL_TESTS_UNIT_CEL_FIXTURES_H_
#define VIGIL_TESTS_UNIT_CEL_FIXTURES_H_

#include <openssl/evp.h>

#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "test_records.h"
#include "vigil.h"
#include "vigil/digest.h"
#include "vigil/records.h"

namespace vigil::testing {

inline std::vector<uint8_t> Md(uint16_t alg, std::span<const uint8_t> data) {
  const char* name = alg == VIGIL_ALG_SHA1     ? "SHA1"
                     : alg == VIGIL_ALG_SHA256 ? "SHA256"
                     : alg == VIGIL_ALG_SHA384 ? "SHA384"
                                               : "SHA512";
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_get_digestbyname(name), nullptr);
  out.resize(len);
  return out;
}

inline size_t MdSize(uint16_t alg) {
  return alg == VIGIL_ALG_SHA1     ? 20
         : alg == VIGIL_ALG_SHA256 ? 32
         : alg == VIGIL_ALG_SHA384 ? 48
                                   : 64;
}

// One TPM2_PCR_Extend: the digest for every bank.
struct PcrExtend {
  uint32_t pcr = 0;
  std::vector<std::pair<uint16_t, crypto::Digest>> digests;
};

// The PCR values `extends` give from `start` (zero where not given).
inline std::map<uint32_t, std::map<uint16_t, crypto::Digest>> ReplayExtends(
    const std::vector<PcrExtend>& extends,
    std::map<uint32_t, std::map<uint16_t, crypto::Digest>> start = {}) {
  for (const PcrExtend& e : extends) {
    for (const auto& [alg, d] : e.digests) {
      auto& v = start[e.pcr][alg];
      if (v.empty()) v.assign(MdSize(alg), 0);
      std::vector<uint8_t> both = v;
      both.insert(both.end(), d.begin(), d.end());
      v = Md(alg, both);
    }
  }
  return start;
}

class ModuleLogBuilder {
 public:
  // `config_start` / `events_start`: the PCR values the module found at load
  // (the BASE record's), per bank in `banks` order.
  ModuleLogBuilder(std::vector<uint16_t> banks, std::vector<crypto::Digest> config_start,
                   std::vector<crypto::Digest> events_start, bool anchor_ima,
                   uint32_t pcr_config = 16, uint32_t pcr_events = 23)
      : banks_(std::move(banks)),
        anchor_ima_(anchor_ima),
        pcr_config_(pcr_config),
        pcr_events_(pcr_events) {
    auto base = Blank<vigil_log_base>(VIGIL_LOG_BASE, seq_++);
    base.first_kept_seq = 1;
    base.nr_banks = static_cast<uint16_t>(banks_.size());
    for (size_t i = 0; i < banks_.size(); ++i) {
      base.bank[i].alg = banks_[i];
      std::memcpy(base.bank[i].config, config_start[i].data(), config_start[i].size());
      std::memcpy(base.bank[i].events, events_start[i].data(), events_start[i].size());
    }
    Add(base, std::nullopt);
    Measure(VIGIL_MEASURE_MODULE, "vigil 0.1.0 srcversion=TEST");
    Measure(VIGIL_MEASURE_PARAMS,
            "c=" + std::to_string(pcr_config) + " e=" + std::to_string(pcr_events) +
                (anchor_ima ? " a=ima" : " a=pcr") + " ms=1000 n=4096 r=0 cap=16777216");
    auto key = Blank<vigil_log_key>(VIGIL_LOG_KEY, seq_++);
    key.pcr = pcr_config;
    key.curve = VIGIL_ECC_NIST_P256;
    key.sig_alg = VIGIL_ALG_ECDSA;
    std::memset(key.x, 0x21, sizeof(key.x));
    std::memset(key.y, 0x43, sizeof(key.y));
    Add(key, pcr_config);
  }

  void Measure(uint32_t kind, const std::string& name) {
    auto m = MakeMeasure(seq_++, pcr_config_, name.c_str());
    m.kind = kind;
    Add(m, pcr_config_);
  }

  // A checkpoint over `events` more events, and its (unsigned) SIGNATURE.
  void Checkpoint(uint64_t events) {
    auto cp = Blank<vigil_log_checkpoint>(VIGIL_LOG_CHECKPOINT, seq_++);
    cp.first_seq = last_ + 1;
    last_ += events;
    cp.last_seq = last_;
    cp.reason = VIGIL_CP_TIMER;
    cp.anchor = anchor_ima_ ? VIGIL_ANCHOR_IMA : VIGIL_ANCHOR_PCR;
    std::memset(cp.chain_head, static_cast<int>(last_), sizeof(cp.chain_head));
    std::memset(cp.instance_id, 0x5a, sizeof(cp.instance_id));
    const records::Record& rec =
        Add(cp, anchor_ima_ ? std::nullopt : std::optional<uint32_t>(pcr_events_));
    checkpoints_.push_back(rec);
    auto sig = Blank<vigil_log_signature>(VIGIL_LOG_SIGNATURE, seq_++);
    sig.checkpoint_seq = cp.hdr.seq;
    sig.status = VIGIL_SIG_NO_KEY;
    Add(sig, std::nullopt);
  }

  const std::vector<uint8_t>& bytes() const { return bytes_; }
  const std::vector<records::Record>& records() const { return records_; }
  // The records measured into IMA with anchor=ima (MEASURE, KEY, CHECKPOINT).
  std::vector<records::Record> Anchored() const {
    std::vector<records::Record> out;
    for (const auto& r : records_) {
      if (r.type() == VIGIL_LOG_MEASURE || r.type() == VIGIL_LOG_KEY ||
          r.type() == VIGIL_LOG_CHECKPOINT) {
        out.push_back(r);
      }
    }
    return out;
  }
  const std::vector<PcrExtend>& extends() const { return extends_; }

 private:
  template <typename T>
  const records::Record& Add(const T& rec, std::optional<uint32_t> pcr) {
    Append(bytes_, rec);
    records_.push_back(ToRecord(rec));
    if (pcr) {
      PcrExtend e;
      e.pcr = *pcr;
      const auto* p = reinterpret_cast<const uint8_t*>(&rec);
      for (uint16_t alg : banks_) e.digests.emplace_back(alg, Md(alg, {p, sizeof(T)}));
      extends_.push_back(std::move(e));
    }
    return records_.back();
  }

  std::vector<uint16_t> banks_;
  bool anchor_ima_;
  uint32_t pcr_config_;
  uint32_t pcr_events_;
  uint64_t seq_ = 1;
  uint64_t last_ = 0;
  std::vector<uint8_t> bytes_;
  std::vector<records::Record> records_;
  std::vector<records::Record> checkpoints_;
  std::vector<PcrExtend> extends_;
};

class ImaLogBuilder {
 public:
  explicit ImaLogBuilder(std::vector<uint16_t> banks) : banks_(std::move(banks)) {}

  static void PutU32(std::vector<uint8_t>& out, uint32_t v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + 4);
  }
  static std::vector<uint8_t> DigestField(std::span<const uint8_t> content) {
    std::vector<uint8_t> f{'s', 'h', 'a', '2', '5', '6', ':', '\0'};
    auto d = Md(VIGIL_ALG_SHA256, content);
    f.insert(f.end(), d.begin(), d.end());
    return f;
  }
  static std::vector<uint8_t> NameField(const std::string& name) {
    std::vector<uint8_t> f(name.begin(), name.end());
    f.push_back('\0');
    return f;
  }

  // An entry of template `tname` with `fields` (u32 len + bytes each).
  void Entry(const std::string& tname, const std::vector<std::vector<uint8_t>>& fields,
             uint32_t pcr = 10, bool violation = false) {
    std::vector<uint8_t> data;
    for (const auto& f : fields) {
      PutU32(data, static_cast<uint32_t>(f.size()));
      data.insert(data.end(), f.begin(), f.end());
    }
    const std::vector<uint8_t> sha1 =
        violation ? std::vector<uint8_t>(20, 0) : Md(VIGIL_ALG_SHA1, data);
    PutU32(log_, pcr);
    log_.insert(log_.end(), sha1.begin(), sha1.end());
    PutU32(log_, static_cast<uint32_t>(tname.size()));
    log_.insert(log_.end(), tname.begin(), tname.end());
    PutU32(log_, static_cast<uint32_t>(data.size()));
    log_.insert(log_.end(), data.begin(), data.end());
    PcrExtend e;
    e.pcr = pcr;
    for (uint16_t alg : banks_) {
      if (violation) {
        e.digests.emplace_back(alg, crypto::Digest(MdSize(alg), 0xff));
      } else {
        e.digests.emplace_back(alg, alg == VIGIL_ALG_SHA1 ? sha1 : Md(alg, data));
      }
    }
    extends_.push_back(std::move(e));
  }
  void File(const std::string& path) {
    Entry("ima-ng", {DigestField({reinterpret_cast<const uint8_t*>(path.data()), path.size()}),
                     NameField(path)});
  }
  // An ima-buf entry holding `record`, named as the module names it.
  void Record(const records::Record& r, const std::string& instance = "5a5a5a5a") {
    const std::vector<uint8_t> buf(r.bytes().begin(), r.bytes().end());
    const std::string name = "vigil-" + instance + "-" + std::string(records::TypeName(r.type())) +
                             "-" + std::to_string(r.seq());
    Entry("ima-buf", {DigestField(buf), NameField(name), buf});
  }
  // The legacy "ima" template: d, then u32 strlen + name; hashed as d ||
  // name padded with zeros to 256 bytes.
  void Legacy(const std::string& path) {
    const std::vector<uint8_t> d =
        Md(VIGIL_ALG_SHA1, {reinterpret_cast<const uint8_t*>(path.data()), path.size()});
    std::vector<uint8_t> hashed = d;
    hashed.insert(hashed.end(), path.begin(), path.end());
    hashed.resize(20 + 256, 0);
    const std::vector<uint8_t> sha1 = Md(VIGIL_ALG_SHA1, hashed);
    PutU32(log_, 10);
    log_.insert(log_.end(), sha1.begin(), sha1.end());
    PutU32(log_, 3);
    log_.insert(log_.end(), {'i', 'm', 'a'});
    log_.insert(log_.end(), d.begin(), d.end());
    PutU32(log_, static_cast<uint32_t>(path.size()));
    log_.insert(log_.end(), path.begin(), path.end());
    PcrExtend e;
    e.pcr = 10;
    for (uint16_t alg : banks_) {
      e.digests.emplace_back(alg, alg == VIGIL_ALG_SHA1 ? sha1 : Md(alg, hashed));
    }
    extends_.push_back(std::move(e));
  }

  const std::vector<uint8_t>& log() const { return log_; }
  const std::vector<PcrExtend>& extends() const { return extends_; }

 private:
  std::vector<uint16_t> banks_;
  std::vector<uint8_t> log_;
  std::vector<PcrExtend> extends_;
};

}  // namespace vigil::testing

#endif  // VIGIL_TESTS_UNIT_CEL_FIXTURES_H_
