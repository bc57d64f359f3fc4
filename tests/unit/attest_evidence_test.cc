// Evidence format v1: round trip, and what the strict parser refuses, each
// error naming its field.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vigil/attest/evidence.h"

namespace vigil {
namespace {

using attest::Evidence;
using nlohmann::json;

Evidence Sample() {
  Evidence e;
  e.node = "000b" + std::string(64, 'a');
  e.nonce = std::vector<uint8_t>(32, 0x11);
  e.quote.attest = {0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0x00};
  e.quote.signature = {0x00, 0x18, 0x00, 0x0b, 0x00, 0x00};
  e.pcrs = {{TPM2_ALG_SHA256, 16, crypto::Digest(32, 0x16)},
            {TPM2_ALG_SHA256, 23, crypto::Digest(32, 0x23)},
            {TPM2_ALG_SHA1, 10, crypto::Digest(20, 0x10)}};
  e.anchor = attest::AnchorKind::kIma;
  e.log.from_seq = 42;
  for (int i = 0; i < 1000; ++i) e.log.records.push_back(static_cast<uint8_t>(i * 7));
  e.ima = Evidence::Ima{3, {1, 2, 3, 4, 5}};
  e.key_certification = Evidence::KeyCertification{{1, 2}, {}, {3, 4}, {5, 6}};
  for (size_t i = 0; i < e.module.instance.size(); ++i) {
    e.module.instance[i] = static_cast<uint8_t>(0xa0 + i);
  }
  e.module.tpm_flags = 0x3;
  e.module.pcr_config = 16;
  e.module.pcr_events = 23;
  e.module.banks = {TPM2_ALG_SHA1, TPM2_ALG_SHA256};
  return e;
}

// Parses `doc` after `edit`, expects kMalformed naming `field`.
void ExpectMalformed(const std::function<void(json&)>& edit, const std::string& field) {
  json doc = json::parse(attest::SerializeEvidence(Sample()));
  edit(doc);
  auto parsed = attest::ParseEvidence(doc.dump());
  ASSERT_FALSE(parsed.ok()) << "accepted with " << field << " edited";
  EXPECT_EQ(parsed.status().code(), ErrorCode::kMalformed) << parsed.status().ToString();
  EXPECT_NE(parsed.status().message().find(field), std::string::npos)
      << field << " not named in: " << parsed.status().message();
}

TEST(EvidenceTest, RoundTripsEveryField) {
  const Evidence e = Sample();
  const std::string text = attest::SerializeEvidence(e);
  auto parsed = attest::ParseEvidence(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, e);
  EXPECT_EQ(attest::SerializeEvidence(*parsed), text);
  // The documented shape.
  const json doc = json::parse(text);
  EXPECT_EQ(doc["version"], 2);
  EXPECT_EQ(doc["anchor"], "ima");
  EXPECT_EQ(doc["pcrs"][2]["alg"], "sha1");
  EXPECT_EQ(doc["pcrs"][0]["pcr"], 16);
  EXPECT_EQ(doc["module"]["instance"], "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
  EXPECT_EQ(doc["module"]["banks"], json({"sha1", "sha256"}));
  EXPECT_EQ(doc["key_certification"]["creation_data"], "");

  // Optional parts left out, empty records.
  Evidence bare = Sample();
  bare.ima.reset();
  bare.key_certification.reset();
  bare.log.records.clear();
  bare.anchor = attest::AnchorKind::kPcr;
  auto again = attest::ParseEvidence(attest::SerializeEvidence(bare));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, bare);
  EXPECT_FALSE(json::parse(attest::SerializeEvidence(bare)).contains("ima"));
}

TEST(EvidenceTest, Base64IsOpenSslsAndStrict) {
  for (size_t n = 0; n < 10; ++n) {
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(0xf0 + i);
    const std::string text = attest::EncodeBase64(bytes);
    EXPECT_EQ(text.size(), 4 * ((n + 2) / 3));
    auto back = attest::DecodeBase64(text, 100);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(*back, bytes) << text;
  }
  EXPECT_EQ(attest::EncodeBase64(std::vector<uint8_t>{'v', 'i', 'g', 'i', 'l'}), "dmlnaWw=");
  // Padding is subtracted, not decoded as zeros.
  EXPECT_EQ(attest::DecodeBase64("QQ==", 10)->size(), 1u);
  for (const char* bad :
       {"QQ=", "Q===", "QR==", "QUJ=QUJD", " QUJD", "QUJD ", "QUJD\n", "QU*D", "=QUJ"}) {
    EXPECT_FALSE(attest::DecodeBase64(bad, 100).ok()) << bad;
  }
  EXPECT_FALSE(attest::DecodeBase64("QUJD", 2).ok());  // 3 bytes over a limit of 2
  EXPECT_TRUE(attest::DecodeBase64("QUJD", 3).ok());
  // Large inputs cross EVP_*Block's chunks.
  std::vector<uint8_t> big(10u << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31 + (i >> 12));
  auto big_back = attest::DecodeBase64(attest::EncodeBase64(big), big.size());
  ASSERT_TRUE(big_back.ok());
  EXPECT_EQ(*big_back, big);
}

TEST(EvidenceTest, UnknownVersionIsUnsupported) {
  json doc = json::parse(attest::SerializeEvidence(Sample()));
  doc["version"] = 3;
  EXPECT_EQ(attest::ParseEvidence(doc.dump()).status().code(), ErrorCode::kUnsupported);
  doc["version"] = 0;
  EXPECT_EQ(attest::ParseEvidence(doc.dump()).status().code(), ErrorCode::kUnsupported);
  // Version 1 (IMA's whole list) is still read, and says so.
  doc["version"] = 1;
  auto v1 = attest::ParseEvidence(doc.dump());
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->version, 1u);
  doc["version"] = "1";
  EXPECT_EQ(attest::ParseEvidence(doc.dump()).status().code(), ErrorCode::kMalformed);
  doc.erase("version");
  EXPECT_EQ(attest::ParseEvidence(doc.dump()).status().code(), ErrorCode::kMalformed);
}

TEST(EvidenceTest, RefusesEachBadFieldByName) {
  ExpectMalformed([](json& d) { d.erase("node"); }, "node");
  ExpectMalformed([](json& d) { d["node"] = ""; }, "node");
  ExpectMalformed([](json& d) { d["node"] = std::string(257, 'x'); }, "node");
  ExpectMalformed([](json& d) { d["nonce"] = "abc"; }, "nonce");
  ExpectMalformed([](json& d) { d["nonce"] = ""; }, "nonce");
  ExpectMalformed([](json& d) { d["nonce"] = std::string(130, 'a'); }, "nonce");
  ExpectMalformed([](json& d) { d["quote"]["attest"] = "zz"; }, "quote.attest");
  ExpectMalformed([](json& d) { d["quote"]["signature"] = 5; }, "quote.signature");
  ExpectMalformed([](json& d) { d["quote"].erase("signature"); }, "quote.signature");
  ExpectMalformed([](json& d) { d["quote"]["attest"] = std::string(8194, 'a'); }, "quote.attest");
  ExpectMalformed([](json& d) { d["quote"]["extra"] = 1; }, "quote.extra");
  ExpectMalformed([](json& d) { d["pcrs"] = json::object(); }, "pcrs");
  ExpectMalformed([](json& d) { d["pcrs"].push_back(d["pcrs"][0]); }, "pcrs[3]");
  ExpectMalformed([](json& d) { d["pcrs"][1]["alg"] = "md5"; }, "pcrs[1].alg");
  ExpectMalformed([](json& d) { d["pcrs"][1]["pcr"] = 24; }, "pcrs[1].pcr");
  ExpectMalformed([](json& d) { d["pcrs"][1]["pcr"] = -1; }, "pcrs[1].pcr");
  ExpectMalformed([](json& d) { d["pcrs"][1]["pcr"] = 16.0; }, "pcrs[1].pcr");
  ExpectMalformed([](json& d) { d["pcrs"][1]["value"] = std::string(62, 'a'); }, "pcrs[1].value");
  ExpectMalformed([](json& d) { d["pcrs"][2]["value"] = std::string(64, 'a'); }, "pcrs[2].value");
  ExpectMalformed([](json& d) { d["pcrs"][0] = "sha256:16"; }, "pcrs[0]");
  ExpectMalformed([](json& d) { d["anchor"] = "nv"; }, "anchor");
  ExpectMalformed([](json& d) { d["log"]["from_seq"] = 0; }, "log.from_seq");
  ExpectMalformed([](json& d) { d["log"]["records"] = "AAA"; }, "log.records");
  ExpectMalformed([](json& d) { d["log"]["records"] = "AA=A"; }, "log.records");
  ExpectMalformed([](json& d) { d["log"].erase("records"); }, "log.records");
  ExpectMalformed([](json& d) { d["ima"]["entries"] = 7; }, "ima.entries");
  ExpectMalformed([](json& d) { d["ima"]["from_entry"] = "0"; }, "ima.from_entry");
  ExpectMalformed([](json& d) { d["key_certification"]["attest"] = ""; },
                  "key_certification.attest");
  ExpectMalformed([](json& d) { d["module"]["instance"] = "00"; }, "module.instance");
  ExpectMalformed([](json& d) { d["module"]["pcr_events"] = 99; }, "module.pcr_events");
  ExpectMalformed([](json& d) { d["module"]["tpm_flags"] = 1ull << 33; }, "module.tpm_flags");
  ExpectMalformed([](json& d) { d["module"]["banks"] = {"sha256", "sha256"}; }, "module.banks[1]");
  ExpectMalformed([](json& d) { d.erase("module"); }, "module");
  ExpectMalformed([](json& d) { d["clock"] = 5; }, "clock");  // unsigned claims have no place
}

TEST(EvidenceTest, RefusesSizesOverTheLimits) {
  // 64 MiB + 3 bytes of records: refused by length before decoding.
  json doc = json::parse(attest::SerializeEvidence(Sample()));
  doc["log"]["records"] = std::string(4 * ((attest::kMaxLogBytes + 3) / 3 + 1), 'A');
  auto parsed = attest::ParseEvidence(doc.dump());
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), ErrorCode::kMalformed);
  EXPECT_NE(parsed.status().message().find("log.records"), std::string::npos);
  // Exactly at the limit passes.
  Evidence at_limit = Sample();
  at_limit.log.records.assign(attest::kMaxLogBytes, 0x5a);
  auto ok = attest::ParseEvidence(attest::SerializeEvidence(at_limit));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->log.records.size(), attest::kMaxLogBytes);
  // One byte over (base64 of 64 MiB + 1).
  at_limit.log.records.push_back(0);
  auto over = attest::ParseEvidence(attest::SerializeEvidence(at_limit));
  EXPECT_EQ(over.status().code(), ErrorCode::kMalformed);
  // Too many PCR values.
  json many = json::parse(attest::SerializeEvidence(Sample()));
  many["pcrs"] = json::array();
  for (size_t i = 0; i <= attest::kMaxEvidencePcrs; ++i) many["pcrs"].push_back(1);
  EXPECT_EQ(attest::ParseEvidence(many.dump()).status().code(), ErrorCode::kMalformed);
}

