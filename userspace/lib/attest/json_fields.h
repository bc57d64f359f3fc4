// Strict reading of one JSON object for the attestation formats (evidence,
// baseline reports): typed fields with bounds, and every key not asked for
// refused at the end. Internal to vigil_attest.
#ifndef VIGIL_USERSPACE_LIB_ATTEST_JSON_FIELDS_H_
#define VIGIL_USERSPACE_LIB_ATTEST_JSON_FIELDS_H_

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/attest/evidence.h"
#include "vigil/digest.h"
#include "vigil/status.h"

namespace vigil::attest {

// kMalformed: "<what>: <field>: <why>".
inline Status Malformed(std::string_view what, const std::string& field, const std::string& why) {
  return Status::Error(ErrorCode::kMalformed, std::string(what) + ": " + field + ": " + why);
}

// Parses `text` as one JSON document, refusing a key repeated in one object
// (two parsers that disagree on "first wins" / "last wins" would read two
// different documents) and nesting deeper than `max_depth`.
inline Result<nlohmann::json> ParseStrictJson(std::string_view what, std::string_view text,
                                              int max_depth) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  bool too_deep = false;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    using E = json::parse_event_t;
    if (depth > max_depth) too_deep = true;
    if (too_deep) return false;
    if (event == E::object_start) {
      keys.emplace_back();
    } else if (event == E::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == E::key) {
      if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second &&
          duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    return Malformed(what, "(top)", std::string("not JSON: ") + e.what());
  }
  if (too_deep) return Malformed(what, "(top)", "nested deeper than the format");
  if (!duplicate.empty()) return Malformed(what, duplicate, "appears twice in one object");
  return doc;
}

class JsonFields {
 public:
  using json = nlohmann::json;

  // `what` names the format in messages ("evidence", "baseline report").
  JsonFields(std::string_view what, const json& obj, std::string path)
      : what_(what), obj_(obj), path_(std::move(path)) {}

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  Status Bad(std::string_view key, const std::string& why) const {
    return Malformed(what_, Path(key), why);
  }

  Result<const json*> Get(std::string_view key, json::value_t type, bool optional = false) {
    seen_.insert(std::string(key));
    const auto it = obj_.find(key);
    if (it == obj_.end()) {
      if (optional) return static_cast<const json*>(nullptr);
      return Bad(key, "missing");
    }
    const bool ok =
        type == json::value_t::number_unsigned ? it->is_number_unsigned() : it->type() == type;
    if (!ok)
      return Bad(key, std::string("expected ") + TypeName(type) + ", got " + it->type_name());
    return &*it;
  }

  Result<uint64_t> Unsigned(std::string_view key, uint64_t min, uint64_t max) {
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::number_unsigned));
    const uint64_t n = v->get<uint64_t>();
    if (n < min || n > max) {
      return Bad(key, std::to_string(n) + " is outside " + std::to_string(min) + ".." +
                          std::to_string(max));
    }
    return n;
  }

  Result<std::string> String(std::string_view key, size_t min, size_t max) {
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::string));
    const std::string& s = v->get_ref<const std::string&>();
    if (s.size() < min || s.size() > max) {
      return Bad(key, "length " + std::to_string(s.size()) + " is outside " + std::to_string(min) +
                          ".." + std::to_string(max));
    }
    return s;
  }

  Result<std::vector<uint8_t>> Hex(std::string_view key, size_t min, size_t max) {
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::string));
    const std::string& s = v->get_ref<const std::string&>();
    if (s.size() > 2 * max) return Bad(key, "more than " + std::to_string(max) + " bytes");
    auto bytes = crypto::FromHex(s);
    if (!bytes.ok()) return Bad(key, "not hex");
    if (bytes->size() < min) return Bad(key, "fewer than " + std::to_string(min) + " bytes");
    return std::move(bytes).value();
  }

  Result<std::vector<uint8_t>> Base64(std::string_view key, size_t max) {
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::string));
    auto bytes = DecodeBase64(v->get_ref<const std::string&>(), max);
    if (!bytes.ok()) return Bad(key, bytes.status().message());
    return std::move(bytes).value();
  }

  // After every Get: any other key is unknown.
  Status Done() const {
    for (const auto& item : obj_.items()) {
      if (!seen_.contains(item.key())) return Bad(item.key(), "unknown field");
    }
    return Status::Ok();
  }

 private:
  static const char* TypeName(json::value_t type) {
    switch (type) {
      case json::value_t::object:
        return "an object";
      case json::value_t::array:
        return "an array";
      case json::value_t::string:
        return "a string";
      case json::value_t::number_unsigned:
        return "a non-negative integer";
      default:
        return "another type";
    }
  }

  std::string_view what_;
  const json& obj_;
  std::string path_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_ATTEST_JSON_FIELDS_H_
