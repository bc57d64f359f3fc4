#include "vigil/attest/baseline_report.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <tss2/tss2_mu.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "json_fields.h"
#include "vigil.h"
#include "vigil/attest/evidence.h"
#include "vigil/baseline/store.h"
#include "vigil/ima.h"
#include "vigil/openssl_ptr.h"
#include "vigil/records.h"

namespace vigil::attest {
namespace {

using json = nlohmann::json;

constexpr int kMaxDepth = 3;  // report -> quote/measure/pcrs -> pcrs[0] fields
constexpr char kDomain[] = "vigil-baseline-report-v1";  // with its NUL

Status Bad(const std::string& field, const std::string& why) {
  return Malformed("baseline report", field, why);
}

// The fields of one report object (json_fields.h).
class Fields : public JsonFields {
 public:
  Fields(const json& obj, std::string path) : JsonFields("baseline report", obj, std::move(path)) {}
  using JsonFields::String;
  using JsonFields::Unsigned;
  // Non-empty strings up to `max`; integers from `min` on.
  Result<std::string> String(std::string_view key, size_t max) {
    return JsonFields::String(key, 1, max);
  }
  Result<uint64_t> Unsigned(std::string_view key, uint64_t min) {
    return JsonFields::Unsigned(key, min, UINT64_MAX);
  }
};

Result<BaselineReport> FromJson(const json& doc) {
  if (!doc.is_object()) return Bad("(top)", "expected an object");
  Fields top(doc, "");
  VIGIL_ASSIGN_OR_RETURN(const std::string format, top.String("format", 64));
  if (format != kBaselineReportFormat) {
    return Bad("format", "'" + format + "' is not \"" + std::string(kBaselineReportFormat) + "\"");
  }
  VIGIL_ASSIGN_OR_RETURN(const uint64_t version, top.Unsigned("version", 0));
  if (version != kBaselineReportVersion) {
    return Status::Error(ErrorCode::kUnsupported, "baseline report: version " +
                                                      std::to_string(version) +
                                                      " is not supported (this reads version 1)");
  }
  BaselineReport r;
  VIGIL_ASSIGN_OR_RETURN(r.node, top.String("node", kMaxNodeIdBytes));
  VIGIL_ASSIGN_OR_RETURN(r.snapshot, top.Base64("snapshot", kMaxSnapshotBytes));
  if (r.snapshot.empty()) return Bad("snapshot", "empty");
  VIGIL_ASSIGN_OR_RETURN(r.snapshot_sha256, top.Hex("snapshot_sha256", 32, 32));
  {
    VIGIL_ASSIGN_OR_RETURN(const json* m, top.Get("measure", json::value_t::object));
    Fields f(*m, "measure");
    VIGIL_ASSIGN_OR_RETURN(const std::vector<uint8_t> instance,
                           f.Hex("instance", r.instance.size(), r.instance.size()));
    std::copy(instance.begin(), instance.end(), r.instance.begin());
    VIGIL_ASSIGN_OR_RETURN(r.measure_seq, f.Unsigned("seq", 1));
    VIGIL_ASSIGN_OR_RETURN(r.measure_name, f.String("name", VIGIL_NAME_LEN - 1));
    if (r.measure_name != kBaselineMeasureName) {
      return Bad("measure.name", "'" + r.measure_name + "' is not \"baseline\"");
    }
    VIGIL_RETURN_IF_ERROR(f.Done());
  }
  VIGIL_ASSIGN_OR_RETURN(r.nonce, top.Hex("nonce", 1, kMaxNonceBytes));
  {
    VIGIL_ASSIGN_OR_RETURN(const json* q, top.Get("quote", json::value_t::object));
    Fields f(*q, "quote");
    VIGIL_ASSIGN_OR_RETURN(r.quote_attest, f.Hex("attest", 1, kMaxTpmBlobBytes));
    VIGIL_ASSIGN_OR_RETURN(r.quote_signature, f.Hex("signature", 1, kMaxTpmBlobBytes));
    VIGIL_RETURN_IF_ERROR(f.Done());
  }
  {
    VIGIL_ASSIGN_OR_RETURN(const json* pcrs, top.Get("pcrs", json::value_t::array));
    if (pcrs->size() != 1 || !(*pcrs)[0].is_object()) {
      return Bad("pcrs", "expected exactly one object (sha256 PCR 10)");
    }
    Fields f((*pcrs)[0], "pcrs[0]");
    VIGIL_ASSIGN_OR_RETURN(const std::string alg, f.String("alg", 16));
    if (alg != "sha256") return Bad("pcrs[0].alg", "'" + alg + "' is not \"sha256\"");
    VIGIL_ASSIGN_OR_RETURN(const json* pcr, f.Get("pcr", json::value_t::number_unsigned));
    if (pcr->get<uint64_t>() != ima::kImaPcr) return Bad("pcrs[0].pcr", "not 10");
    VIGIL_ASSIGN_OR_RETURN(r.pcr10_sha256, f.Hex("value", 32, 32));
    VIGIL_RETURN_IF_ERROR(f.Done());
  }
  {
    VIGIL_ASSIGN_OR_RETURN(const json* ima, top.Get("ima", json::value_t::object));
    Fields f(*ima, "ima");
    VIGIL_ASSIGN_OR_RETURN(r.ima_entries, f.Base64("entries", kMaxReportImaBytes));
    VIGIL_RETURN_IF_ERROR(f.Done());
  }
  VIGIL_ASSIGN_OR_RETURN(r.ak_public, top.Hex("ak_public", 1, kMaxTpmBlobBytes));
  VIGIL_RETURN_IF_ERROR(top.Done());
  return r;
}

// A name from a hostile record, safe to print: printable ASCII or '?'.
std::string Printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return out;
}

bool SameBytes(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  return a.size() == b.size() && (a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0);
}

// The measure entry of the report within IMA's quoted prefix; a reason
// when there is none, or more than one.
Status FindMeasureEntry(const ima::ImaLog& log, size_t prefix, const BaselineReport& r,
                        size_t* index) {
  const std::string instance = crypto::ToHex(std::span<const uint8_t>(r.instance.data(), 4));
  const ima::VigilEntry* found = nullptr;
  for (const ima::VigilEntry& e : log.vigil_entries()) {
    if (e.index >= prefix || e.instance != instance || e.kind != "measure" ||
        e.seq != r.measure_seq) {
      continue;
    }
    if (found) {
      return Status::Error(ErrorCode::kMismatch, "measure: two IMA entries for MEASURE seq " +
                                                     std::to_string(r.measure_seq) +
                                                     " of instance " + instance);
    }
    found = &e;
  }
  const std::string what =
      "vigil-" + instance + "-measure-" + std::to_string(r.measure_seq) + " (the MEASURE record)";
  if (!found) {
    return Status::Error(ErrorCode::kMismatch, "measure: IMA's log holds no entry " + what +
                                                   " within the " + std::to_string(prefix) +
                                                   " entries that replay to the quoted PCR 10");
  }
  auto rec = records::Record::Decode(found->record);
  if (!rec.ok() || rec->bytes().size() != found->record.size()) {
    return Status::Error(ErrorCode::kMismatch,
                         "measure: IMA entry " + what + " does not hold exactly one log record");
  }
  const std::optional<vigil_log_measure> m = rec->As<vigil_log_measure>();
  if (!m) {
    return Status::Error(ErrorCode::kMismatch,
                         "measure: IMA entry " + what + " is not a MEASURE record");
  }
  if (m->hdr.seq != r.measure_seq) {
    return Status::Error(ErrorCode::kMismatch, "measure: the record in " + what + " has log seq " +
                                                   std::to_string(m->hdr.seq));
  }
  if (m->kind != VIGIL_MEASURE_USER) {
    return Status::Error(ErrorCode::kMismatch, "measure: " + what + " is of kind " +
                                                   std::to_string(m->kind) +
                                                   ", not a MEASURE ioctl's (3)");
  }
  const size_t name_len = strnlen(m->name, sizeof(m->name));
  const std::string_view name(m->name, name_len);
  if (name_len == sizeof(m->name) || name != kBaselineMeasureName) {
    return Status::Error(ErrorCode::kMismatch, "measure: " + what + " is named '" +
                                                   Printable(name) + "', not \"baseline\"");
  }
  if (!SameBytes(std::span<const uint8_t>(m->digest, sizeof(m->digest)), r.snapshot_sha256)) {
    return Status::Error(ErrorCode::kMismatch,
                         "measure: " + what + " measured " +
                             crypto::ToHex(std::span<const uint8_t>(m->digest, sizeof(m->digest))) +
                             ", not the report's snapshot_sha256");
  }
  // The newest baseline of the instance at the quote: a later "baseline"
  // MEASURE within the quoted prefix supersedes this one.
  for (const ima::VigilEntry& e : log.vigil_entries()) {
    if (e.index >= prefix || e.index <= found->index || e.instance != instance ||
        e.kind != "measure") {
      continue;
    }
    auto later = records::Record::Decode(e.record);
    if (!later.ok()) continue;
    const std::optional<vigil_log_measure> lm = later->As<vigil_log_measure>();
    if (lm && lm->kind == VIGIL_MEASURE_USER &&
        std::string_view(lm->name, strnlen(lm->name, sizeof(lm->name))) == kBaselineMeasureName) {
      return Status::Error(ErrorCode::kMismatch,
                           "measure: superseded: a later \"baseline\" MEASURE (seq " +
                               std::to_string(e.seq) + ", IMA entry " + std::to_string(e.index) +
                               ") is in the quoted log");
    }
  }
  *index = found->index;
  return Status::Ok();
}

// Whether `report_ak` (a TPM2B_PUBLIC) holds the same public key as `ak`.
bool SameKey(std::span<const uint8_t> report_ak, const tpmobj::PublicArea& ak) {
  auto theirs = tpmobj::ParseTpm2bPublic(report_ak);
  if (!theirs.ok()) return false;
  auto a = tpmobj::ToEvpPkey(ak);
  auto b = tpmobj::ToEvpPkey(*theirs);
  return a.ok() && b.ok() && EVP_PKEY_eq(a->get(), b->get()) == 1;
}

Result<tpmobj::PublicArea> AkFromPem(std::span<const uint8_t> bytes) {
  ossl::BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio) return Status::FromOpenSsl("BIO_new_mem_buf");
  ossl::PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) return Status::Error(ErrorCode::kMalformed, "AK: not a PEM public key");
  TPMT_PUBLIC pub{};
  pub.nameAlg = TPM2_ALG_SHA256;
  pub.objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
                         TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                         TPMA_OBJECT_USERWITHAUTH;
  const auto put = [](const BIGNUM* bn, size_t size, uint8_t* out, uint16_t* out_size) {
    if (bn == nullptr || BN_bn2binpad(bn, out, static_cast<int>(size)) < 0) return false;
    *out_size = static_cast<uint16_t>(size);
    return true;
  };
  if (EVP_PKEY_is_a(pkey.get(), "EC")) {
    char group[64] = {};
    size_t group_len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_len) != 1) {
      return Status::FromOpenSsl("EVP_PKEY_get_utf8_string_param");
    }
    const std::string_view g(group, group_len);
    size_t coord = 0;
    pub.type = TPM2_ALG_ECC;
    TPMS_ECC_PARMS& p = pub.parameters.eccDetail;
    p.symmetric.algorithm = TPM2_ALG_NULL;
    p.kdf.scheme = TPM2_ALG_NULL;
    p.scheme.scheme = TPM2_ALG_ECDSA;
    if (g == "prime256v1" || g == "P-256") {
      p.curveID = TPM2_ECC_NIST_P256;
      p.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
      coord = 32;
    } else if (g == "secp384r1" || g == "P-384") {
      p.curveID = TPM2_ECC_NIST_P384;
      p.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA384;
      coord = 48;
    } else {
      return Status::Error(ErrorCode::kUnsupported, "AK: curve " + std::string(g));
    }
    BIGNUM* x = nullptr;
    BIGNUM* y = nullptr;
    EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    ossl::BignumPtr xp(x), yp(y);
    if (!put(x, coord, pub.unique.ecc.x.buffer, &pub.unique.ecc.x.size) ||
        !put(y, coord, pub.unique.ecc.y.buffer, &pub.unique.ecc.y.size)) {
      return Status::FromOpenSsl("AK: EC point");
    }
  } else if (EVP_PKEY_is_a(pkey.get(), "RSA")) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_N, &n);
    EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_RSA_E, &e);
    ossl::BignumPtr np(n), ep(e);
    if (!n || !e) return Status::FromOpenSsl("AK: RSA key");
    const int bits = BN_num_bits(n);
    if (bits < 2048 || static_cast<size_t>(bits) / 8 > sizeof(pub.unique.rsa.buffer) ||
        BN_num_bits(e) > 32) {
      return Status::Error(ErrorCode::kUnsupported, "AK: RSA key of " + std::to_string(bits) +
                                                        " bits (2048..4096, exponent < 2^32)");
    }
    pub.type = TPM2_ALG_RSA;
    TPMS_RSA_PARMS& p = pub.parameters.rsaDetail;
    p.symmetric.algorithm = TPM2_ALG_NULL;
    p.scheme.scheme = TPM2_ALG_RSASSA;
    p.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    p.keyBits = static_cast<uint16_t>((bits + 7) / 8 * 8);
    const BN_ULONG exponent = BN_get_word(e);
    p.exponent = exponent == 65537 ? 0 : static_cast<uint32_t>(exponent);
    if (!put(n, p.keyBits / 8, pub.unique.rsa.buffer, &pub.unique.rsa.size)) {
      return Status::FromOpenSsl("AK: RSA modulus");
    }
  } else {
    return Status::Error(ErrorCode::kUnsupported, "AK: neither an EC nor an RSA key");
  }
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> marshalled,
                         tpmobj::Marshal(pub, Tss2_MU_TPMT_PUBLIC_Marshal, "TPMT_PUBLIC"));
  return tpmobj::ParseTpmtPublic(marshalled);
}

}  // namespace

