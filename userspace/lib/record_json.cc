// The direct JSON serializer of event records (format::AppendRecordJson):
// fields written in nlohmann's key order straight into the caller's buffer.
// tests/unit/record_json_test.cc holds it byte for byte to
// Dump(RecordToJson(rec)).
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "vigil/format.h"

namespace vigil::format {
namespace {

// Bytes a JSON string keeps as they are: printable ASCII and DEL (Dump does
// not escape DEL without ensure_ascii), but not '"' and '\\'.
constexpr bool IsPlain(unsigned char b) { return b >= 0x20 && b < 0x80 && b != '"' && b != '\\'; }

char* EscapeAscii(unsigned char b, char* p) {
  static constexpr char kHex[] = "0123456789abcdef";
  *p++ = '\\';
  switch (b) {
    case '"':
      *p++ = '"';
      break;
    case '\\':
      *p++ = '\\';
      break;
    case '\b':
      *p++ = 'b';
      break;
    case '\t':
      *p++ = 't';
      break;
    case '\n':
      *p++ = 'n';
      break;
    case '\f':
      *p++ = 'f';
      break;
    case '\r':
      *p++ = 'r';
      break;
    default:
      *p++ = 'u';
      *p++ = '0';
      *p++ = '0';
      *p++ = kHex[b >> 4];
      *p++ = kHex[b & 0xf];
  }
  return p;
}

// The length of the well-formed UTF-8 sequence (Unicode Table 3-7) at
// s[i] (a byte >= 0x80), or 0 with `bad` set to how many bytes form the
// maximal invalid subpart that one U+FFFD replaces: nlohmann's
// error_handler_t::replace re-reads the byte that broke a sequence, so a
// sequence cut short costs the bytes before that byte, a stray byte itself.
size_t Utf8SequenceAt(std::string_view s, size_t i, size_t& bad) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t need;
  unsigned char lo = 0x80, hi = 0xbf;  // range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    need = 1;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    bad = 1;  // a continuation byte without a lead, C0, C1, F5-FF
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      bad = s.size() - i;  // cut short by the end of the string
      return 0;
    }
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < lo || b > hi) {
      bad = k;
      return 0;
    }
    lo = 0x80;
    hi = 0xbf;
  }
  return need + 1;
}

// The most a string of n bytes takes as a JSON literal: quotes, and six
// bytes ("\u00xx") for a byte at worst (U+FFFD takes three for one or more).
constexpr size_t MaxEscaped(size_t n) { return 2 + 6 * n; }

// `raw` as a JSON string literal at p (room for MaxEscaped(raw.size())).
char* EscapeString(std::string_view raw, char* p) {
  *p++ = '"';
  size_t i = 0;
  while (i < raw.size()) {
    size_t run = i;
    while (run < raw.size() && IsPlain(static_cast<unsigned char>(raw[run]))) ++run;
    std::memcpy(p, raw.data() + i, run - i);
    p += run - i;
    i = run;
    if (i == raw.size()) break;
    const auto b = static_cast<unsigned char>(raw[i]);
    if (b < 0x80) {
      p = EscapeAscii(b, p);
      ++i;
      continue;
    }
    size_t bad = 0;
    if (const size_t len = Utf8SequenceAt(raw, i, bad)) {
      std::memcpy(p, raw.data() + i, len);
      p += len;
      i += len;
    } else {
      std::memcpy(p, "\xEF\xBF\xBD", 3);  // U+FFFD
      p += 3;
      i += bad;
    }
  }
  *p++ = '"';
  return p;
}

