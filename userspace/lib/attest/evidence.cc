#include "vigil/attest/evidence.h"

#include <openssl/evp.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "json_fields.h"

namespace vigil::attest {
namespace {

using json = nlohmann::json;

constexpr int kMaxDepth = 4;  // evidence -> quote/log/... -> pcrs[i] -> field
// Every value of the largest evidence (384 PCRs of 4 values each, 8 banks,
// the rest) fits with room to spare; a DOM of more is refused as it is built.
constexpr size_t kMaxValues = 4096;

struct AlgEntry {
  uint16_t alg;
  const char* name;
};
constexpr AlgEntry kAlgs[] = {{TPM2_ALG_SHA1, "sha1"},
                              {TPM2_ALG_SHA256, "sha256"},
                              {TPM2_ALG_SHA384, "sha384"},
                              {TPM2_ALG_SHA512, "sha512"},
                              {TPM2_ALG_SM3_256, "sm3_256"}};

std::optional<uint16_t> AlgFromName(std::string_view name) {
  for (const AlgEntry& e : kAlgs) {
    if (name == e.name) return e.alg;
  }
  return std::nullopt;
}

std::string AlgToName(uint16_t alg) {
  for (const AlgEntry& e : kAlgs) {
    if (alg == e.alg) return e.name;
  }
  return crypto::AlgName(alg);  // "alg-0x....": refused when read back
}

Status Bad(const std::string& field, const std::string& why) {
  return Malformed("evidence", field, why);
}

// The fields of one evidence object (json_fields.h).
class Fields : public JsonFields {
 public:
  Fields(const json& obj, std::string path, Encoding encoding)
      : JsonFields("evidence", obj, std::move(path), encoding) {}
};

Result<PcrValue> ParsePcr(const json& item, const std::string& path, Encoding enc) {
  if (!item.is_object()) return Bad(path, "expected an object");
  Fields f(item, path, enc);
  VIGIL_ASSIGN_OR_RETURN(const std::string alg_name, f.String("alg", 1, 16));
  const std::optional<uint16_t> alg = AlgFromName(alg_name);
  if (!alg) return Bad(f.Path("alg"), "unknown bank '" + alg_name + "'");
  VIGIL_ASSIGN_OR_RETURN(const uint64_t pcr, f.Unsigned("pcr", 0, kMaxPcr));
  VIGIL_ASSIGN_OR_RETURN(const size_t size, crypto::DigestSize(*alg));
  VIGIL_ASSIGN_OR_RETURN(crypto::Digest value, f.Hex("value", size, size));
  if (value.size() != size) {
    return Bad(f.Path("value"), "not " + std::to_string(size) + " bytes");
  }
  VIGIL_RETURN_IF_ERROR(f.Done());
  return PcrValue{*alg, static_cast<uint32_t>(pcr), std::move(value)};
}

Result<Evidence> FromDocument(const json& doc, Encoding enc) {
  if (!doc.is_object()) return Bad("(top)", "expected an object");
  Fields top(doc, "", enc);
  // The version decides how to read the rest: first, and kUnsupported.
  uint32_t version = 0;
  {
    VIGIL_ASSIGN_OR_RETURN(const json* v, top.Get("version", json::value_t::number_unsigned));
    if (v->get<uint64_t>() < kMinEvidenceVersion || v->get<uint64_t>() > kEvidenceVersion) {
      return Status::Error(ErrorCode::kUnsupported,
                           "evidence: version " + std::to_string(v->get<uint64_t>()) +
                               " is not supported (this reads versions 1 and 2)");
    }
    version = static_cast<uint32_t>(v->get<uint64_t>());
  }
  Evidence e;
  e.version = version;
  VIGIL_ASSIGN_OR_RETURN(e.node, top.String("node", 1, kMaxNodeIdBytes));
  VIGIL_ASSIGN_OR_RETURN(e.nonce, top.Hex("nonce", 1, kMaxNonceBytes));

  VIGIL_ASSIGN_OR_RETURN(const json* quote, top.Get("quote", json::value_t::object));
  {
    Fields f(*quote, "quote", enc);
    VIGIL_ASSIGN_OR_RETURN(e.quote.attest, f.Hex("attest", 1, kMaxTpmBlobBytes));
    VIGIL_ASSIGN_OR_RETURN(e.quote.signature, f.Hex("signature", 1, kMaxTpmBlobBytes));
    VIGIL_RETURN_IF_ERROR(f.Done());
  }

  VIGIL_ASSIGN_OR_RETURN(const json* pcrs, top.Get("pcrs", json::value_t::array));
  if (pcrs->size() > kMaxEvidencePcrs) {
    return Bad("pcrs", "more than " + std::to_string(kMaxEvidencePcrs) + " values");
  }
  std::set<std::pair<uint16_t, uint32_t>> seen_pcrs;
  for (size_t i = 0; i < pcrs->size(); ++i) {
    const std::string path = "pcrs[" + std::to_string(i) + "]";
    VIGIL_ASSIGN_OR_RETURN(PcrValue v, ParsePcr((*pcrs)[i], path, enc));
    if (!seen_pcrs.emplace(v.alg, v.pcr).second) {
      return Bad(path, AlgToName(v.alg) + ":" + std::to_string(v.pcr) + " appears twice");
    }
    e.pcrs.push_back(std::move(v));
  }

  VIGIL_ASSIGN_OR_RETURN(const std::string anchor, top.String("anchor", 1, 8));
  if (anchor == "pcr") {
    e.anchor = AnchorKind::kPcr;
  } else if (anchor == "ima") {
    e.anchor = AnchorKind::kIma;
  } else {
    return Bad("anchor", "'" + anchor + "' is neither \"pcr\" nor \"ima\"");
  }

  VIGIL_ASSIGN_OR_RETURN(const json* log, top.Get("log", json::value_t::object));
  {
    Fields f(*log, "log", enc);
    VIGIL_ASSIGN_OR_RETURN(e.log.from_seq,
                           f.Unsigned("from_seq", 1, std::numeric_limits<uint64_t>::max()));
    VIGIL_ASSIGN_OR_RETURN(e.log.records, f.Base64("records", kMaxLogBytes));
    if (log->contains("replay_prefix")) {
      VIGIL_ASSIGN_OR_RETURN(e.log.replay_prefix, f.Base64("replay_prefix", kMaxLogBytes));
    }
    VIGIL_RETURN_IF_ERROR(f.Done());
  }

  VIGIL_ASSIGN_OR_RETURN(const json* events, top.Get("events", json::value_t::object));
  {
    Fields f(*events, "events", enc);
    VIGIL_ASSIGN_OR_RETURN(e.events_after,
                           f.Unsigned("after_seq", 0, std::numeric_limits<uint64_t>::max()));
    VIGIL_ASSIGN_OR_RETURN(e.events, f.Base64("records", kMaxEventsBytes));
    VIGIL_RETURN_IF_ERROR(f.Done());
  }

  VIGIL_ASSIGN_OR_RETURN(const json* ima, top.Get("ima", json::value_t::object, true));
  if (ima) {
    Fields f(*ima, "ima", enc);
    Evidence::Ima out;
    VIGIL_ASSIGN_OR_RETURN(out.from_entry,
                           f.Unsigned("from_entry", 0, std::numeric_limits<uint64_t>::max()));
    VIGIL_ASSIGN_OR_RETURN(out.entries, f.Base64("entries", kMaxImaBytes));
    VIGIL_RETURN_IF_ERROR(f.Done());
    e.ima = std::move(out);
  }

  VIGIL_ASSIGN_OR_RETURN(const json* kc, top.Get("key_certification", json::value_t::object, true));
  if (kc) {
    Fields f(*kc, "key_certification", enc);
    Evidence::KeyCertification out;
    VIGIL_ASSIGN_OR_RETURN(out.key_public, f.Hex("key_public", 1, kMaxTpmBlobBytes));
    VIGIL_ASSIGN_OR_RETURN(out.creation_data, f.Hex("creation_data", 0, kMaxTpmBlobBytes));
    VIGIL_ASSIGN_OR_RETURN(out.attest, f.Hex("attest", 1, kMaxTpmBlobBytes));
    VIGIL_ASSIGN_OR_RETURN(out.signature, f.Hex("signature", 1, kMaxTpmBlobBytes));
    VIGIL_RETURN_IF_ERROR(f.Done());
    e.key_certification = std::move(out);
  }

  VIGIL_ASSIGN_OR_RETURN(const json* module, top.Get("module", json::value_t::object));
  {
    Fields f(*module, "module", enc);
    VIGIL_ASSIGN_OR_RETURN(const std::vector<uint8_t> instance,
                           f.Hex("instance", e.module.instance.size(), e.module.instance.size()));
    std::copy(instance.begin(), instance.end(), e.module.instance.begin());
    VIGIL_ASSIGN_OR_RETURN(const uint64_t flags,
                           f.Unsigned("tpm_flags", 0, std::numeric_limits<uint32_t>::max()));
    e.module.tpm_flags = static_cast<uint32_t>(flags);
    VIGIL_ASSIGN_OR_RETURN(const uint64_t pcr_config, f.Unsigned("pcr_config", 0, kMaxPcr));
    VIGIL_ASSIGN_OR_RETURN(const uint64_t pcr_events, f.Unsigned("pcr_events", 0, kMaxPcr));
    e.module.pcr_config = static_cast<uint32_t>(pcr_config);
    e.module.pcr_events = static_cast<uint32_t>(pcr_events);
    VIGIL_ASSIGN_OR_RETURN(const json* banks, f.Get("banks", json::value_t::array));
    if (banks->size() > kMaxModuleBanks) {
      return Bad("module.banks", "more than " + std::to_string(kMaxModuleBanks) + " banks");
    }
    for (size_t i = 0; i < banks->size(); ++i) {
      const std::string path = "module.banks[" + std::to_string(i) + "]";
      const json& b = (*banks)[i];
      if (!b.is_string()) return Bad(path, "expected a string");
      const std::optional<uint16_t> alg = AlgFromName(b.get_ref<const std::string&>());
      if (!alg) return Bad(path, "unknown bank");
      for (uint16_t have : e.module.banks) {
        if (have == *alg) return Bad(path, "appears twice");
      }
      e.module.banks.push_back(*alg);
    }
    VIGIL_RETURN_IF_ERROR(f.Done());
  }
  VIGIL_RETURN_IF_ERROR(top.Done());
  return e;
}

}  // namespace

std::string EncodeBase64(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return {};
  // 4 output characters per 3 input bytes, plus the NUL EVP_EncodeBlock writes.
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  // One call per chunk: EVP_EncodeBlock takes an int length.
  constexpr size_t kChunk = 3u << 20;
  size_t written = 0;
  for (size_t at = 0; at < bytes.size(); at += kChunk) {
    const size_t n = std::min(kChunk, bytes.size() - at);
    written +=
        static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                                            bytes.data() + at, static_cast<int>(n)));
  }
  out.resize(written);
  return out;
}

