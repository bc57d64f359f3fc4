// SPDX-License-Identifier: GPL-2.0
// vigil-keycert-test - the module's checkpoint key certified by an AK made
// in the guest's TPM (VIGIL_IOC_KEY_CREATION, CertifyModuleKey through
// /dev/tpmrm0, CheckKeyCertification against GET_INFO's key), the ioctl's
// argument contract, and the key still signing afterwards.
//
// usage: vigil-keycert-test --list | CASE [TCTI]
// Exit status 0 when the case passed.
#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "vigil.h"
#include "vigil/attest/key_certification.h"
#include "vigil/attest_tpm/key_certification.h"
#include "vigil/device.h"
#include "vigil/records.h"
#include "vigil/signature.h"
#include "vigil/tpm.h"
#include "vigil/tpm_object.h"

namespace {

using namespace vigil;

int failures = 0;

#define CHECK(cond, ...)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::printf("  FAIL %s:%d: ", __func__, __LINE__);                       \
      std::printf(__VA_ARGS__);                                                \
      std::printf("\n");                                                       \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

std::string tcti = "device:/dev/tpmrm0";

// A restricted ECC P-256 signing key under the endorsement hierarchy: an AK
// as an enrolment would make it.
ESYS_TR MakeAk(ESYS_CONTEXT *ctx, tpmobj::PublicArea *out) {
  TPM2B_PUBLIC in{};
  TPMT_PUBLIC &pub = in.publicArea;
  pub.type = TPM2_ALG_ECC;
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
                         TPMA_OBJECT_SIGN_ENCRYPT;
  pub.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  pub.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
  pub.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
  pub.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  pub.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  ESYS_TR ak = ESYS_TR_NONE;
  TPM2B_PUBLIC *out_public = nullptr;
  TSS2_RC rc =
      Esys_CreatePrimary(ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
                         ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &in, &outside,
                         &pcrs, &ak, &out_public, nullptr, nullptr, nullptr);
  CHECK(rc == TSS2_RC_SUCCESS, "CreatePrimary AK: 0x%x", rc);
  if (rc != TSS2_RC_SUCCESS)
    return ESYS_TR_NONE;
  std::vector<uint8_t> bytes(sizeof(TPM2B_PUBLIC));
  size_t off = 0;
  Tss2_MU_TPM2B_PUBLIC_Marshal(out_public, bytes.data(), bytes.size(), &off);
  Esys_Free(out_public);
  bytes.resize(off);
  auto parsed = tpmobj::ParseTpm2bPublic(bytes);
  CHECK(parsed.ok(), "AK public: %s", parsed.status().ToString().c_str());
  if (parsed.ok())
    *out = std::move(parsed).value();
  return ak;
}

bool Certify(const crypto::EcPoint &point) {
  auto dev = device::VigilDevice::Open();
  CHECK(dev.ok(), "open: %s", dev.status().ToString().c_str());
  if (!dev.ok())
    return false;
  auto creation = dev->GetKeyCreation();
  CHECK(creation.ok(), "KEY_CREATION: %s",
        creation.status().ToString().c_str());
  if (!creation.ok())
    return false;
  std::printf("  blobs: public %zu, creation data %zu, hash %zu, ticket %zu, "
              "context %zu bytes\n",
              creation->key_public.size(), creation->creation_data.size(),
              creation->creation_hash.size(), creation->creation_ticket.size(),
              creation->context.size());
  auto esys = tpm::EsysContext::Open(tcti);
  CHECK(esys.ok(), "ESAPI over %s: %s", tcti.c_str(),
        esys.status().ToString().c_str());
  if (!esys.ok())
    return false;
  tpmobj::PublicArea ak_public;
  const ESYS_TR ak = MakeAk(esys->get(), &ak_public);
  if (ak == ESYS_TR_NONE)
    return false;
  std::vector<uint8_t> nonce(32);
  RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
  auto cert = attest_tpm::CertifyModuleKey(*esys, ak, *creation, nonce);
  CHECK(cert.ok(), "CertifyModuleKey: %s", cert.status().ToString().c_str());
  bool ok = cert.ok();
  if (ok) {
    const Status s =
        attest::CheckKeyCertification(ak_public, *cert, point, nonce);
    CHECK(s.ok(), "CheckKeyCertification: %s", s.ToString().c_str());
    ok = s.ok();
    // The same evidence for another key, and with another nonce, fails.
    crypto::EcPoint other = point;
    other.x[5] ^= 1;
    CHECK(!attest::CheckKeyCertification(ak_public, *cert, other, nonce).ok(),
          "another point passed");
    std::vector<uint8_t> other_nonce = nonce;
    other_nonce[0] ^= 1;
    CHECK(!attest::CheckKeyCertification(ak_public, *cert, point, other_nonce)
               .ok(),
          "another nonce passed");
    std::printf(
        "  certified by the AK: attest %zu bytes, signature %zu bytes\n",
        cert->attest.size(), cert->signature.size());
  }
  // Nothing of ours is left loaded in this connection's space.
  TPMS_CAPABILITY_DATA *data = nullptr;
  TPMI_YES_NO more = TPM2_NO;
  Esys_FlushContext(esys->get(), ak);
  if (Esys_GetCapability(esys->get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                         TPM2_CAP_HANDLES, TPM2_TRANSIENT_FIRST, 16, &more,
                         &data) == TSS2_RC_SUCCESS) {
    CHECK(data->data.handles.count == 0, "%u transient objects left",
          data->data.handles.count);
    Esys_Free(data);
  }
  return ok && failures == 0;
}

crypto::EcPoint InfoPoint(int fd) {
  vigil_info info{};
  info.size = sizeof(info);
  CHECK(ioctl(fd, VIGIL_IOC_GET_INFO, &info) == 0, "GET_INFO: %s",
        std::strerror(errno));
  CHECK(info.tpm_flags & VIGIL_TPM_KEY,
        "the module has no key (tpm_flags 0x%x)", info.tpm_flags);
  crypto::EcPoint p{};
  std::memcpy(p.x, info.key_x, sizeof(p.x));
  std::memcpy(p.y, info.key_y, sizeof(p.y));
  return p;
}

int OpenDev() {
  int fd = open(VIGIL_DEVICE_PATH, O_RDONLY | O_CLOEXEC);
  CHECK(fd >= 0, "open: %s", std::strerror(errno));
  return fd;
}

void TCertify() {
  const int fd = OpenDev();
  if (fd < 0)
    return;
  Certify(InfoPoint(fd));
  close(fd);
}

// ioctl that must fail with `err`.
void ExpectErr(int fd, void *arg, int err, const char *what) {
  errno = 0;
  const int r = ioctl(fd, VIGIL_IOC_KEY_CREATION, arg);
  CHECK(r == -1 && errno == err, "%s: got %d errno %d (%s), want %s", what, r,
        errno, std::strerror(errno), std::strerror(err));
}

void TBadArgs() {
  const int fd = OpenDev();
  if (fd < 0)
    return;
  std::vector<uint8_t> buf(4096);
  auto fresh = [&] {
    vigil_key_creation kc{};
    kc.size = sizeof(kc);
    kc.buf = reinterpret_cast<uint64_t>(buf.data());
    kc.buf_len = static_cast<uint32_t>(buf.size());
    return kc;
  };
  vigil_key_creation kc = fresh();
  CHECK(ioctl(fd, VIGIL_IOC_KEY_CREATION, &kc) == 0, "good call: %s",
        std::strerror(errno));
  const uint32_t needed = kc.needed;
  CHECK(needed == kc.public_len + kc.creation_data_len + kc.creation_hash_len +
                      kc.ticket_len + kc.context_len &&
            needed > 100,
        "needed %u disagrees with the lengths", needed);
  std::printf("  needed %u bytes\n", needed);

  ExpectErr(fd, reinterpret_cast<void *>(8), EFAULT,
            "argument at an unmapped address");
  kc = fresh();
  kc.buf = 8;
  ExpectErr(fd, &kc, EFAULT, "buffer at an unmapped address");
  // A read-only buffer cannot take the blobs.
  kc = fresh();
  kc.buf = reinterpret_cast<uint64_t>(&TBadArgs);
  ExpectErr(fd, &kc, EFAULT, "buffer in read-only text");

  kc = fresh();
  kc.buf_len = 16;
  std::memset(buf.data(), 0xA5, buf.size());
  ExpectErr(fd, &kc, ENOSPC, "16-byte buffer");
  CHECK(kc.needed == needed, "ENOSPC says needed %u, want %u", kc.needed,
        needed);
  CHECK(kc.context_len > 0 && kc.public_len > 0, "ENOSPC without the lengths");
  CHECK(buf[0] == 0xA5 && buf[15] == 0xA5, "ENOSPC wrote into the buffer");
  kc = fresh();
  kc.buf_len = needed - 1;
  ExpectErr(fd, &kc, ENOSPC, "buffer one byte short");
  kc = fresh();
  kc.buf = 0;
  kc.buf_len = 0;
  ExpectErr(fd, &kc, ENOSPC, "size query (no buffer)");
  CHECK(kc.needed == needed, "size query says %u, want %u", kc.needed, needed);
  kc = fresh();
  kc.buf_len = needed;
  CHECK(ioctl(fd, VIGIL_IOC_KEY_CREATION, &kc) == 0, "exact size: %s",
        std::strerror(errno));

  kc = fresh();
  kc.buf = 0;
  ExpectErr(fd, &kc, EINVAL, "NULL buffer with a length");
  kc = fresh();
  kc.flags = 1;
  ExpectErr(fd, &kc, EINVAL, "flags 1");
  for (size_t i = 0; i < std::size(kc.__reserved); ++i) {
    kc = fresh();
    kc.__reserved[i] = 1;
    ExpectErr(fd, &kc, EINVAL, "non-zero reserved word");
  }
  kc = fresh();
  kc.size = VIGIL_SIZE_VER0_KEY_CREATION - 8;
  ExpectErr(fd, &kc, EINVAL, "size below the first published one");

  // A later ABI's larger struct: zero tail accepted, non-zero tail E2BIG.
  struct {
    vigil_key_creation kc;
    uint64_t tail[2];
  } big{};
  big.kc = fresh();
  big.kc.size = sizeof(big);
  CHECK(ioctl(fd, VIGIL_IOC_KEY_CREATION, &big) == 0,
        "larger struct, zero tail: %s", std::strerror(errno));
  CHECK(big.kc.needed == needed && big.tail[0] == 0 && big.tail[1] == 0,
        "larger struct: needed %u, tail written", big.kc.needed);
  big.kc.size = sizeof(big);
  big.tail[1] = 1;
  ExpectErr(fd, &big, E2BIG, "larger struct, non-zero tail");

  // CAP_SYS_ADMIN: the descriptor passed to an unprivileged process is not
  // enough.
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(2);
    vigil_key_creation c = fresh();
    errno = 0;
    _exit(ioctl(fd, VIGIL_IOC_KEY_CREATION, &c) == -1 && errno == EPERM ? 0
                                                                        : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
        "non-root caller was not refused (EPERM)");
  close(fd);
}

// Certify, then checkpoint: the module's key still signs (the certification
// loaded only a copy of its context in another space).
void TSignAfter() {
  const int fd = OpenDev();
  if (fd < 0)
    return;
  const crypto::EcPoint point = InfoPoint(fd);
  Certify(point);
  auto *req = new vigil_checkpoint_req{};
  req->size = sizeof(*req);
  CHECK(ioctl(fd, VIGIL_IOC_CHECKPOINT, req) == 0, "CHECKPOINT: %s",
        std::strerror(errno));
  CHECK(req->sig.status == VIGIL_SIG_OK, "signature status %u error %d",
        req->sig.status, req->sig.error);
  auto rec = records::Record::FromStruct(req->cp);
  CHECK(rec.ok(), "checkpoint record: %s", rec.status().ToString().c_str());
  if (rec.ok()) {
    const Status s = crypto::VerifyCheckpointSignature(point, *rec, req->sig);
    CHECK(s.ok(), "checkpoint signature: %s", s.ToString().c_str());
    if (s.ok())
      std::printf("  checkpoint %llu signed by the certified key\n",
                  static_cast<unsigned long long>(req->cp.hdr.seq));
  }
  delete req;
  close(fd);
}

struct Case {
  const char *name;
  void (*fn)();
};
const Case kCases[] = {
    {"certify", TCertify},
    {"bad-args", TBadArgs},
    {"sign-after", TSignAfter},
};

} // namespace

int main(int argc, char **argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const Case &c : kCases)
      std::printf("%s\n", c.name);
    return 0;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: vigil-keycert-test --list | CASE [TCTI]\n");
    return 2;
  }
  if (argc >= 3)
    tcti = argv[2];
  for (const Case &c : kCases) {
    if (std::strcmp(argv[1], c.name) != 0)
      continue;
    c.fn();
    std::printf("%s: %s\n", c.name, failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
  }
  std::fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}