// One JSON object written at a cursor into memory the caller sized with
// MaxObject (no check per byte: this runs for every field of every record).
// Keys are literals the caller passes in nlohmann's order (std::map: sorted
// bytewise) and need no escaping.
// Thread-safety: a stack object over one buffer.
class ObjectWriter {
 public:
  explicit ObjectWriter(char*& p) : p_(p) { *p_++ = '{'; }
  ~ObjectWriter() { *p_++ = '}'; }
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  template <size_t N, typename Int>
  void Number(const char (&key)[N], Int v) {
    static_assert(std::is_integral_v<Int> && !std::is_same_v<Int, bool>);
    Key(key);
    p_ = std::to_chars(p_, p_ + 20, v).ptr;  // 20: the digits of UINT64_MAX, or '-' and 10
  }
  // Counters whose flag is clear were not measured: null, never 0.
  template <size_t N, typename Int>
  void NumberOrNull(const char (&key)[N], bool present, Int v) {
    if (present) {
      Number(key, v);
    } else {
      Key(key);
      Put("null");
    }
  }
  template <size_t N>
  void Bool(const char (&key)[N], bool v) {
    Key(key);
    if (v) {
      Put("true");
    } else {
      Put("false");
    }
  }
  template <size_t N>
  void String(const char (&key)[N], std::string_view v) {
    Key(key);
    p_ = EscapeString(v, p_);
  }
  template <size_t N, size_t M>
  void Field(const char (&key)[N], const char (&field)[M]) {
    String(key, std::string_view(field, strnlen(field, M)));
  }
  template <size_t N>
  void Hex(const char (&key)[N], const uint8_t* bytes, size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    Key(key);
    *p_++ = '"';
    for (size_t i = 0; i < n; ++i) {
      *p_++ = kHex[bytes[i] >> 4];
      *p_++ = kHex[bytes[i] & 0xf];
    }
    *p_++ = '"';
  }
  // Opens a nested object; the returned writer closes it.
  template <size_t N>
  ObjectWriter Object(const char (&key)[N]) {
    Key(key);
    return ObjectWriter(p_);
  }

 private:
  template <size_t N>
  void Put(const char (&text)[N]) {
    std::memcpy(p_, text, N - 1);
    p_ += N - 1;
  }
  template <size_t N>
  void Key(const char (&key)[N]) {
    if (!first_) *p_++ = ',';
    first_ = false;
    *p_++ = '"';
    Put(key);
    *p_++ = '"';
    *p_++ = ':';
  }

  char*& p_;
  bool first_ = true;
};

// The most one record's object takes: every byte of the body escaped at
// worst (six for a string byte, two hex digits for a payload byte, at most
// 20 digits for 8 bytes of number), plus the keys (under 1 KiB for any type).
constexpr size_t MaxObject(size_t record_size) { return MaxEscaped(record_size) + 1024; }

// The header's fields, in the order they fall among a type's own: each
// writer below calls these where the sorted order puts them.
struct Header {
  const records::Record& rec;
  void AgentId(ObjectWriter& o) const { o.Number("agent_id", rec.hdr().agent_id); }
  void Committed(ObjectWriter& o) const { o.Bool("committed", rec.committed()); }
  void Flags(ObjectWriter& o) const { o.Number("flags", rec.hdr().flags); }
  void NoModule(ObjectWriter& o) const {
    o.Bool("no_module", (rec.hdr().flags & VIGIL_REC_F_NO_MODULE) != 0);
  }
  void SeqTsType(ObjectWriter& o) const {
    o.Number("seq", rec.hdr().seq);
    o.Number("ts_ns", rec.hdr().ts_ns);
    o.String("type", records::TypeName(rec.hdr().type));
  }
};

}  // namespace

void AppendJsonString(std::string_view raw, std::string& out) {
  const size_t start = out.size();
  out.resize(start + MaxEscaped(raw.size()));
  out.resize(static_cast<size_t>(EscapeString(raw, out.data() + start) - out.data()));
}