Result<std::vector<uint8_t>> DecodeBase64(std::string_view text, size_t max_bytes) {
  if (text.empty()) return std::vector<uint8_t>{};
  if (text.size() % 4 != 0) {
    return Status::Error(ErrorCode::kMalformed, "base64 length is not a multiple of 4");
  }
  if (text.size() / 4 * 3 > max_bytes + 2) {
    return Status::Error(ErrorCode::kMalformed,
                         "more than " + std::to_string(max_bytes) + " bytes");
  }
  // EVP_DecodeBlock skips leading and trailing whitespace and counts the
  // bytes of '=' padding as zeros: refuse the first, subtract the second.
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alnum || c == '+' || c == '/') {
      if (padding) return Status::Error(ErrorCode::kMalformed, "base64: data after '='");
      continue;
    }
    if (c == '=' && i + 2 >= text.size()) {
      ++padding;
      continue;
    }
    return Status::Error(ErrorCode::kMalformed,
                         "base64: invalid character at offset " + std::to_string(i));
  }
  std::vector<uint8_t> out(text.size() / 4 * 3);
  constexpr size_t kChunk = 4u << 20;  // a multiple of 4: chunks end on quanta
  size_t written = 0;
  for (size_t at = 0; at < text.size(); at += kChunk) {
    const size_t n = std::min(kChunk, text.size() - at);
    const int got = EVP_DecodeBlock(out.data() + written,
                                    reinterpret_cast<const unsigned char*>(text.data() + at),
                                    static_cast<int>(n));
    if (got < 0) return Status::Error(ErrorCode::kMalformed, "base64: EVP_DecodeBlock refused it");
    written += static_cast<size_t>(got);
  }
  out.resize(written - padding);
  if (out.size() > max_bytes) {
    return Status::Error(ErrorCode::kMalformed,
                         "more than " + std::to_string(max_bytes) + " bytes");
  }
  // Non-canonical spellings (stray bits in the last quantum) decode to the
  // same bytes: only the canonical one is accepted, so one evidence has one
  // text.
  const std::string_view tail = text.substr(text.size() - 4);
  const size_t tail_bytes = 3 - padding;
  const std::string canonical = EncodeBase64(std::span(out).last(tail_bytes));
  if (canonical != tail) return Status::Error(ErrorCode::kMalformed, "base64: not canonical");
  return out;
}

