// Enrolment of a node with a remote verifier, the verifier's side: the
// checks go-attestation makes before it trusts an attestation key (AK), the
// credential (TPM2_MakeCredential) computed in software so that only the TPM
// holding the endorsement key (EK) can recover its secret, the EK
// certificate chain, and the node's enrolment request as JSON.
//
// Pure: OpenSSL, tss2-mu and nlohmann-json only (no TPM, device or socket),
// so a verifier off the node links it.
//
// What enrolment proves, step by step:
//  1. VerifyEkCertificate: the EK public key was certified by a CA the
//     verifier trusts (a TPM manufacturer's). Without a certificate the EK
//     is only trusted on first use.
//  2. CheckAkPublic + CheckAkCreation: the AK is a restricted signing key
//     that cannot leave its TPM (fixedTPM, fixedParent), was generated inside
//     a TPM (sensitiveDataOrigin), and its creation was certified by a TPM
//     (TPM_GENERATED_VALUE in an attest signed by the AK itself). A
//     restricted key only signs digests the TPM produced itself, so a quote
//     it signs was made by a TPM. These checks do NOT say WHICH TPM holds
//     the AK: that is step 3.
//  3. MakeCredential + (node) TPM2_ActivateCredential + SecretsEqual: the
//     TPM holding the certified EK also holds a loaded object with the AK's
//     name; the TPM releases the secret only then. A node that returns the
//     secret proves the AK and the EK are in the same TPM.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_ATTEST_ENROLMENT_H_
#define VIGIL_USERSPACE_LIB_VIGIL_ATTEST_ENROLMENT_H_

#include <tss2/tss2_tpm2_types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/status.h"
#include "vigil/tpm_object.h"

