#include "vigil/attest_tpm/enrolment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "vigil/digest.h"
#include "vigil/unique_fd.h"

namespace vigil::attest_tpm {
namespace {

using Bytes = std::vector<uint8_t>;

// TCG EK Credential Profile 2.0, B.3.3: PolicySecret(TPM_RH_ENDORSEMENT)
// with SHA-256, the authPolicy of the low-range EK templates.
constexpr uint8_t kEkPolicy[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                   0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                   0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

TPM2B_PUBLIC EkTemplate(EkKind kind) {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& pub = in.publicArea;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                         TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  pub.authPolicy.size = sizeof(kEkPolicy);
  std::memcpy(pub.authPolicy.buffer, kEkPolicy, sizeof(kEkPolicy));
  if (kind == EkKind::kRsa2048) {
    pub.type = TPM2_ALG_RSA;
    TPMS_RSA_PARMS& rsa = pub.parameters.rsaDetail;
    rsa.symmetric.algorithm = TPM2_ALG_AES;
    rsa.symmetric.keyBits.aes = 128;
    rsa.symmetric.mode.aes = TPM2_ALG_CFB;
    rsa.scheme.scheme = TPM2_ALG_NULL;
    rsa.keyBits = 2048;
    rsa.exponent = 0;
    pub.unique.rsa.size = 256;  // zero-filled
  } else {
    pub.type = TPM2_ALG_ECC;
    TPMS_ECC_PARMS& ecc = pub.parameters.eccDetail;
    ecc.symmetric.algorithm = TPM2_ALG_AES;
    ecc.symmetric.keyBits.aes = 128;
    ecc.symmetric.mode.aes = TPM2_ALG_CFB;
    ecc.scheme.scheme = TPM2_ALG_NULL;
    ecc.curveID = TPM2_ECC_NIST_P256;
    ecc.kdf.scheme = TPM2_ALG_NULL;
    pub.unique.ecc.x.size = 32;  // zero-filled
    pub.unique.ecc.y.size = 32;
  }
  return in;
}

// TCG TPM v2.0 Provisioning Guidance: the ECC P-256 SRK template.
TPM2B_PUBLIC SrkTemplate() {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& pub = in.publicArea;
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                         TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  TPMS_ECC_PARMS& ecc = pub.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_AES;
  ecc.symmetric.keyBits.aes = 128;
  ecc.symmetric.mode.aes = TPM2_ALG_CFB;
  ecc.scheme.scheme = TPM2_ALG_NULL;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  pub.unique.ecc.x.size = 32;
  pub.unique.ecc.y.size = 32;
  return in;
}

TPM2B_PUBLIC AkTemplate() {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC& pub = in.publicArea;
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                         TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
  TPMS_ECC_PARMS& ecc = pub.parameters.eccDetail;
  ecc.symmetric.algorithm = TPM2_ALG_NULL;
  ecc.scheme.scheme = TPM2_ALG_ECDSA;
  ecc.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  ecc.curveID = TPM2_ECC_NIST_P256;
  ecc.kdf.scheme = TPM2_ALG_NULL;
  return in;
}

using tpmobj::Marshal;
using tpmobj::UnmarshalExactly;

Result<LoadedObject> CreatePrimary(ESYS_CONTEXT* ctx, ESYS_TR hierarchy, const TPM2B_PUBLIC& tmpl,
                                   std::string_view what, tpm::EsysPtr<TPM2B_PUBLIC>* out_public) {
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  ESYS_TR handle = ESYS_TR_NONE;
  TPM2B_PUBLIC* pub = nullptr;
  const TSS2_RC rc =
      Esys_CreatePrimary(ctx, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                         &tmpl, &outside, &pcrs, &handle, &pub, nullptr, nullptr, nullptr);
  if (rc != TSS2_RC_SUCCESS)
    return Status::FromTss2(rc, "TPM2_CreatePrimary(" + std::string(what) + ")");
  tpm::EsysPtr<TPM2B_PUBLIC> owned(pub);
  if (out_public != nullptr) *out_public = std::move(owned);
  return LoadedObject(ctx, handle);
}

Result<uint32_t> NvBufferMax(ESYS_CONTEXT* ctx) {
  TPMS_CAPABILITY_DATA* raw = nullptr;
  const TSS2_RC rc =
      Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                         TPM2_PT_NV_BUFFER_MAX, 1, nullptr, &raw);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_GetCapability(NV_BUFFER_MAX)");
  tpm::EsysPtr<TPMS_CAPABILITY_DATA> data(raw);
  const TPML_TAGGED_TPM_PROPERTY& props = data->data.tpmProperties;
  if (props.count < 1 || props.tpmProperty[0].property != TPM2_PT_NV_BUFFER_MAX ||
      props.tpmProperty[0].value == 0) {
    return Status::Error(ErrorCode::kInternal, "TPM does not report TPM_PT_NV_BUFFER_MAX");
  }
  return props.tpmProperty[0].value;
}

Result<bool> NvIndexExists(ESYS_CONTEXT* ctx, uint32_t index) {
  TPMS_CAPABILITY_DATA* raw = nullptr;
  const TSS2_RC rc = Esys_GetCapability(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, index, 1, nullptr, &raw);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_GetCapability(HANDLES)");
  tpm::EsysPtr<TPMS_CAPABILITY_DATA> data(raw);
  const TPML_HANDLE& handles = data->data.handles;
  return handles.count >= 1 && handles.handle[0] == index;
}

// The content of NV index `index`, read in chunks of the TPM's NV buffer.
Result<Bytes> ReadNv(ESYS_CONTEXT* ctx, uint32_t index) {
  const std::string what = "NV index 0x" + [&] {
    std::ostringstream s;
    s << std::hex << index;
    return s.str();
  }();
  ESYS_TR nv = ESYS_TR_NONE;
  TSS2_RC rc = Esys_TR_FromTPMPublic(ctx, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_TR_FromTPMPublic(" + what + ")");
  // An ESYS_TR for an NV index is only ESAPI's metadata: Esys_TR_Close.
  struct Closer {
    ESYS_CONTEXT* ctx;
    ESYS_TR* tr;
    ~Closer() { Esys_TR_Close(ctx, tr); }
  } closer{ctx, &nv};
  TPM2B_NV_PUBLIC* raw_public = nullptr;
  rc = Esys_NV_ReadPublic(ctx, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &raw_public, nullptr);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_NV_ReadPublic(" + what + ")");
  tpm::EsysPtr<TPM2B_NV_PUBLIC> nv_public(raw_public);
  const uint16_t size = nv_public->nvPublic.dataSize;
  // The EK certificate indexes are readable with their own (empty) auth
  // (AUTHREAD) or the owner's.
  const ESYS_TR auth =
      (nv_public->nvPublic.attributes & TPMA_NV_AUTHREAD) != 0 ? nv : ESYS_TR_RH_OWNER;
  VIGIL_ASSIGN_OR_RETURN(uint32_t chunk, NvBufferMax(ctx));
  Bytes out;
  out.reserve(size);
  while (out.size() < size) {
    const uint16_t n = static_cast<uint16_t>(std::min<size_t>(chunk, size - out.size()));
    TPM2B_MAX_NV_BUFFER* raw = nullptr;
    rc = Esys_NV_Read(ctx, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                      static_cast<uint16_t>(out.size()), &raw);
    if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_NV_Read(" + what + ")");
    tpm::EsysPtr<TPM2B_MAX_NV_BUFFER> data(raw);
    if (data->size != n) {
      return Status::Error(ErrorCode::kInternal, what + ": short NV read");
    }
    out.insert(out.end(), data->buffer, data->buffer + data->size);
  }
  return out;
}

// A policy or HMAC session, flushed on destruction.
class Session {
 public:
  explicit Session(ESYS_CONTEXT* ctx) : ctx_(ctx) {}
  ~Session() {
    if (handle_ != ESYS_TR_NONE) Esys_FlushContext(ctx_, handle_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ESYS_TR* out() { return &handle_; }
  ESYS_TR get() const { return handle_; }

 private:
  ESYS_CONTEXT* ctx_;
  ESYS_TR handle_ = ESYS_TR_NONE;
};

// TPM response codes that mean "this credential is not for this TPM / this
// key": the integrity HMAC failed, the seed did not decrypt, or a point is
// not on the curve.
bool IsCredentialRefusal(TSS2_RC rc) {
  if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER) return false;
  if ((rc & TPM2_RC_FMT1) == 0) return false;
  const TSS2_RC base = rc & (TPM2_RC_FMT1 | 0x3f);
  return base == TPM2_RC_INTEGRITY || base == TPM2_RC_VALUE || base == TPM2_RC_SIZE ||
         base == TPM2_RC_ECC_POINT || base == TPM2_RC_NO_RESULT;
}

// The AK's parent: a storage primary with the SRK template, transient, but
// in the ENDORSEMENT hierarchy. A quote signed by a key of any other
// hierarchy carries resetCount, restartCount and firmwareVersion
// obfuscated with a per-key value (TPM 2.0 Part 3, TPM2_Quote / Part 2
// TPMS_CLOCK_INFO), which the verifier's clock checks cannot use.
Result<LoadedObject> CreateSrk(ESYS_CONTEXT* ctx) {
  return CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, SrkTemplate(), "AK parent", nullptr);
}

}  // namespace

Result<EkInfo> ReadEk(tpm::EsysContext& tpm, EkKind kind) {
  ESYS_CONTEXT* ctx = tpm.get();
  tpm::EsysPtr<TPM2B_PUBLIC> pub;
  {
    VIGIL_ASSIGN_OR_RETURN(
        LoadedObject ek, CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, EkTemplate(kind), "EK", &pub));
  }
  VIGIL_ASSIGN_OR_RETURN(Bytes marshalled,
                         Marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal, "TPM2B_PUBLIC"));
  EkInfo info;
  VIGIL_ASSIGN_OR_RETURN(info.pub, tpmobj::ParseTpm2bPublic(marshalled));
  const uint32_t index = kind == EkKind::kRsa2048 ? kEkCertNvRsa2048 : kEkCertNvEccP256;
  VIGIL_ASSIGN_OR_RETURN(bool present, NvIndexExists(ctx, index));
  if (present) {
    VIGIL_ASSIGN_OR_RETURN(info.cert_der, ReadNv(ctx, index));
  }
  return info;
}