TEST(EvidenceTest, RefusesDuplicateKeysDeepNestingAndNonJson) {
  std::string text = attest::SerializeEvidence(Sample());
  // A second "anchor" key at the end: parsers disagree on which wins.
  std::string dup = text;
  dup.insert(dup.size() - 1, ",\"anchor\":\"pcr\"");
  auto parsed = attest::ParseEvidence(dup);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("anchor"), std::string::npos);
  // Inside a nested object too.
  std::string nested = text;
  const size_t at = nested.find("\"from_seq\"");
  ASSERT_NE(at, std::string::npos);
  nested.insert(at, "\"from_seq\":1,");
  EXPECT_EQ(attest::ParseEvidence(nested).status().code(), ErrorCode::kMalformed);

  EXPECT_EQ(attest::ParseEvidence(std::string(100000, '[')).status().code(), ErrorCode::kMalformed);
  EXPECT_EQ(attest::ParseEvidence("").status().code(), ErrorCode::kMalformed);
  EXPECT_EQ(attest::ParseEvidence("[]").status().code(), ErrorCode::kMalformed);
  EXPECT_EQ(attest::ParseEvidence(text.substr(0, text.size() - 1)).status().code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(attest::ParseEvidence(text + "x").status().code(), ErrorCode::kMalformed);
}