std::string SerializeBaselineReport(const BaselineReport& r) {
  using ojson = nlohmann::ordered_json;
  ojson doc;
  doc["format"] = kBaselineReportFormat;
  doc["version"] = kBaselineReportVersion;
  doc["node"] = r.node;
  doc["snapshot"] = EncodeBase64(r.snapshot);
  doc["snapshot_sha256"] = crypto::ToHex(r.snapshot_sha256);
  doc["measure"] = {
      {"instance", crypto::ToHex(r.instance)}, {"seq", r.measure_seq}, {"name", r.measure_name}};
  doc["nonce"] = crypto::ToHex(r.nonce);
  doc["quote"] = {{"attest", crypto::ToHex(r.quote_attest)},
                  {"signature", crypto::ToHex(r.quote_signature)}};
  doc["pcrs"] = ojson::array(
      {{{"alg", "sha256"}, {"pcr", ima::kImaPcr}, {"value", crypto::ToHex(r.pcr10_sha256)}}});
  doc["ima"] = {{"entries", EncodeBase64(r.ima_entries)}};
  doc["ak_public"] = crypto::ToHex(r.ak_public);
  return doc.dump() + "\n";
}

Result<BaselineReport> ParseBaselineReport(std::string_view text) {
  if (text.size() > kMaxBaselineReportBytes) {
    return Bad("(top)", "more than " + std::to_string(kMaxBaselineReportBytes) + " bytes");
  }
  // Duplicate keys refused, nesting bounded.
  VIGIL_ASSIGN_OR_RETURN(const json doc, ParseStrictJson("baseline report", text, kMaxDepth));
  return FromJson(doc);
}