Result<AkBlobs> CreateAk(tpm::EsysContext& tpm) {
  ESYS_CONTEXT* ctx = tpm.get();
  VIGIL_ASSIGN_OR_RETURN(LoadedObject srk, CreateSrk(ctx));

  const TPM2B_PUBLIC tmpl = AkTemplate();
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  TPM2B_PRIVATE* raw_private = nullptr;
  TPM2B_PUBLIC* raw_public = nullptr;
  TPM2B_CREATION_DATA* raw_creation = nullptr;
  TPM2B_DIGEST* raw_hash = nullptr;
  TPMT_TK_CREATION* raw_ticket = nullptr;
  TSS2_RC rc = Esys_Create(ctx, srk.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                           &sensitive, &tmpl, &outside, &pcrs, &raw_private, &raw_public,
                           &raw_creation, &raw_hash, &raw_ticket);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_Create(AK)");
  tpm::EsysPtr<TPM2B_PRIVATE> priv(raw_private);
  tpm::EsysPtr<TPM2B_PUBLIC> pub(raw_public);
  tpm::EsysPtr<TPM2B_CREATION_DATA> creation(raw_creation);
  tpm::EsysPtr<TPM2B_DIGEST> creation_hash(raw_hash);
  tpm::EsysPtr<TPMT_TK_CREATION> ticket(raw_ticket);

  ESYS_TR ak_handle = ESYS_TR_NONE;
  rc = Esys_Load(ctx, srk.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv.get(),
                 pub.get(), &ak_handle);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_Load(AK)");
  LoadedObject ak(ctx, ak_handle);
  srk.Reset();

  TPM2B_DATA qualifying{};
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_NULL;  // the AK's own
  TPM2B_ATTEST* raw_attest = nullptr;
  TPMT_SIGNATURE* raw_sig = nullptr;
  rc = Esys_CertifyCreation(ctx, ak.handle(), ak.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                            ESYS_TR_NONE, &qualifying, creation_hash.get(), &scheme, ticket.get(),
                            &raw_attest, &raw_sig);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_CertifyCreation(AK)");
  tpm::EsysPtr<TPM2B_ATTEST> attest(raw_attest);
  tpm::EsysPtr<TPMT_SIGNATURE> sig(raw_sig);

  AkBlobs blobs;
  VIGIL_ASSIGN_OR_RETURN(blobs.public_area,
                         Marshal(*pub, Tss2_MU_TPM2B_PUBLIC_Marshal, "TPM2B_PUBLIC"));
  VIGIL_ASSIGN_OR_RETURN(blobs.private_area,
                         Marshal(*priv, Tss2_MU_TPM2B_PRIVATE_Marshal, "TPM2B_PRIVATE"));
  VIGIL_ASSIGN_OR_RETURN(
      blobs.creation_data,
      Marshal(creation->creationData, Tss2_MU_TPMS_CREATION_DATA_Marshal, "TPMS_CREATION_DATA"));
  blobs.creation_attest.assign(attest->attestationData, attest->attestationData + attest->size);
  VIGIL_ASSIGN_OR_RETURN(blobs.creation_signature,
                         Marshal(*sig, Tss2_MU_TPMT_SIGNATURE_Marshal, "TPMT_SIGNATURE"));
  return blobs;
}