// CBOR: the same document with byte strings for the hex and base64 fields;
// ParseEvidence tells it from JSON by its first byte.
TEST(EvidenceCborTest, RoundTripsToTheSameEvidenceAsJson) {
  const Evidence e = Sample();
  const std::string cbor = attest::SerializeEvidenceCbor(e);
  const std::string text = attest::SerializeEvidence(e);
  EXPECT_TRUE(attest::LooksLikeCbor(cbor));
  EXPECT_FALSE(attest::LooksLikeCbor(text));
  EXPECT_LT(cbor.size(), text.size()) << "no base64, no hex";
  auto parsed = attest::ParseEvidence(cbor);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, e);
  EXPECT_EQ(*parsed, *attest::ParseEvidence(text));
  EXPECT_EQ(attest::SerializeEvidenceCbor(*parsed), cbor) << "one evidence, one encoding";
  // The documented shape: the JSON document's keys, bytes as byte strings.
  const json doc = json::from_cbor(cbor);
  EXPECT_EQ(doc.at("version"), attest::kEvidenceVersion);
  EXPECT_TRUE(doc.at("nonce").is_binary());
  EXPECT_TRUE(doc.at("log").at("records").is_binary());
  EXPECT_EQ(doc.at("log").at("records").get_binary().size(), e.log.records.size());
  EXPECT_TRUE(doc.at("pcrs").at(0).at("value").is_binary());
  EXPECT_EQ(doc.at("pcrs").at(0).at("alg"), "sha256");
  EXPECT_EQ(doc.at("anchor"), "ima");
  json keys_json = json::parse(text), keys_cbor = doc;
  for (json* d : {&keys_json, &keys_cbor}) {
    for (auto& [k, v] : d->items()) {
      if (!v.is_object())
        v = nullptr;
      else
        for (auto& [k2, v2] : v.items()) v2 = nullptr;
    }
  }
  EXPECT_EQ(keys_json, keys_cbor);
}

