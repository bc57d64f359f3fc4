// IMA's binary log built the way IMA writes it (ima_fs.c: pcr, SHA-1
// template digest, template name, template data), with the PCR 10 values a
// TPM would hold after it computed independently with OpenSSL. Shared by the
// IMA anchor tests and the remote verifier's tests (which also extend a real
// swtpm's PCR 10 with `extends`).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_SIM_IMA_SIM_H_
#define VIGIL_USERSPACE_LIB_VIGIL_SIM_IMA_SIM_H_

#include <openssl/evp.h>

#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vigil/sim/module_sim.h"
#include "vigil/ima.h"

namespace vigil::sim {

inline constexpr uint16_t kSha1 = 0x0004;
inline constexpr uint16_t kSha256 = 0x000B;

inline std::vector<uint8_t> Md(const char* name, std::span<const uint8_t> data) {
  std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_get_digestbyname(name), nullptr);
  out.resize(len);
  return out;
}

inline void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + 4);
}

inline void PutField(std::vector<uint8_t>& out, std::span<const uint8_t> f) {
  PutU32(out, static_cast<uint32_t>(f.size()));
  out.insert(out.end(), f.begin(), f.end());
}

inline std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A TPM's PCR 10 in two banks, and IMA's log that goes with it.
struct ImaSim {
  std::vector<uint8_t> log;
  std::map<uint16_t, crypto::Digest> pcr10{{kSha1, crypto::Digest(20, 0)},
                                           {kSha256, crypto::Digest(32, 0)}};
  // Every extend of PCR 10, in order (bank, measurement): to replay on a TPM.
  std::vector<std::pair<uint16_t, crypto::Digest>> extends;

  void Extend(uint16_t alg, std::span<const uint8_t> m) {
    extends.emplace_back(alg, crypto::Digest(m.begin(), m.end()));
    crypto::Digest& v = pcr10[alg];
    std::vector<uint8_t> both(v.begin(), v.end());
    both.insert(both.end(), m.begin(), m.end());
    v = Md(alg == kSha1 ? "SHA1" : "SHA256", both);
  }
  // An entry with the given template and fields; extends PCR 10 like IMA.
  void Entry(const std::string& tname, const std::vector<std::vector<uint8_t>>& fields,
             uint32_t pcr = 10, bool violation = false, bool wrong_digest = false) {
    std::vector<uint8_t> data;
    for (const auto& f : fields) PutField(data, f);
    std::vector<uint8_t> sha1 = violation ? std::vector<uint8_t>(20, 0) : Md("SHA1", data);
    if (wrong_digest) sha1[0] ^= 1;
    PutU32(log, pcr);
    log.insert(log.end(), sha1.begin(), sha1.end());
    PutU32(log, static_cast<uint32_t>(tname.size()));
    log.insert(log.end(), tname.begin(), tname.end());
    PutU32(log, static_cast<uint32_t>(data.size()));
    log.insert(log.end(), data.begin(), data.end());
    if (pcr != 10) return;
    if (violation) {
      Extend(kSha1, std::vector<uint8_t>(20, 0xff));
      Extend(kSha256, std::vector<uint8_t>(32, 0xff));
    } else {
      Extend(kSha1, sha1);
      Extend(kSha256, Md("SHA256", data));
    }
  }
  // The legacy "ima" template (ima_template=ima): d (20 bytes, no length)
  // and n (u32 strlen + name) in the log; hashed as d || name padded with
  // zeros to 256 bytes (ima_calc_field_array_hash_tfm).
  void Legacy(const std::string& path) {
    const std::vector<uint8_t> d = Md("SHA1", Bytes(path));
    std::vector<uint8_t> hashed = d;
    hashed.insert(hashed.end(), path.begin(), path.end());
    hashed.resize(20 + 256, 0);
    const std::vector<uint8_t> sha1 = Md("SHA1", hashed);
    PutU32(log, 10);
    log.insert(log.end(), sha1.begin(), sha1.end());
    PutU32(log, 3);
    log.insert(log.end(), {'i', 'm', 'a'});
    log.insert(log.end(), d.begin(), d.end());
    PutU32(log, static_cast<uint32_t>(path.size()));
    log.insert(log.end(), path.begin(), path.end());
    Extend(kSha1, sha1);
    Extend(kSha256, Md("SHA256", hashed));
  }
  static std::vector<uint8_t> DigestField(std::span<const uint8_t> content) {
    std::vector<uint8_t> f{'s', 'h', 'a', '2', '5', '6', ':', '\0'};
    auto d = Md("SHA256", content);
    f.insert(f.end(), d.begin(), d.end());
    return f;
  }
  static std::vector<uint8_t> NameField(const std::string& name) {
    std::vector<uint8_t> f(name.begin(), name.end());
    f.push_back('\0');
    return f;
  }
  void BootAggregate() {
    const std::vector<uint8_t> agg(32, 0x11);
    Entry("ima-ng", {DigestField(agg), NameField("boot_aggregate")});
  }
  void File(const std::string& path) {
    Entry("ima-ng", {DigestField(Bytes(path)), NameField(path)});
  }
  void Record(const chain::InstanceId& id, const records::Record& r, uint32_t pcr = 10) {
    const std::vector<uint8_t> buf(r.bytes().begin(), r.bytes().end());
    Entry("ima-buf", {DigestField(buf), NameField(ima::EntryName(id, r.type(), r.seq())), buf},
          pcr);
  }
  // Every record the module measures with anchor=ima.
  void Module(const ModuleSim& sim, size_t from = 0, uint32_t pcr = 10) {
    for (size_t i = from; i < sim.log().size(); ++i) {
      const uint16_t t = sim.log()[i].type();
      if (t == VIGIL_LOG_MEASURE || t == VIGIL_LOG_KEY || t == VIGIL_LOG_CHECKPOINT) {
        Record(sim.instance(), sim.log()[i], pcr);
      }
    }
  }
};

}  // namespace vigil::sim

#endif  // VIGIL_USERSPACE_LIB_VIGIL_SIM_IMA_SIM_H_