namespace {

void WriteEventObject(const records::Record& rec, char*& p) {
  const Header h{rec};
  ObjectWriter o(p);
  if (auto e = rec.As<vigil_ev_exec>()) {
    h.AgentId(o);
    o.Field("comm", e->comm);
    h.Committed(o);
    o.Field("filename", e->filename);
    h.Flags(o);
    h.NoModule(o);
    o.Number("old_pid", e->old_pid);
    o.Number("pid", e->pid);
    o.Number("ppid", e->ppid);
    o.Number("seq", rec.hdr().seq);
    o.Number("tid", e->tid);
    o.Number("ts_ns", rec.hdr().ts_ns);
    o.String("type", records::TypeName(rec.type()));
    o.Number("uid", e->uid);
  } else if (auto x = rec.As<vigil_ev_exit>()) {
    h.AgentId(o);
    o.Field("comm", x->comm);
    h.Committed(o);
    o.Bool("core_dumped", x->core_dumped != 0);
    o.Number("exit_code", x->exit_code);
    h.Flags(o);
    {
      ObjectWriter m = o.Object("metrics");
      m.Number("lifetime_ns", x->lifetime_ns);
      m.Number("maj_flt", x->maj_flt);
      m.Number("maxrss_kb", x->maxrss_kb);
      m.Number("min_flt", x->min_flt);
      m.Number("nivcsw", x->nivcsw);
      m.Number("nvcsw", x->nvcsw);
      m.Number("read_bytes", x->read_bytes);
      m.Number("stime_ns", x->stime_ns);
      m.Number("utime_ns", x->utime_ns);
      m.Number("write_bytes", x->write_bytes);
    }
    h.NoModule(o);
    o.Number("pid", x->pid);
    o.Number("ppid", x->ppid);
    o.Number("seq", rec.hdr().seq);
    o.Number("signal", x->exit_signal);
    o.Number("tid", x->tid);
    o.Number("ts_ns", rec.hdr().ts_ns);
    o.String("type", records::TypeName(rec.type()));
    o.Number("uid", x->uid);
  } else if (auto u = rec.As<vigil_ev_user>()) {
    const uint32_t len = u->len <= VIGIL_USER_PAYLOAD_MAX ? u->len : VIGIL_USER_PAYLOAD_MAX;
    h.AgentId(o);
    h.Committed(o);
    h.Flags(o);
    o.Number("kind", u->kind);
    o.Number("len", u->len);
    h.NoModule(o);
    o.Hex("payload_hex", u->payload, len);
    o.Number("pid", u->pid);
    h.SeqTsType(o);
    o.Number("uid", u->uid);
  } else if (auto f = rec.As<vigil_ev_fork>()) {
    h.AgentId(o);
    o.Field("comm", f->comm);
    h.Committed(o);
    h.Flags(o);
    h.NoModule(o);
    o.Number("pid", f->pid);
    o.Number("ppid", f->ppid);
    o.Number("seq", rec.hdr().seq);
    o.Bool("thread", (f->flags & VIGIL_FORK_F_THREAD) != 0);
    o.Number("tid", f->tid);
    o.Number("ts_ns", rec.hdr().ts_ns);
    o.String("type", records::TypeName(rec.type()));
    o.Number("uid", f->uid);
  } else if (auto a = rec.As<vigil_ev_agent>()) {
    o.String("action", a->action == VIGIL_AGENT_REGISTER  ? "register"
                       : a->action == VIGIL_AGENT_UNTRACK ? "untrack"
                                                          : "unknown");
    h.AgentId(o);
    o.Number("cgroup_id", a->cgroup_id);
    h.Committed(o);
    h.Flags(o);
    o.String("how", a->how == VIGIL_AGENT_BY_PID      ? "pid"
                    : a->how == VIGIL_AGENT_BY_CGROUP ? "cgroup"
                                                      : "unknown");
    o.Field("name", a->name);
    h.NoModule(o);
    o.Number("pid", a->pid);
    h.SeqTsType(o);
    o.Number("uid", a->uid);
  } else if (auto s = rec.As<vigil_ev_sample>()) {
    const bool hw = (s->flags & VIGIL_SAMPLE_F_HW) != 0;
    const bool sys = (s->flags & VIGIL_SAMPLE_F_SYSCALLS) != 0;
    h.AgentId(o);
    h.Committed(o);
    o.Number("cpu", s->cpu);
    h.Flags(o);
    o.Bool("hw_counters", hw);
    o.Number("interval_ns", s->interval_ns);
    {
      ObjectWriter m = o.Object("metrics");
      m.NumberOrNull("cycles", hw, s->cycles);
      m.NumberOrNull("instructions", hw, s->instructions);
      m.Number("maj_flt", s->maj_flt);
      m.Number("min_flt", s->min_flt);
      m.Number("nivcsw", s->nivcsw);
      m.Number("nvcsw", s->nvcsw);
      m.Number("oncpu_ns", s->oncpu_ns);
      m.NumberOrNull("syscalls", sys, s->syscalls);
    }
    h.NoModule(o);
    o.Number("pid", s->pid);
    o.Number("sample_flags", s->flags);
    h.SeqTsType(o);
  } else {
    // An event type or size RecordToJson has no body for: the header.
    h.AgentId(o);
    h.Committed(o);
    h.Flags(o);
    h.NoModule(o);
    h.SeqTsType(o);
  }
}

}  // namespace

void AppendRecordJson(const records::Record& rec, std::string& out) {
  if (!records::IsEvent(rec.type())) {
    out += Dump(RecordToJson(rec));
    return;
  }
  const size_t start = out.size();
  out.resize(start + MaxObject(rec.bytes().size()));
  char* p = out.data() + start;
  WriteEventObject(rec, p);
  out.resize(static_cast<size_t>(p - out.data()));
}

}  // namespace vigil::format