Result<attest::EnrolmentRequest> MakeEnrolmentRequest(const EkInfo& ek, const AkBlobs& ak) {
  attest::EnrolmentRequest request;
  request.ek = ek.pub;
  request.ek_certificate_der = ek.cert_der;
  VIGIL_ASSIGN_OR_RETURN(request.ak, tpmobj::ParseTpm2bPublic(ak.public_area));
  request.ak_creation_data = ak.creation_data;
  request.ak_creation_attest = ak.creation_attest;
  VIGIL_ASSIGN_OR_RETURN(request.ak_creation_signature,
                         tpmobj::ParseSignature(ak.creation_signature));
  return request;
}

namespace {

constexpr char kAkFile[] = "ak.json";

Status CheckBlobs(const AkBlobs& blobs, const std::string& where) {
  auto field = [&](const Status& st, const char* name) {
    return Status::Error(ErrorCode::kMalformed, where + ": " + name + ": " + st.message());
  };
  if (auto r = tpmobj::ParseTpm2bPublic(blobs.public_area); !r.ok()) {
    return field(r.status(), "public_area");
  }
  if (auto r = UnmarshalExactly<TPM2B_PRIVATE>(blobs.private_area, Tss2_MU_TPM2B_PRIVATE_Unmarshal,
                                               "TPM2B_PRIVATE");
      !r.ok()) {
    return field(r.status(), "private_area");
  }
  if (auto r = UnmarshalExactly<TPMS_CREATION_DATA>(
          blobs.creation_data, Tss2_MU_TPMS_CREATION_DATA_Unmarshal, "TPMS_CREATION_DATA");
      !r.ok()) {
    return field(r.status(), "creation_data");
  }
  if (auto r = tpmobj::ParseAttest(blobs.creation_attest); !r.ok()) {
    return field(r.status(), "creation_attest");
  }
  if (auto r = tpmobj::ParseSignature(blobs.creation_signature); !r.ok()) {
    return field(r.status(), "creation_signature");
  }
  return Status::Ok();
}

struct BlobField {
  const char* name;
  std::vector<uint8_t> AkBlobs::*member;
};
constexpr BlobField kBlobFields[] = {
    {"public_area", &AkBlobs::public_area},
    {"private_area", &AkBlobs::private_area},
    {"creation_data", &AkBlobs::creation_data},
    {"creation_attest", &AkBlobs::creation_attest},
    {"creation_signature", &AkBlobs::creation_signature},
};

}  // namespace