Result<std::vector<uint8_t>> BaselineReportQualifyingData(std::span<const uint8_t> snapshot_sha256,
                                                          std::span<const uint8_t, 16> instance,
                                                          uint64_t measure_seq,
                                                          std::span<const uint8_t> nonce) {
  if (snapshot_sha256.size() != 32) {
    return Status::Error(ErrorCode::kInvalidArgument, "snapshot_sha256 must be 32 bytes");
  }
  if (nonce.empty() || nonce.size() > kMaxNonceBytes) {
    return Status::Error(ErrorCode::kInvalidArgument, "nonce must be 1 to 64 bytes");
  }
  uint8_t seq_be[8];
  for (int i = 0; i < 8; ++i) seq_be[i] = static_cast<uint8_t>(measure_seq >> (56 - 8 * i));
  const auto* domain = reinterpret_cast<const uint8_t*>(kDomain);
  return crypto::Hash(TPM2_ALG_SHA256, {std::span<const uint8_t>(domain, sizeof(kDomain)),
                                        snapshot_sha256, instance, seq_be, nonce});
}

Result<baseline::BaselineStore> ParseBaselineSnapshotStore(std::string_view snapshot) {
  baseline::BaselineConfig config;
  config.max_agents = std::numeric_limits<uint32_t>::max();
  config.max_executables_per_agent = std::numeric_limits<uint32_t>::max();
  // The state's own sketch parameters (vigild's configuration is not in
  // the report); Parse still checks them against the sketches.
  auto keep = [](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) {
      return parsed.is_string() && parsed.get_ref<const std::string&>() == "sketch";
    }
    return true;
  };
  const json peek = json::parse(snapshot, keep, /*allow_exceptions=*/false);
  if (peek.is_object()) {
    if (auto it = peek.find("sketch"); it != peek.end() && it->is_object()) {
      if (auto a = it->find("alpha"); a != it->end() && a->is_number()) {
        const double alpha = a->get<double>();
        if (alpha >= baseline::DdSketch::kMinAlpha && alpha <= baseline::DdSketch::kMaxAlpha) {
          config.sketch_alpha = alpha;
        }
      }
      if (auto b = it->find("max_bins"); b != it->end() && b->is_number_unsigned()) {
        const uint64_t bins = b->get<uint64_t>();
        if (bins >= 16 && bins <= 65536) config.sketch_max_bins = static_cast<uint32_t>(bins);
      }
    }
  }
  auto parsed = baseline::BaselineStore::Parse(snapshot, config);
  if (!parsed.ok()) {
    const baseline::StateStatus& st = parsed.status();
    return Status::Error(ErrorCode::kMalformed,
                         std::string(baseline::StateCodeName(st.code())) + " at " +
                             (st.path().empty() ? std::string("/") : st.path()) + ": " +
                             st.message());
  }
  return std::move(parsed).value();
}