// Edits the CBOR document (nlohmann's DOM) and expects kMalformed naming `field`.
void ExpectCborMalformed(const std::function<void(json&)>& edit, const std::string& field) {
  json doc = json::from_cbor(attest::SerializeEvidenceCbor(Sample()));
  edit(doc);
  std::vector<uint8_t> bytes = json::to_cbor(doc);
  auto parsed = attest::ParseEvidence(std::string(bytes.begin(), bytes.end()));
  ASSERT_FALSE(parsed.ok()) << "accepted with " << field << " edited";
  EXPECT_EQ(parsed.status().code(), ErrorCode::kMalformed) << parsed.status().ToString();
  EXPECT_NE(parsed.status().message().find(field), std::string::npos)
      << field << " not named in: " << parsed.status().message();
}

TEST(EvidenceCborTest, RefusesTheJsonSpellingsAndBadTypes) {
  // Hex or base64 text where CBOR has bytes: one spelling per encoding.
  ExpectCborMalformed([](json& d) { d["nonce"] = std::string(64, '1'); }, "nonce");
  ExpectCborMalformed([](json& d) { d["log"]["records"] = "AAAA"; }, "log.records");
  ExpectCborMalformed([](json& d) { d["pcrs"][0]["value"] = std::string(64, 'a'); },
                      "pcrs[0].value");
  ExpectCborMalformed([](json& d) { d["version"] = -2; }, "version");
  ExpectCborMalformed([](json& d) { d["version"] = 2.0; }, "version");
  ExpectCborMalformed([](json& d) { d["node"] = json::binary({0x30, 0x30}); }, "node");
  ExpectCborMalformed([](json& d) { d["nonce"] = json::binary({}); }, "nonce");
  ExpectCborMalformed(
      [](json& d) { d["quote"]["attest"] = json::binary(std::vector<uint8_t>(4097, 1)); },
      "quote.attest");
  ExpectCborMalformed([](json& d) { d["extra"] = 1; }, "extra");
  // The version still decides first, and kUnsupported.
  json doc = json::from_cbor(attest::SerializeEvidenceCbor(Sample()));
  doc["version"] = 3;
  const std::vector<uint8_t> v3 = json::to_cbor(doc);
  EXPECT_EQ(attest::ParseEvidence(std::string(v3.begin(), v3.end())).status().code(),
            ErrorCode::kUnsupported);
}

