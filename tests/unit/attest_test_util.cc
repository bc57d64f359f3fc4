#include "attest_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <tss2/tss2_mu.h>
#include <unistd.h>

#include <cstring>

#include "vigil/tpm.h"
#include "vigil/unique_fd.h"

namespace vigil::testing {

Result<ESYS_TR> CreateTestAk(ESYS_CONTEXT* ctx, ESYS_TR hierarchy, uint8_t unique) {
  TPM2B_PUBLIC in_public{};
  TPMT_PUBLIC& pub = in_public.publicArea;
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
  pub.unique.ecc.x.size = 1;
  pub.unique.ecc.x.buffer[0] = unique;
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  ESYS_TR handle = ESYS_TR_NONE;
  const TSS2_RC rc =
      Esys_CreatePrimary(ctx, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                         &in_public, &outside, &pcrs, &handle, nullptr, nullptr, nullptr, nullptr);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_CreatePrimary (test AK)");
  return handle;
}

Result<tpmobj::PublicArea> ReadAkPublic(ESYS_CONTEXT* ctx, ESYS_TR key) {
  TPM2B_PUBLIC* raw = nullptr;
  const TSS2_RC rc =
      Esys_ReadPublic(ctx, key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &raw, nullptr, nullptr);
  tpm::EsysPtr<TPM2B_PUBLIC> pub(raw);
  if (rc != TSS2_RC_SUCCESS) return Status::FromTss2(rc, "TPM2_ReadPublic");
  std::vector<uint8_t> bytes(sizeof(TPM2B_PUBLIC));
  size_t off = 0;
  const TSS2_RC mrc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub.get(), bytes.data(), bytes.size(), &off);
  if (mrc != TSS2_RC_SUCCESS) return Status::FromTss2(mrc, "marshalling TPM2B_PUBLIC");
  bytes.resize(off);
  return tpmobj::ParseTpm2bPublic(bytes);
}

Status SwtpmPowerCycle(const std::string& tcti) {
  const size_t at = tcti.rfind("port=");
  if (at == std::string::npos) return Status::Error(ErrorCode::kInvalidArgument, "no port in tcti");
  const int port = std::stoi(tcti.substr(at + 5)) + 1;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Status::FromErrno(errno, "connecting to swtpm's control channel");
  }
  // CMD_INIT (2) with ptm_init.u.req.init_flags = 0, both big-endian; the
  // answer is a 4-byte TPM result.
  const uint32_t request[2] = {htonl(2), htonl(0)};
  if (::write(fd.get(), request, sizeof(request)) != static_cast<ssize_t>(sizeof(request))) {
    return Status::FromErrno(errno, "writing CMD_INIT");
  }
  uint32_t result = 0;
  if (::read(fd.get(), &result, sizeof(result)) != static_cast<ssize_t>(sizeof(result))) {
    return Status::FromErrno(errno, "reading CMD_INIT's result");
  }
  if (ntohl(result) != 0) {
    return Status::Error(ErrorCode::kInternal,
                         "CMD_INIT returned " + std::to_string(ntohl(result)));
  }
  return Status::Ok();
}

}  // namespace vigil::testing