Status SaveAkBlobs(const std::string& dir, const AkBlobs& blobs) {
  VIGIL_RETURN_IF_ERROR(CheckBlobs(blobs, "AK blobs"));
  nlohmann::json doc = nlohmann::json::object();
  doc["version"] = 1;
  for (const BlobField& f : kBlobFields) doc[f.name] = crypto::ToHex(blobs.*f.member);
  const std::string text = doc.dump(1) + "\n";
  const std::string path = dir + "/" + kAkFile;
  const std::string tmp = path + ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0) return Status::FromErrno(errno, "creating " + tmp);
    // An existing file keeps its mode through O_TRUNC: force 0600.
    if (::fchmod(fd.get(), 0600) != 0) return Status::FromErrno(errno, "chmod " + tmp);
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "writing " + tmp);
      }
      done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "renaming " + tmp);
  return Status::Ok();
}

Result<AkBlobs> LoadAkBlobs(const std::string& dir) {
  const std::string path = dir + "/" + kAkFile;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::Error(ErrorCode::kNotFound, path + " does not exist");
    return Status::FromErrno(err, "opening " + path);
  }
  constexpr size_t kMax = 64 * 1024;
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading " + path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMax) {
      return Status::Error(ErrorCode::kMalformed, path + ": larger than 64 KiB");
    }
  }
  auto malformed = [&](const std::string& why) {
    return Status::Error(ErrorCode::kMalformed, path + ": " + why);
  };
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return malformed("not a JSON object");
  for (const auto& item : doc.items()) {
    const bool known = item.key() == "version" ||
                       std::any_of(std::begin(kBlobFields), std::end(kBlobFields),
                                   [&](const BlobField& f) { return item.key() == f.name; });
    if (!known) return malformed(item.key() + ": unknown field");
  }
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || *version != 1) {
    return malformed("version: missing or not 1");
  }
  AkBlobs blobs;
  for (const BlobField& f : kBlobFields) {
    auto it = doc.find(f.name);
    if (it == doc.end() || !it->is_string()) return malformed(std::string(f.name) + ": missing");
    auto bytes = crypto::FromHex(it->get_ref<const std::string&>());
    if (!bytes.ok()) return malformed(std::string(f.name) + ": not hex");
    blobs.*f.member = std::move(bytes).value();
  }
  VIGIL_RETURN_IF_ERROR(CheckBlobs(blobs, path));
  return blobs;
}