TEST(EvidenceCborTest, RefusesDuplicateKeysGarbageTruncationAndDeepNesting) {
  const std::string cbor = attest::SerializeEvidenceCbor(Sample());
  // nlohmann writes a map of up to 23 pairs as one byte, 0xa0 + count.
  const auto top = static_cast<uint8_t>(cbor[0]);
  ASSERT_GE(top, 0xa1);
  ASSERT_LT(top, 0xb7);
  {  // one pair more: "anchor" again, at the end (CBOR maps may repeat keys)
    std::string dup = cbor;
    dup[0] = static_cast<char>(top + 1);
    dup +=
        "\x66"
        "anchor"
        "\x63"
        "pcr";
    auto parsed = attest::ParseEvidence(dup);
    ASSERT_FALSE(parsed.ok()) << "a repeated key was accepted";
    EXPECT_EQ(parsed.status().code(), ErrorCode::kMalformed);
    EXPECT_NE(parsed.status().message().find("anchor: appears twice"), std::string::npos)
        << parsed.status().message();
    // The same value twice is refused as well.
    std::string same = cbor;
    same[0] = static_cast<char>(top + 1);
    same +=
        "\x66"
        "anchor"
        "\x63"
        "ima";
    EXPECT_EQ(attest::ParseEvidence(same).status().code(), ErrorCode::kMalformed);
  }
  // Every cut of the bytes is refused, never read past the end.
  for (size_t cut = 0; cut < cbor.size(); cut += 1 + cut / 8) {
    auto parsed = attest::ParseEvidence(std::string_view(cbor).substr(0, cut));
    ASSERT_FALSE(parsed.ok()) << "accepted cut at " << cut;
    EXPECT_EQ(parsed.status().code(), ErrorCode::kMalformed) << cut;
  }
  // Trailing bytes, a tag, a map of a non-text key, invalid UTF-8.
  EXPECT_EQ(attest::ParseEvidence(cbor + "\x01").status().code(), ErrorCode::kMalformed);
  EXPECT_NE(attest::ParseEvidence(cbor + "\x01").status().message().find("not CBOR"),
            std::string::npos);
  EXPECT_EQ(attest::ParseEvidence(std::string("\xa1\x01\x02", 3)).status().code(),
            ErrorCode::kMalformed);
  EXPECT_EQ(attest::ParseEvidence(std::string("\xa1\x61"
                                              "a"
                                              "\xc1\x01",
                                              5))
                .status()
                .code(),
            ErrorCode::kMalformed)
      << "a tag (epoch time)";
  // Refused, with `words` in the reason.
  const auto expect_refused = [](const std::string& bytes, const std::string& words) {
    auto parsed = attest::ParseEvidence(bytes);
    ASSERT_FALSE(parsed.ok()) << words;
    EXPECT_NE(parsed.status().message().find(words), std::string::npos)
        << parsed.status().message();
  };
  expect_refused(std::string("\xa1\x64"
                             "node"
                             "\x62\xc3\x28",
                             9),
                 "UTF-8");
  // Nesting far deeper than the format (maps in maps), refused as read.
  std::string deep;
  for (int i = 0; i < 100000; ++i)
    deep +=
        "\xa1\x61"
        "a";
  deep += "\x01";
  expect_refused(deep, "nested deeper");
  // A container that claims more values than the format has: refused
  // before anything is read or reserved for it.
  expect_refused(std::string("\xa1\x64"
                             "pcrs"
                             "\x9a\x7f\xff\xff\xff",
                             11),
                 "too large");
  // Many small values within the depth: bounded too (JSON the same).
  json many = json::from_cbor(cbor);
  many["pcrs"] = json::array();
  for (int i = 0; i < 5000; ++i) many["pcrs"].push_back(1);
  const std::vector<uint8_t> many_cbor = json::to_cbor(many);
  EXPECT_NE(attest::ParseEvidence(std::string(many_cbor.begin(), many_cbor.end()))
                .status()
                .message()
                .find("too large"),
            std::string::npos)
      << "its length is read first";
  json many_json = json::parse(attest::SerializeEvidence(Sample()));
  many_json["pcrs"] = many["pcrs"];
  EXPECT_NE(
      attest::ParseEvidence(many_json.dump()).status().message().find("more than 4096 values"),
      std::string::npos);
}

}  // namespace
}  // namespace vigil
