#include "vigil/attest/cel.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>

#include "vigil/ima.h"
#include "vigil/replay.h"

namespace vigil::attest {
namespace {

using nlohmann::json;

// What the parameters MEASURE record says ("c=<pcr_config> e=<pcr_events>
// a=<pcr|ima> ..."); fields the name does not hold stay empty.
struct ModuleParams {
  std::optional<uint32_t> pcr_config;
  std::optional<uint32_t> pcr_events;
  std::optional<bool> anchor_ima;
};

std::optional<uint32_t> ParsePcrField(std::string_view v) {
  uint32_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n > 23) return std::nullopt;
  return n;
}

Result<ModuleParams> ParamsOf(const records::Record& rec) {
  const auto m = rec.As<vigil_log_measure>();
  ModuleParams p;
  if (!m || m->kind != VIGIL_MEASURE_PARAMS) return p;
  const std::string name = records::FieldString(m->name);
  std::string_view rest = name;
  while (!rest.empty()) {
    const size_t sp = rest.find(' ');
    const std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
    const auto bad = [&] {
      return Status::Error(ErrorCode::kMalformed, "log seq " + std::to_string(rec.seq()) +
                                                      ": parameters field '" + std::string(tok) +
                                                      "' is not the module's");
    };
    if (tok.starts_with("c=")) {
      p.pcr_config = ParsePcrField(tok.substr(2));
      if (!p.pcr_config) return bad();
    } else if (tok.starts_with("e=")) {
      p.pcr_events = ParsePcrField(tok.substr(2));
      if (!p.pcr_events) return bad();
    } else if (tok.starts_with("a=")) {
      if (tok == "a=pcr") {
        p.anchor_ima = false;
      } else if (tok == "a=ima") {
        p.anchor_ima = true;
      } else {
        return bad();
      }
    }
  }
  return p;
}

Result<json> DigestsJson(const std::vector<CelDigest>& digests) {
  json out = json::array();
  for (const CelDigest& d : digests) {
    VIGIL_ASSIGN_OR_RETURN(std::string name, CelAlgName(d.alg));
    out.push_back(json{{"hashAlg", name}, {"digest", crypto::ToHex(d.digest)}});
  }
  return out;
}

json VigilContent(const records::Record& rec) {
  return json{{"format", kVigilCelFormat},
              {"log_seq", rec.seq()},
              {"record_type", std::string(records::TypeName(rec.type()))},
              {"record", crypto::ToHex(rec.bytes())}};
}

Result<std::vector<CelDigest>> RecordDigests(const records::Record& rec,
                                             const std::vector<uint16_t>& banks) {
  std::vector<CelDigest> out;
  for (uint16_t alg : banks) {
    VIGIL_ASSIGN_OR_RETURN(crypto::Digest d, crypto::Hash(alg, rec.bytes()));
    out.push_back({alg, std::move(d)});
  }
  return out;
}

}  // namespace

Result<std::string> CelAlgName(uint16_t alg) {
  switch (alg) {
    case VIGIL_ALG_SHA1:
    case VIGIL_ALG_SHA256:
    case VIGIL_ALG_SHA384:
    case VIGIL_ALG_SHA512:
    case VIGIL_ALG_SM3_256:
      return crypto::AlgName(alg);
    default:
      return Status::Error(ErrorCode::kUnsupported,
                           "hash algorithm " + crypto::AlgName(alg) + " has no CEL-JSON name");
  }
}