Result<LoadedObject> LoadAk(tpm::EsysContext& tpm, const AkBlobs& blobs) {
  ESYS_CONTEXT* ctx = tpm.get();
  VIGIL_ASSIGN_OR_RETURN(TPM2B_PUBLIC pub,
                         UnmarshalExactly<TPM2B_PUBLIC>(
                             blobs.public_area, Tss2_MU_TPM2B_PUBLIC_Unmarshal, "TPM2B_PUBLIC"));
  VIGIL_ASSIGN_OR_RETURN(TPM2B_PRIVATE priv,
                         UnmarshalExactly<TPM2B_PRIVATE>(
                             blobs.private_area, Tss2_MU_TPM2B_PRIVATE_Unmarshal, "TPM2B_PRIVATE"));
  VIGIL_ASSIGN_OR_RETURN(LoadedObject srk, CreateSrk(ctx));
  ESYS_TR handle = ESYS_TR_NONE;
  const TSS2_RC rc = Esys_Load(ctx, srk.handle(), ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               &priv, &pub, &handle);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_Load(AK)");
  return LoadedObject(ctx, handle);
}

Result<std::vector<uint8_t>> ActivateCredential(tpm::EsysContext& tpm, const LoadedObject& ak,
                                                EkKind kind, const attest::Credential& credential) {
  ESYS_CONTEXT* ctx = tpm.get();
  VIGIL_ASSIGN_OR_RETURN(
      TPM2B_ID_OBJECT id,
      UnmarshalExactly<TPM2B_ID_OBJECT>(credential.id_object, Tss2_MU_TPM2B_ID_OBJECT_Unmarshal,
                                        "TPM2B_ID_OBJECT"));
  VIGIL_ASSIGN_OR_RETURN(TPM2B_ENCRYPTED_SECRET secret,
                         UnmarshalExactly<TPM2B_ENCRYPTED_SECRET>(
                             credential.encrypted_secret, Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal,
                             "TPM2B_ENCRYPTED_SECRET"));
  VIGIL_ASSIGN_OR_RETURN(
      LoadedObject ek, CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, EkTemplate(kind), "EK", nullptr));

  Session session(ctx);
  TPMT_SYM_DEF symmetric{};
  symmetric.algorithm = TPM2_ALG_NULL;
  TSS2_RC rc = Esys_StartAuthSession(ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                     ESYS_TR_NONE, nullptr, TPM2_SE_POLICY, &symmetric,
                                     TPM2_ALG_SHA256, session.out());
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_StartAuthSession(policy)");
  // Keep the session after its use so that it is flushed here, on every
  // path, by Session's destructor.
  rc = Esys_TRSess_SetAttributes(ctx, session.get(), TPMA_SESSION_CONTINUESESSION,
                                 TPMA_SESSION_CONTINUESESSION);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "Esys_TRSess_SetAttributes");
  rc = Esys_PolicySecret(ctx, ESYS_TR_RH_ENDORSEMENT, session.get(), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                         ESYS_TR_NONE, nullptr, nullptr, nullptr, 0, nullptr, nullptr);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_PolicySecret(endorsement)");

  TPM2B_DIGEST* raw = nullptr;
  rc = Esys_ActivateCredential(ctx, ak.handle(), ek.handle(), ESYS_TR_PASSWORD, session.get(),
                               ESYS_TR_NONE, &id, &secret, &raw);
  if (rc != TSS2_RC_SUCCESS) {
    Status st = Status::FromTss2(rc, "TPM2_ActivateCredential");
    if (IsCredentialRefusal(rc)) {
      return Status::Error(ErrorCode::kMismatch,
                           "the TPM refused the credential (not made for this TPM's EK and "
                           "this AK): " +
                               st.message());
    }
    return st;
  }
  tpm::EsysPtr<TPM2B_DIGEST> cert_info(raw);
  return std::vector<uint8_t>(cert_info->buffer, cert_info->buffer + cert_info->size);
}

}  // namespace vigil::attest_tpm
