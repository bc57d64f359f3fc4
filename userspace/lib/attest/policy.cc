#include "vigil/attest/policy.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace vigil::attest {
namespace {

using nlohmann::json;

Status Bad(const std::string& key, const std::string& why) {
  return Status::Error(ErrorCode::kMalformed, "policy: \"" + key + "\" " + why);
}

Result<std::set<std::string>> DigestList(const json& doc, const char* key, bool required) {
  std::set<std::string> out;
  if (!doc.contains(key)) {
    if (required) return Bad(key, "is missing");
    return out;
  }
  const json& list = doc.at(key);
  if (!list.is_array()) return Bad(key, "must be an array of SHA-256 hex digests");
  for (const json& item : list) {
    if (!item.is_string()) return Bad(key, "holds a non-string entry");
    std::string hex = item.get<std::string>();
    if (hex.size() != 64 ||
        !std::all_of(hex.begin(), hex.end(), [](unsigned char c) { return std::isxdigit(c); })) {
      return Bad(key, "holds \"" + hex.substr(0, 80) + "\", not 64 hex digits");
    }
    std::transform(hex.begin(), hex.end(), hex.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.insert(std::move(hex));
  }
  if (required && out.empty()) {
    return Bad(key, "is empty: a policy that allows any value attests nothing");
  }
  return out;
}

}  // namespace

Result<Policy> ParsePolicy(std::string_view text) {
  const json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::Error(ErrorCode::kMalformed, "policy: not a JSON object");
  }
  static const std::set<std::string> kKnown = {"version",
                                               "anchor",
                                               "allow_dev_anchor",
                                               "module_digests",
                                               "params_digests",
                                               "producer_set_digests",
                                               "collector_digests",
                                               "max_loss",
                                               "allow_unsigned",
                                               "allow_reload",
                                               "allow_unclean_reboot",
                                               "nonce_ttl_seconds"};
  for (const auto& [key, value] : doc.items()) {
    if (!kKnown.contains(key)) return Bad(key, "is not a policy key (misspelt?)");
  }
  Policy p;
  if (!doc.contains("version") || !doc["version"].is_number_unsigned()) {
    return Bad("version", "must be a positive integer");
  }
  if (doc["version"].get<uint64_t>() != kPolicyVersion) {
    return Status::Error(ErrorCode::kUnsupported, "policy: version " + doc["version"].dump() +
                                                      " (this verifier reads " +
                                                      std::to_string(kPolicyVersion) + ")");
  }
  const auto boolean = [&](const char* key, bool* out) -> Status {
    if (!doc.contains(key)) return Status::Ok();
    if (!doc[key].is_boolean()) return Bad(key, "must be true or false");
    *out = doc[key].get<bool>();
    return Status::Ok();
  };
  VIGIL_RETURN_IF_ERROR(boolean("allow_dev_anchor", &p.allow_dev_anchor));
  VIGIL_RETURN_IF_ERROR(boolean("allow_unsigned", &p.allow_unsigned));
  VIGIL_RETURN_IF_ERROR(boolean("allow_reload", &p.allow_reload));
  VIGIL_RETURN_IF_ERROR(boolean("allow_unclean_reboot", &p.allow_unclean_reboot));
  if (!doc.contains("anchor") || !doc["anchor"].is_string()) {
    return Bad("anchor", "must be \"ima\" or \"pcr\"");
  }
  const std::string anchor = doc["anchor"].get<std::string>();
  if (anchor == "ima") {
    p.anchor = VIGIL_ANCHOR_IMA;
  } else if (anchor == "pcr") {
    if (!p.allow_dev_anchor) {
      return Bad("anchor",
                 "is \"pcr\" (PCRs 16/23, resettable by root) without "
                 "\"allow_dev_anchor\": true");
    }
    p.anchor = VIGIL_ANCHOR_PCR;
  } else {
    return Bad("anchor", "must be \"ima\" or \"pcr\", not \"" + anchor.substr(0, 40) + "\"");
  }
  VIGIL_ASSIGN_OR_RETURN(p.module_digests, DigestList(doc, "module_digests", true));
  VIGIL_ASSIGN_OR_RETURN(p.params_digests, DigestList(doc, "params_digests", true));
  VIGIL_ASSIGN_OR_RETURN(p.producer_set_digests, DigestList(doc, "producer_set_digests", true));
  VIGIL_ASSIGN_OR_RETURN(p.collector_digests, DigestList(doc, "collector_digests", false));
  if (doc.contains("max_loss")) {
    if (!doc["max_loss"].is_number_unsigned()) return Bad("max_loss", "must be an integer >= 0");
    p.max_loss = doc["max_loss"].get<uint64_t>();
  }
  if (doc.contains("nonce_ttl_seconds")) {
    const json& ttl = doc["nonce_ttl_seconds"];
    if (!ttl.is_number_unsigned() || ttl.get<uint64_t>() == 0 || ttl.get<uint64_t>() > 3600) {
      return Bad("nonce_ttl_seconds", "must be 1 to 3600");
    }
    p.nonce_ttl_seconds = static_cast<uint32_t>(ttl.get<uint64_t>());
  }
  return p;
}

std::string SerializePolicy(const Policy& p) {
  json doc = {
      {"version", p.version},
      {"anchor", p.anchor == VIGIL_ANCHOR_PCR ? "pcr" : "ima"},
      {"allow_dev_anchor", p.allow_dev_anchor},
      {"module_digests", p.module_digests},
      {"params_digests", p.params_digests},
      {"producer_set_digests", p.producer_set_digests},
      {"collector_digests", p.collector_digests},
      {"max_loss", p.max_loss},
      {"allow_unsigned", p.allow_unsigned},
      {"allow_reload", p.allow_reload},
      {"allow_unclean_reboot", p.allow_unclean_reboot},
      {"nonce_ttl_seconds", p.nonce_ttl_seconds},
  };
  return doc.dump(2) + "\n";
}

}  // namespace vigil::attest