Result<CelLog> ExportCel(const std::vector<records::Record>& log, const CelOptions& opts) {
  // The replay rules decide what was extended where; the export only
  // writes them down (and checks below that its own replay agrees).
  VIGIL_ASSIGN_OR_RETURN(replay::LogReplay rp, replay::ReplayLog(log));

  const records::Record* base = nullptr;
  ModuleParams params;
  bool any_pcr_checkpoint = false;
  bool any_ima_checkpoint = false;
  for (const records::Record& rec : log) {
    if (rec.type() == VIGIL_LOG_BASE && rec.seq() == rp.base_seq) base = &rec;
    VIGIL_ASSIGN_OR_RETURN(ModuleParams p, ParamsOf(rec));
    if (p.pcr_config || p.pcr_events || p.anchor_ima) params = p;
    if (auto cp = rec.As<vigil_log_checkpoint>()) {
      (cp->anchor == VIGIL_ANCHOR_IMA ? any_ima_checkpoint : any_pcr_checkpoint) = true;
    }
  }
  if (base == nullptr) {
    return Status::Error(ErrorCode::kInternal, "the replayed BASE record is not in the log");
  }

  CelLog out;
  for (const replay::BankReplay& b : rp.banks) out.banks.push_back(b.alg);
  for (uint16_t alg : out.banks) VIGIL_RETURN_IF_ERROR(CelAlgName(alg).status());

  if (any_ima_checkpoint && any_pcr_checkpoint) {
    return Status::Error(ErrorCode::kMalformed,
                         "the log holds checkpoints anchored in a PCR and in IMA: one module "
                         "load has one anchor");
  }
  out.anchor_ima = any_ima_checkpoint || (!any_pcr_checkpoint && params.anchor_ima.value_or(false));
  if (params.anchor_ima && *params.anchor_ima != out.anchor_ima) {
    return Status::Error(ErrorCode::kMismatch, "the parameters record says a=" +
                                                   std::string(*params.anchor_ima ? "ima" : "pcr") +
                                                   " but the checkpoints are anchored otherwise");
  }
  if (rp.config_pcr && params.pcr_config && *rp.config_pcr != *params.pcr_config) {
    return Status::Error(
        ErrorCode::kMismatch,
        "the log's records extend PCR " + std::to_string(*rp.config_pcr) +
            " but its parameters record says c=" + std::to_string(*params.pcr_config));
  }
  out.pcr_config = rp.config_pcr.value_or(params.pcr_config.value_or(kDefaultPcrConfig));
  if (opts.pcr_events && params.pcr_events && *opts.pcr_events != *params.pcr_events) {
    return Status::Error(ErrorCode::kMismatch,
                         "pcr_events " + std::to_string(*opts.pcr_events) +
                             " was given but the log's parameters record says e=" +
                             std::to_string(*params.pcr_events));
  }
  out.pcr_events = opts.pcr_events.value_or(params.pcr_events.value_or(kDefaultPcrEvents));
  if (out.pcr_events > 23) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "pcr_events " + std::to_string(out.pcr_events) + " is not a PCR");
  }
  if (out.pcr_events == out.pcr_config) {
    return Status::Error(ErrorCode::kMalformed, "pcr_config and pcr_events are both PCR " +
                                                    std::to_string(out.pcr_config));
  }
  const bool export_events = !out.anchor_ima;

  // The start of each vigil PCR: the BASE values, in a record that extends
  // nothing.
  auto add_base = [&](uint32_t pcr, bool config) -> Status {
    json start = json::array();
    for (const replay::BankReplay& b : rp.banks) {
      const crypto::Digest& v = config ? b.config_history.front() : b.events_history.front();
      if (std::any_of(v.begin(), v.end(), [](uint8_t x) { return x != 0; })) {
        out.nonzero_start = true;
      }
      VIGIL_ASSIGN_OR_RETURN(std::string name, CelAlgName(b.alg));
      start.push_back(json{{"hashAlg", name}, {"digest", crypto::ToHex(v)}});
    }
    CelEvent ev;
    ev.recnum = out.events.size();
    ev.pcr = pcr;
    ev.content_type = kCelContentVigil;
    ev.content = VigilContent(*base);
    ev.content["pcr_start"] = std::move(start);
    out.events.push_back(std::move(ev));
    return Status::Ok();
  };
  VIGIL_RETURN_IF_ERROR(add_base(out.pcr_config, true));
  if (export_events) VIGIL_RETURN_IF_ERROR(add_base(out.pcr_events, false));

  const std::set<uint64_t> config_seqs(rp.config_seqs.begin(), rp.config_seqs.end());
  const std::set<uint64_t> events_seqs(rp.events_seqs.begin(), rp.events_seqs.end());
  const uint64_t first_kept = base->As<vigil_log_base>()->first_kept_seq;
  for (const records::Record& rec : log) {
    // ReplayLog folded exactly these, in log order (seqs from the cut on
    // are contiguous, so log order is seq order).
    if (rec.seq() < first_kept) continue;
    const bool to_config = config_seqs.contains(rec.seq());
    const bool to_events = events_seqs.contains(rec.seq());
    if (!to_config && !to_events) continue;
    CelEvent ev;
    ev.recnum = out.events.size();
    ev.pcr = to_config ? out.pcr_config : out.pcr_events;
    VIGIL_ASSIGN_OR_RETURN(ev.digests, RecordDigests(rec, out.banks));
    ev.content_type = kCelContentVigil;
    ev.content = VigilContent(rec);
    out.events.push_back(std::move(ev));
    (to_config ? out.config_extends : out.events_extends)++;
  }

  if (opts.ima_log) {
    VIGIL_ASSIGN_OR_RETURN(std::vector<ima::Entry> entries, ima::ParseBinaryLog(*opts.ima_log));
    for (size_t i = 0; i < entries.size(); ++i) {
      const ima::Entry& e = entries[i];
      // Records of two logs extended into one PCR: their order is unknown,
      // so no export could replay it.
      if (e.pcr == out.pcr_config || (export_events && e.pcr == out.pcr_events)) {
        return Status::Error(ErrorCode::kUnsupported,
                             "IMA log entry " + std::to_string(i) + " extends PCR " +
                                 std::to_string(e.pcr) +
                                 ", which vigil's records extend too: their order is unknown");
      }
      CelEvent ev;
      ev.recnum = out.events.size();
      ev.pcr = e.pcr;
      for (uint16_t alg : out.banks) {
        VIGIL_ASSIGN_OR_RETURN(crypto::Digest d, ima::BankDigest(e, alg));
        ev.digests.push_back({alg, std::move(d)});
      }
      ev.content_type = kCelContentImaTemplate;
      ev.content = json{{"template_name", e.template_name},
                        {"template_data", crypto::ToHex(e.template_data)}};
      out.events.push_back(std::move(ev));
      out.ima_entries++;
    }
  }

  // Replay the export as a generic tool would (plus the start values) and
  // hold it against the module's replay rules.
  for (const CelEvent& ev : out.events) {
    auto& pcr = out.replayed[ev.pcr];
    if (ev.digests.empty()) {
      for (const replay::BankReplay& b : rp.banks) {
        pcr[b.alg] = ev.pcr == out.pcr_config ? b.config_history.front() : b.events_history.front();
      }
      continue;
    }
    for (const CelDigest& d : ev.digests) {
      auto it = pcr.find(d.alg);
      if (it == pcr.end()) {
        VIGIL_ASSIGN_OR_RETURN(size_t size, crypto::DigestSize(d.alg));
        it = pcr.emplace(d.alg, crypto::Digest(size, 0)).first;
      }
      VIGIL_ASSIGN_OR_RETURN(it->second, crypto::Extend(d.alg, it->second, d.digest));
    }
  }
  for (const replay::BankReplay& b : rp.banks) {
    if (out.replayed[out.pcr_config][b.alg] != b.config() ||
        (export_events && out.replayed[out.pcr_events][b.alg] != b.events())) {
      return Status::Error(ErrorCode::kInternal,
                           "the exported events do not replay to the log's PCR values in bank " +
                               crypto::AlgName(b.alg));
    }
  }
  return out;
}

json CelToJson(const CelLog& cel) {
  json out = json::array();
  for (const CelEvent& ev : cel.events) {
    // The digests were built from supported algorithms only.
    auto digests = DigestsJson(ev.digests);
    out.push_back(json{{"recnum", ev.recnum},
                       {"pcr", ev.pcr},
                       {"digests", digests.ok() ? *digests : json::array()},
                       {"content_type", ev.content_type},
                       {"content", ev.content}});
  }
  return out;
}

std::string CelToJsonText(const CelLog& cel) {
  const json doc = CelToJson(cel);
  std::string out = "[";
  for (size_t i = 0; i < doc.size(); ++i) {
    out += i == 0 ? "\n" : ",\n";
    out += doc[i].dump(-1, ' ', false, json::error_handler_t::replace);
  }
  out += "\n]\n";
  return out;
}

}  // namespace vigil::attest
