#include "vigil/format.h"

#include <cstdio>
#include <iterator>
#include <vector>
#include <span>
#include <string>

#include "vigil/digest.h"

namespace vigil::format {
namespace {

using nlohmann::json;

template <size_t N>
std::string Hex(const uint8_t (&bytes)[N]) {
  return crypto::ToHex(std::span<const uint8_t>(bytes, N));
}

json HeaderJson(const records::Record& rec) {
  const vigil_rec_hdr& h = rec.hdr();
  json j{{"type", std::string(records::TypeName(h.type))},
         {"seq", h.seq},
         {"ts_ns", h.ts_ns},
         {"agent_id", h.agent_id},
         {"flags", h.flags}};
  // Commitment is a property of events; log records are the module's own.
  if (records::IsEvent(h.type)) {
    j["committed"] = rec.committed();
    j["no_module"] = (h.flags & VIGIL_REC_F_NO_MODULE) != 0;
  }
  return j;
}

json UserJson(const vigil_ev_user& u) {
  const uint32_t len = u.len <= VIGIL_USER_PAYLOAD_MAX ? u.len : VIGIL_USER_PAYLOAD_MAX;
  return json{{"pid", u.pid},
              {"uid", u.uid},
              {"kind", u.kind},
              {"len", u.len},
              {"payload_hex", crypto::ToHex(std::span<const uint8_t>(u.payload, len))}};
}

const char* AnchorName(uint32_t a) {
  return a == VIGIL_ANCHOR_PCR ? "pcr" : a == VIGIL_ANCHOR_IMA ? "ima" : "unknown";
}

// What keeps foreign BPF programs from the kfuncs (vigil.h).
std::string KfuncGuardName(uint32_t guard) {
  switch (guard) {
    case VIGIL_KFUNC_GUARD_FILTER:
      return "filter";
    case VIGIL_KFUNC_GUARD_CALLSITE:
      return "callsite";
    case 0:
      return "unknown";  // a module older than ABI 2.2
    default:
      return "unknown(" + std::to_string(guard) + ")";
  }
}

}  // namespace

json RecordToJson(const records::Record& rec) {
  json j = HeaderJson(rec);
  if (auto e = rec.As<vigil_ev_exec>()) {
    j.update(json{{"pid", e->pid},
                  {"tid", e->tid},
                  {"ppid", e->ppid},
                  {"uid", e->uid},
                  {"old_pid", e->old_pid},
                  {"comm", records::FieldString(e->comm)},
                  {"filename", records::FieldString(e->filename)}});
  } else if (auto x = rec.As<vigil_ev_exit>()) {
    j.update(json{{"pid", x->pid},
                  {"tid", x->tid},
                  {"ppid", x->ppid},
                  {"uid", x->uid},
                  {"comm", records::FieldString(x->comm)},
                  {"exit_code", x->exit_code},
                  {"signal", x->exit_signal},
                  {"core_dumped", x->core_dumped != 0},
                  {"metrics", json{{"lifetime_ns", x->lifetime_ns},
                                   {"utime_ns", x->utime_ns},
                                   {"stime_ns", x->stime_ns},
                                   {"maxrss_kb", x->maxrss_kb},
                                   {"min_flt", x->min_flt},
                                   {"maj_flt", x->maj_flt},
                                   {"nvcsw", x->nvcsw},
                                   {"nivcsw", x->nivcsw},
                                   {"read_bytes", x->read_bytes},
                                   {"write_bytes", x->write_bytes}}}});
  } else if (auto u = rec.As<vigil_ev_user>()) {
    j.update(UserJson(*u));
  } else if (auto f = rec.As<vigil_ev_fork>()) {
    j.update(json{{"pid", f->pid},
                  {"tid", f->tid},
                  {"ppid", f->ppid},
                  {"uid", f->uid},
                  {"thread", (f->flags & VIGIL_FORK_F_THREAD) != 0},
                  {"comm", records::FieldString(f->comm)}});
  } else if (auto a = rec.As<vigil_ev_agent>()) {
    j.update(json{{"action", a->action == VIGIL_AGENT_REGISTER  ? "register"
                             : a->action == VIGIL_AGENT_UNTRACK ? "untrack"
                                                                : "unknown"},
                  {"how", a->how == VIGIL_AGENT_BY_PID      ? "pid"
                          : a->how == VIGIL_AGENT_BY_CGROUP ? "cgroup"
                                                            : "unknown"},
                  {"pid", a->pid},
                  {"uid", a->uid},
                  {"cgroup_id", a->cgroup_id},
                  {"name", records::FieldString(a->name)}});
  } else if (auto s = rec.As<vigil_ev_sample>()) {
    // Counters whose flag is clear were not measured: null, never 0.
    const bool hw = (s->flags & VIGIL_SAMPLE_F_HW) != 0;
    const bool sys = (s->flags & VIGIL_SAMPLE_F_SYSCALLS) != 0;
    j.update(json{{"pid", s->pid},
                  {"cpu", s->cpu},
                  {"sample_flags", s->flags},
                  {"hw_counters", hw},
                  {"interval_ns", s->interval_ns},
                  {"metrics", json{{"oncpu_ns", s->oncpu_ns},
                                   {"nvcsw", s->nvcsw},
                                   {"nivcsw", s->nivcsw},
                                   {"min_flt", s->min_flt},
                                   {"maj_flt", s->maj_flt},
                                   {"cycles", hw ? json(s->cycles) : json(nullptr)},
                                   {"instructions", hw ? json(s->instructions) : json(nullptr)},
                                   {"syscalls", sys ? json(s->syscalls) : json(nullptr)}}}});
  } else if (auto m = rec.As<vigil_log_measure>()) {
    j.update(json{{"kind", m->kind},
                  {"pcr", m->pcr},
                  {"name", records::FieldString(m->name)},
                  {"digest", Hex(m->digest)}});
  } else if (auto k = rec.As<vigil_log_key>()) {
    j.update(json{{"pcr", k->pcr},
                  {"curve", k->curve},
                  {"sig_alg", k->sig_alg},
                  {"x", Hex(k->x)},
                  {"y", Hex(k->y)},
                  {"name", Hex(k->name)}});
  } else if (auto c = rec.As<vigil_log_checkpoint>()) {
    j.update(json{{"first_seq", c->first_seq},
                  {"last_seq", c->last_seq},
                  {"drops_total", c->drops_total},
                  {"busy_total", c->busy_total},
                  {"log_refused", c->log_refused},
                  {"reason", c->reason},
                  {"anchor", AnchorName(c->anchor)},
                  {"chain_head", Hex(c->chain_head)},
                  {"prev_digest", Hex(c->prev_digest)},
                  {"instance_id", Hex(c->instance_id)},
                  {"rejected_total", c->rejected_total},
                  {"tpm_errors", c->tpm_errors},
                  {"committed", std::vector<uint64_t>(std::begin(c->committed),
                                                      std::end(c->committed))},
                  {"alive", std::vector<uint64_t>(std::begin(c->alive), std::end(c->alive))},
                  {"producers_gen", c->producers_gen},
                  {"producers_digest", Hex(c->producers_digest)},
                  {"dev_anchor", (c->cp_flags & VIGIL_CP_F_DEV_ANCHOR) != 0},
                  {"sealed", (c->cp_flags & VIGIL_CP_F_SEALED) != 0},
                  {"window_open", (c->cp_flags & VIGIL_CP_F_WINDOW_OPEN) != 0}});
  } else if (auto s = rec.As<vigil_log_signature>()) {
    j.update(json{{"checkpoint_seq", s->checkpoint_seq},
                  {"status", s->status},
                  {"error", s->error},
                  {"digest", Hex(s->digest)},
                  {"r", Hex(s->r)},
                  {"s", Hex(s->s)}});
  } else if (auto ev = rec.As<vigil_log_event>()) {
    j["event"] = UserJson(ev->ev);
    j["event"]["seq"] = ev->ev.hdr.seq;
  } else if (auto b = rec.As<vigil_log_base>()) {
    json banks = json::array();
    for (unsigned i = 0; i < b->nr_banks && i < VIGIL_MAX_BANKS; ++i) {
      auto size = crypto::DigestSize(b->bank[i].alg);
      const size_t n = size.ok() ? *size : sizeof(b->bank[i].config);
      banks.push_back(
          json{{"alg", crypto::AlgName(b->bank[i].alg)},
               {"config", crypto::ToHex(std::span<const uint8_t>(b->bank[i].config, n))},
               {"events", crypto::ToHex(std::span<const uint8_t>(b->bank[i].events, n))}});
    }
    j.update(json{{"first_kept_seq", b->first_kept_seq},
                  {"records_trimmed", b->records_trimmed},
                  {"bytes_trimmed", b->bytes_trimmed},
                  {"banks", banks}});
  }
  return j;
}

std::string Dump(const json& j, int indent) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string EscapeText(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size());
  for (const char ch : raw) {
    const auto b = static_cast<unsigned char>(ch);
    if (b == '\\') {
      out += "\\\\";
    } else if (b >= 0x20 && b < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    }
  }
  return out;
}