namespace vigil::attest {

// Size of the credential secret a verifier should use (go-attestation: 32).
inline constexpr size_t kCredentialSecretSize = 32;

// OK when `ak` is fit to be an attestation key: objectAttributes restricted,
// sign, fixedTPM, fixedParent and sensitiveDataOrigin set and decrypt clear;
// an ECC key on NIST P-256/P-384/P-521 or an RSA key of at least 2048 bits;
// a signing scheme (ECDSA, RSASSA or RSAPSS) with SHA-256 or stronger; a
// nameAlg of SHA-256 or stronger; and a public key OpenSSL accepts (on the
// curve). Each failure is kMismatch (kUnsupported for an algorithm this does
// not know) and names the attribute ("restricted", "fixedTPM", ...).
// Proves nothing on its own: the attributes are only claims until
// CheckAkCreation shows a TPM created the key with them.
Status CheckAkPublic(const tpmobj::PublicArea& ak);

// OK when `attest` (a marshalled TPMS_ATTEST, as TPM2_CertifyCreation
// returns it inside its TPM2B_ATTEST) is the AK's creation certified by the
// AK itself (TPM2_CertifyCreation with signHandle = objectHandle = AK):
// magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_CREATION, objectName ==
// Name(ak), creationHash == H_nameAlg(creation_data), and `sig` verifies
// with the AK using the AK's own scheme and hash.
// `creation_data` is the marshalled TPMS_CREATION_DATA (the content of the
// TPM2B_CREATION_DATA that TPM2_Create returns, WITHOUT its 2-byte size),
// exactly one structure, no trailing bytes.
// Proves (with CheckAkPublic passed) that a TPM created the AK with these
// attributes: a restricted key signs TPM_GENERATED_VALUE attests only for
// data the TPM itself produced. Does not prove which TPM (see
// MakeCredential), nor anything about the PCRs at creation (the creation
// data's pcrDigest is not checked here).
// Errors: kMalformed (structures), kMismatch naming the failed check
// ("magic", "type", "objectName", "creationHash", "signature").
Status CheckAkCreation(const tpmobj::PublicArea& ak, std::span<const uint8_t> creation_data,
                       std::span<const uint8_t> attest, const TPMT_SIGNATURE& sig);

// A credential for TPM2_ActivateCredential: the marshalled TPM2B_ID_OBJECT
// (credentialBlob) and TPM2B_ENCRYPTED_SECRET (secret), both WITH their
// 2-byte size, as tpm2-tools' tpm2_makecredential writes them in sequence.
struct Credential {
  std::vector<uint8_t> id_object;
  std::vector<uint8_t> encrypted_secret;
};

// TPM2_MakeCredential in software (TPM 2.0 Part 1 "Credential Protection",
// Part 3 TPM2_MakeCredential), for a TPM that is not here. A random seed is
// protected with the EK: RSA-OAEP (hash = EK nameAlg, label "IDENTITY\0")
// for an RSA EK, or ECDH with an ephemeral key and KDFe for an ECC EK; from
// the seed, KDFa derives the symmetric key ("STORAGE", context = ak_name;
// the EK template's symmetric, AES-CFB) that encrypts the TPM2B_DIGEST of
// `secret`, and the HMAC key ("INTEGRITY") of the integrity HMAC over
// encIdentity || ak_name.
// `ek` must be a restricted decryption key with an AES-CFB symmetric (an EK
// template); `ak_name` a well-formed TPM name (alg || digest); `secret` 1 to
// digest-size(EK nameAlg) bytes (use kCredentialSecretSize).
// What it gives: only a TPM holding the EK's private key AND a loaded object
// named `ak_name` returns `secret` from TPM2_ActivateCredential. The name
// binds the AK's public area (attributes included), so checking that area
// (CheckAkPublic, CheckAkCreation) and activating with its name together
// prove the checked AK lives in the EK's TPM.
// Errors: kInvalidArgument (name, secret), kUnsupported (EK algorithms),
// kInternal (OpenSSL).
Result<Credential> MakeCredential(const tpmobj::PublicArea& ek, std::span<const uint8_t> ak_name,
                                  std::span<const uint8_t> secret);

// Constant-time comparison (CRYPTO_memcmp) of the secret sent with the one
// the node returned; false when the sizes differ (sizes are not secret).
bool SecretsEqual(std::span<const uint8_t> a, std::span<const uint8_t> b);

// OK when `cert_der` (exactly one DER X.509 certificate) chains, at the
// current time, to a self-signed CA certificate among `ca_pem_paths` (PEM
// files, each may hold several certificates; intermediates are given in
// the same list: every certificate goes into the X509_STORE, and the chain
// must end at a self-signed one), AND its subject public key equals the
// EK's public key.
// Proves the EK belongs to a TPM the CA vouches for (e.g. a manufacturer's
// CA). Does not check the certificate's TPM attributes (SAN manufacturer,
// model) nor revocation (no CRL is consulted), and says nothing about the
// EK's attributes: the public area's key is compared, not its template.
// Errors: kMalformed (DER, PEM), kNotFound (a CA file), kMismatch (chain,
// key), kUnsupported (EK algorithm).
Status VerifyEkCertificate(std::span<const uint8_t> cert_der,
                           const std::vector<std::string>& ca_pem_paths,
                           const tpmobj::PublicArea& ek);

// What a node sends to enrol. Every field is checked by ParseEnrolmentRequest
// to be well-formed (not trustworthy: the checks above decide that).
struct EnrolmentRequest {
  tpmobj::PublicArea ek;                    // the EK's public area
  std::vector<uint8_t> ek_certificate_der;  // empty when the TPM has none
  tpmobj::PublicArea ak;                    // the AK's public area
  std::vector<uint8_t> ak_creation_data;    // TPMS_CREATION_DATA (no size)
  std::vector<uint8_t> ak_creation_attest;  // TPMS_ATTEST (no size)
  TPMT_SIGNATURE ak_creation_signature{};   // signature over the attest
};

// The request as JSON, one object, all binary fields lowercase hex (the
// parser also accepts upper case):
//   "version":               1 (integer)
//   "ek_public":             TPM2B_PUBLIC of the EK (with its size)
//   "ek_certificate":        the EK certificate, DER; absent when the TPM has
//                            none (never an empty string)
//   "ak_public":             TPM2B_PUBLIC of the AK (with its size)
//   "ak_creation_data":      TPMS_CREATION_DATA (without a size)
//   "ak_creation_attest":    TPMS_ATTEST from TPM2_CertifyCreation (without
//                            a size)
//   "ak_creation_signature": TPMT_SIGNATURE over ak_creation_attest
std::string SerializeEnrolmentRequest(const EnrolmentRequest& request);

// Strict: one JSON object of at most 1 MiB with exactly the fields above
// ("ek_certificate" optional), no unknown or duplicate keys, version 1,
// hex of even length, and each binary field exactly one structure of its
// type. Every refusal is kMalformed and names the field.
Result<EnrolmentRequest> ParseEnrolmentRequest(std::string_view json);

// A node id is the hex TPM name of its EK: only hex digits, 4 to 132 of
// them. Anything else (a path, "..") is refused before it names a file or
// a database row.
Status CheckNodeId(const std::string& node);

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_VIGIL_ATTEST_ENROLMENT_H_
