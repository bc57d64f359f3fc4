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

// The encodings a strict document may come in: JSON text, or the same
// document as CBOR (RFC 8949) with byte strings where JSON has hex or base64.
enum class Encoding { kJson, kCbor };

// Builds the DOM (nlohmann's own SAX DOM builder) while refusing, in the
// same single pass: a key repeated in one object (two parsers that disagree
// on "first wins" / "last wins" would read two different documents),
// nesting deeper than `max_depth`, more than `max_values` values (a DOM of
// tiny values costs ~35 times its text), and, in CBOR, a text string that
// is not UTF-8 (JSON's lexer checks it; nlohmann's CBOR reader does not).
class StrictDomSax {
 public:
  using json = nlohmann::json;
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  StrictDomSax(json& root, Encoding encoding, int max_depth, size_t max_values)
      : dom_(root, /*allow_exceptions=*/false),
        encoding_(encoding),
        max_depth_(max_depth),
        max_values_(max_values) {}

  bool null() { return Value() && dom_.null(); }
  bool boolean(bool v) { return Value() && dom_.boolean(v); }
  bool number_integer(number_integer_t v) { return Value() && dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) { return Value() && dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) {
    return Value() && dom_.number_float(v, s);
  }
  bool string(string_t& v) { return Value() && Utf8(v) && dom_.string(v); }
  bool binary(binary_t& v) { return Value() && dom_.binary(v); }
  bool start_object(size_t len) {
    if (!Open(len)) return false;
    keys_.emplace_back();
    return dom_.start_object(len);
  }
  bool key(string_t& k) {
    if (!Utf8(k)) return false;
    if (!keys_.back().insert(k).second) {
      field_ = k.size() > 64 ? k.substr(0, 64) + "..." : k;
      return Fail("appears twice in one object");
    }
    return dom_.key(k);
  }
  bool end_object() {
    keys_.pop_back();
    --depth_;
    return dom_.end_object();
  }
  bool start_array(size_t len) { return Open(len) && dom_.start_array(len); }
  bool end_array() {
    --depth_;
    return dom_.end_array();
  }
  template <class Exception>
  bool parse_error(size_t, const std::string&, const Exception& ex) {
    return Fail(std::string(encoding_ == Encoding::kCbor ? "not CBOR: " : "not JSON: ") +
                ex.what());
  }

  const std::string& error() const { return error_; }
  // The key an error is about ("(top)" for the document as a whole).
  const std::string& field() const { return field_; }

 private:
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
    return false;
  }
  bool Value() {
    if (++values_ <= max_values_) return true;
    return Fail("more than " + std::to_string(max_values_) + " values");
  }
  // A CBOR container says its length up front: refused before it is read.
  bool Open(size_t len) {
    if (!Value()) return false;
    if (++depth_ > static_cast<size_t>(max_depth_)) return Fail("nested deeper than the format");
    if (len != static_cast<size_t>(-1) && len > max_values_ - values_) {
      return Fail("a container of " + std::to_string(len) + " values is too large");
    }
    return true;
  }
  bool Utf8(const string_t& s) {
    if (encoding_ == Encoding::kJson) return true;  // the lexer checked it
    try {
      (void)json(s).dump();  // strict: throws on invalid UTF-8
      return true;
    } catch (const json::exception&) {
      return Fail("a text string is not UTF-8");
    }
  }
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  Encoding encoding_;
  int max_depth_;
  size_t max_values_;
  size_t depth_ = 0;
  size_t values_ = 0;
  std::vector<std::set<std::string>> keys_;
  std::string error_;
  std::string field_ = "(top)";
};

// Parses `bytes` as one document in `encoding`, all of it, in one pass,
// with StrictDomSax's limits. kMalformed "<what>: (top): <why>", or
// "<what>: <key>: appears twice in one object".
inline Result<nlohmann::json> ParseStrict(std::string_view what, std::string_view bytes,
                                          Encoding encoding, int max_depth,
                                          size_t max_values = SIZE_MAX) {
  using json = nlohmann::json;
  json doc;
  StrictDomSax sax(doc, encoding, max_depth, max_values);
  bool ok = false;
  try {
    ok = json::sax_parse(
        bytes.begin(), bytes.end(), &sax,
        encoding == Encoding::kCbor ? json::input_format_t::cbor : json::input_format_t::json,
        /*strict=*/true);
  } catch (const json::exception& e) {
    return Malformed(
        what, "(top)",
        std::string("not ") + (encoding == Encoding::kCbor ? "CBOR: " : "JSON: ") + e.what());
  }
  if (!ok || !sax.error().empty()) {
    return Malformed(what, sax.field(), sax.error().empty() ? "not a document" : sax.error());
  }
  return doc;
}

// The JSON text form (baseline reports, evidence as JSON).
inline Result<nlohmann::json> ParseStrictJson(std::string_view what, std::string_view text,
                                              int max_depth) {
  return ParseStrict(what, text, Encoding::kJson, max_depth);
}

class JsonFields {
 public:
  using json = nlohmann::json;

  // `what` names the format in messages ("evidence", "baseline report").
  // `encoding`: what the document was read from; in CBOR, Hex and Base64
  // fields are byte strings (and only byte strings).
  JsonFields(std::string_view what, const json& obj, std::string path,
             Encoding encoding = Encoding::kJson)
      : what_(what), obj_(obj), path_(std::move(path)), encoding_(encoding) {}

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
    if (encoding_ == Encoding::kCbor) return Bytes(key, min, max);
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::string));
    const std::string& s = v->get_ref<const std::string&>();
    if (s.size() > 2 * max) return Bad(key, "more than " + std::to_string(max) + " bytes");
    auto bytes = crypto::FromHex(s);
    if (!bytes.ok()) return Bad(key, "not hex");
    if (bytes->size() < min) return Bad(key, "fewer than " + std::to_string(min) + " bytes");
    return std::move(bytes).value();
  }

  Result<std::vector<uint8_t>> Base64(std::string_view key, size_t max) {
    if (encoding_ == Encoding::kCbor) return Bytes(key, 0, max);
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::string));
    auto bytes = DecodeBase64(v->get_ref<const std::string&>(), max);
    if (!bytes.ok()) return Bad(key, bytes.status().message());
    return std::move(bytes).value();
  }

  // A CBOR byte string of min..max bytes.
  Result<std::vector<uint8_t>> Bytes(std::string_view key, size_t min, size_t max) {
    VIGIL_ASSIGN_OR_RETURN(const json* v, Get(key, json::value_t::binary));
    const std::vector<uint8_t>& b = v->get_binary();
    if (b.size() > max) return Bad(key, "more than " + std::to_string(max) + " bytes");
    if (b.size() < min) return Bad(key, "fewer than " + std::to_string(min) + " bytes");
    return std::vector<uint8_t>(b.begin(), b.end());
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
      case json::value_t::binary:
        return "a byte string";
      default:
        return "another type";
    }
  }

  std::string_view what_;
  const json& obj_;
  std::string path_;
  Encoding encoding_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace vigil::attest

#endif  // VIGIL_USERSPACE_LIB_ATTEST_JSON_FIELDS_H_