std::string RecordToText(const records::Record& rec) {
  char head[96];
  std::snprintf(head, sizeof(head), "%-10s seq=%-6llu ",
                std::string(records::TypeName(rec.type())).c_str(),
                static_cast<unsigned long long>(rec.seq()));
  std::string out = head;
  json j = RecordToJson(rec);
  for (const char* key : {"type", "seq", "ts_ns", "agent_id", "flags"}) j.erase(key);
  for (auto it = j.begin(); it != j.end(); ++it) {
    out += it.key();
    out += '=';
    // Strings come from the kernel or a file: escaped. Other values are
    // numbers, booleans or JSON (whose strings are escaped by Dump, but its
    // UTF-8 passes through): escaped as well.
    out += EscapeText(it->is_string() ? it->get<std::string>() : Dump(*it));
    out += ' ';
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

json VerdictToJson(const verify::CheckpointVerdict& v) {
  json missing = json::array();
  for (const verify::SeqRange& r : v.missing) missing.push_back({r.first, r.last});
  return json{{"type", "checkpoint"},
              {"verdict", std::string(verify::VerdictName(v.verdict))},
              {"reason", v.reason},
              {"log_seq", v.log_seq},
              {"first_seq", v.first_seq},
              {"last_seq", v.last_seq},
              {"events", v.events},
              {"bad_seq", v.bad_seq ? json(*v.bad_seq) : json(nullptr)},
              {"missing", missing},
              {"new_drops", v.new_drops},
              {"new_busy", v.new_busy},
              {"new_log_refused", v.new_log_refused},
              {"chain_checked", v.chain_checked},
              {"signature_checked", v.signature_checked},
              {"pcr_checked", v.pcr_checked}};
}

json FindingToJson(const verify::Finding& f) {
  return json{{"type", "finding"},
              {"kind", std::string(verify::FindingKindName(f.kind))},
              {"seq", f.seq},
              {"reason", f.reason}};
}

json VersionToJson(const vigil_version& v) {
  return json{{"abi_major", v.abi_major},
              {"abi_minor", v.abi_minor},
              {"module_version", records::FieldString(v.module_version)}};
}

json InfoToJson(const vigil_info& info) {
  json banks = json::array();
  for (uint32_t i = 0; i < info.nr_banks && i < VIGIL_MAX_BANKS; ++i) {
    banks.push_back(crypto::AlgName(info.bank_alg[i]));
  }
  return json{{"tpm_present", (info.tpm_flags & VIGIL_TPM_PRESENT) != 0},
              {"tpm_key", (info.tpm_flags & VIGIL_TPM_KEY) != 0},
              {"tpm_required", (info.tpm_flags & VIGIL_TPM_REQUIRED) != 0},
              {"banks", banks},
              {"pcr_config", info.pcr_config},
              {"pcr_events", info.pcr_events},
              {"anchor", AnchorName(info.anchor)},
              {"checkpoint_ms", info.checkpoint_ms},
              {"checkpoint_events", info.checkpoint_events},
              {"instance_id", Hex(info.instance_id)},
              {"chain_head", Hex(info.chain_head)},
              {"next_seq", info.next_seq},
              {"committed", info.committed},
              {"dropped", info.dropped},
              {"busy", info.busy},
              {"rejected", info.rejected},
              {"checkpoints_signed", info.checkpoints_signed},
              {"checkpoints_unsigned", info.checkpoints_unsigned},
              {"log_records", info.log_records},
              {"log_bytes", info.log_bytes},
              {"log_first_seq", info.log_first_seq},
              {"log_next_seq", info.log_next_seq},
              {"log_max_bytes", info.log_max_bytes},
              {"log_refused", info.log_refused},
              {"tpm_errors", info.tpm_errors},
              {"dev_anchor", (info.tpm_flags & VIGIL_TPM_DEV_ANCHOR) != 0},
              {"sealed", (info.tpm_flags & VIGIL_TPM_SEALED) != 0},
              {"window_open", (info.tpm_flags & VIGIL_TPM_WINDOW_OPEN) != 0},
              {"heartbeat_ms", info.heartbeat_ms},
              {"producers_gen", info.producers_gen},
              {"nr_producers", info.nr_producers},
              {"producers_digest", Hex(info.producers_digest)},
              {"seal_log_end", info.seal_log_end},
              {"kfunc_guard", KfuncGuardName(info.kfunc_guard)},
              {"key_x", (info.tpm_flags & VIGIL_TPM_KEY) ? Hex(info.key_x) : std::string()},
              {"key_y", (info.tpm_flags & VIGIL_TPM_KEY) ? Hex(info.key_y) : std::string()}};
}

}  // namespace vigil::format