Result<size_t> ParseBaselineSnapshot(std::string_view snapshot) {
  VIGIL_ASSIGN_OR_RETURN(baseline::BaselineStore store, ParseBaselineSnapshotStore(snapshot));
  return store.AgentNames().size();
}

Result<tpmobj::PublicArea> ParseAkFile(std::span<const uint8_t> bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.find("-----BEGIN") != std::string_view::npos) return AkFromPem(bytes);
  // Hex (enrolment.json's ak_public), surrounding whitespace allowed.
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  if (first != std::string_view::npos &&
      text.substr(first, last - first + 1).find_first_not_of("0123456789abcdefABCDEF") ==
          std::string_view::npos) {
    auto raw = crypto::FromHex(text.substr(first, last - first + 1));
    if (raw.ok()) return tpmobj::ParseTpm2bPublic(*raw);
  }
  return tpmobj::ParseTpm2bPublic(bytes);
}

BaselineReportCheck CheckBaselineReport(std::string_view report_json, const tpmobj::PublicArea& ak,
                                        std::optional<std::span<const uint8_t>> expected_nonce) {
  BaselineReportCheck out;
  auto parsed = ParseBaselineReport(report_json);
  if (!parsed.ok()) {
    out.reasons.push_back("report: " + parsed.status().message());
    return out;
  }
  const BaselineReport& r = *parsed;
  out.node = r.node;
  out.snapshot_sha256 = r.snapshot_sha256;
  out.measure_seq = r.measure_seq;
  out.instance = crypto::ToHex(r.instance);

  // The AK the report names: only a hint; the trusted one verifies. Keys
  // are compared (a PEM given to the checker has no TPM attributes).
  if (!SameKey(r.ak_public, ak)) {
    out.reasons.push_back(
        "ak: the report's ak_public is not the AK trusted for this node (the quote is checked "
        "with the trusted one)");
  }
  if (expected_nonce) {
    if (!SameBytes(*expected_nonce, r.nonce)) {
      out.reasons.push_back("nonce: the report's nonce " + crypto::ToHex(r.nonce) +
                            " is not the verifier's " + crypto::ToHex(*expected_nonce) +
                            " (stale or replayed report)");
    } else {
      out.fresh = true;
    }
  }

  // The quote, and through it PCR 10 and IMA's log.
  auto qualifying =
      BaselineReportQualifyingData(r.snapshot_sha256, r.instance, r.measure_seq, r.nonce);
  auto quote = qualifying.ok() ? CheckQuote(ak, r.quote_attest, r.quote_signature, *qualifying)
                               : Result<QuoteFacts>(qualifying.status());
  if (!quote.ok()) {
    std::string why = quote.status().message();
    // CheckQuote speaks of "the verifier's nonce"; here extraData binds more.
    if (why.find("extraData") != std::string::npos) {
      why =
          "extraData is not this report's qualifying data (snapshot_sha256, MEASURE record, "
          "nonce): the quote was made for something else";
    }
    out.reasons.push_back("quote: " + why);
  } else {
    out.clock = quote->clock;
    const std::vector<PcrValue> values = {{TPM2_ALG_SHA256, ima::kImaPcr, r.pcr10_sha256}};
    Status pcrs = CheckPcrs(*quote, {{TPM2_ALG_SHA256, {ima::kImaPcr}}}, values);
    if (!pcrs.ok()) {
      out.reasons.push_back("pcrs: " + pcrs.message());
    } else {
      auto log = ima::ImaLog::Create({TPM2_ALG_SHA256});
      Status appended = log.ok() ? log->Append(r.ima_entries) : log.status();
      if (appended.ok() && log->partial()) {
        appended = Status::Error(ErrorCode::kTruncated, "the last entry is cut short");
      }
      if (!appended.ok()) {
        out.reasons.push_back("ima: IMA's log: " + appended.message());
      } else {
        auto prefix = log->MatchPcr10({{TPM2_ALG_SHA256, r.pcr10_sha256}});
        if (!prefix.ok()) {
          out.reasons.push_back("ima: IMA's log does not replay to the quoted PCR 10: " +
                                prefix.status().message());
        } else {
          size_t index = 0;
          Status found = FindMeasureEntry(*log, *prefix, r, &index);
          if (!found.ok()) {
            out.reasons.push_back(found.message());
          } else {
            out.ima_entry = index;
          }
        }
      }
    }
  }

  // The snapshot itself.
  auto digest = crypto::Hash(TPM2_ALG_SHA256, r.snapshot);
  if (!digest.ok() || !SameBytes(*digest, r.snapshot_sha256)) {
    out.reasons.push_back("snapshot: its SHA-256 is " +
                          (digest.ok() ? crypto::ToHex(*digest) : std::string("(unknown)")) +
                          ", not the report's snapshot_sha256 " + crypto::ToHex(r.snapshot_sha256));
  }
  const std::string_view text(reinterpret_cast<const char*>(r.snapshot.data()), r.snapshot.size());
  auto agents = ParseBaselineSnapshot(text);
  if (!agents.ok()) {
    out.reasons.push_back("snapshot: not a baseline state: " + agents.status().message());
  } else {
    out.agents = *agents;
  }
  out.valid = out.reasons.empty();
  return out;
}

}  // namespace vigil::attest