namespace {

// The evidence document; bytes as hex / base64 text (JSON) or as byte
// strings (CBOR). ordered_json keeps the documented key order.
nlohmann::ordered_json ToDocument(const Evidence& e, Encoding enc) {
  using ojson = nlohmann::ordered_json;
  const bool cbor = enc == Encoding::kCbor;
  const auto hex = [cbor](std::span<const uint8_t> b) {
    return cbor ? ojson::binary(std::vector<uint8_t>(b.begin(), b.end())) : ojson(crypto::ToHex(b));
  };
  const auto b64 = [cbor](std::span<const uint8_t> b) {
    return cbor ? ojson::binary(std::vector<uint8_t>(b.begin(), b.end())) : ojson(EncodeBase64(b));
  };
  ojson doc;
  doc["version"] = e.version;
  doc["node"] = e.node;
  doc["nonce"] = hex(e.nonce);
  doc["quote"] = {{"attest", hex(e.quote.attest)}, {"signature", hex(e.quote.signature)}};
  ojson pcrs = ojson::array();
  for (const PcrValue& v : e.pcrs) {
    pcrs.push_back({{"alg", AlgToName(v.alg)}, {"pcr", v.pcr}, {"value", hex(v.value)}});
  }
  doc["pcrs"] = std::move(pcrs);
  doc["anchor"] = e.anchor == AnchorKind::kIma ? "ima" : "pcr";
  doc["log"] = {{"from_seq", e.log.from_seq}, {"records", b64(e.log.records)}};
  if (!e.log.replay_prefix.empty()) doc["log"]["replay_prefix"] = b64(e.log.replay_prefix);
  doc["events"] = {{"after_seq", e.events_after}, {"records", b64(e.events)}};
  if (e.ima) {
    doc["ima"] = {{"from_entry", e.ima->from_entry}, {"entries", b64(e.ima->entries)}};
  }
  if (e.key_certification) {
    const Evidence::KeyCertification& kc = *e.key_certification;
    doc["key_certification"] = {{"key_public", hex(kc.key_public)},
                                {"creation_data", hex(kc.creation_data)},
                                {"attest", hex(kc.attest)},
                                {"signature", hex(kc.signature)}};
  }
  ojson banks = ojson::array();
  for (uint16_t alg : e.module.banks) banks.push_back(AlgToName(alg));
  doc["module"] = {{"instance", hex(e.module.instance)},
                   {"tpm_flags", e.module.tpm_flags},
                   {"pcr_config", e.module.pcr_config},
                   {"pcr_events", e.module.pcr_events},
                   {"banks", std::move(banks)}};
  return doc;
}

}  // namespace

std::string SerializeEvidence(const Evidence& e) { return ToDocument(e, Encoding::kJson).dump(); }

std::string SerializeEvidenceCbor(const Evidence& e) {
  std::string out;
  nlohmann::ordered_json::to_cbor(ToDocument(e, Encoding::kCbor), out);
  return out;
}

bool LooksLikeCbor(std::string_view bytes) {
  // A CBOR map (major type 5) starts 0xa0..0xbf; JSON text never does.
  return !bytes.empty() && (static_cast<uint8_t>(bytes.front()) & 0xe0) == 0xa0;
}

Result<Evidence> ParseEvidence(std::string_view text) {
  if (text.size() > kMaxEvidenceBytes) {
    return Bad("(top)", "more than " + std::to_string(kMaxEvidenceBytes) + " bytes");
  }
  // One pass: duplicate keys refused, nesting (the format is 4 deep) and
  // the number of values bounded while the DOM is built.
  const Encoding enc = LooksLikeCbor(text) ? Encoding::kCbor : Encoding::kJson;
  VIGIL_ASSIGN_OR_RETURN(const json doc, ParseStrict("evidence", text, enc, kMaxDepth, kMaxValues));
  return FromDocument(doc, enc);
}

}  // namespace vigil::attest
