// Human and JSON renderings of records and of the module's info.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_FORMAT_H_
#define VIGIL_USERSPACE_LIB_VIGIL_FORMAT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "vigil.h"
#include "vigil/records.h"
#include "vigil/verify.h"

namespace vigil::format {

// One JSON object per record: "type", "seq", "committed", "ts_ns", "flags"
// and the type's fields (see docs/kernel-module.md for event field names).
nlohmann::json RecordToJson(const records::Record& rec);
// One line of text per record; its strings go through EscapeText.
std::string RecordToText(const records::Record& rec);

// Text for a terminal from bytes the kernel or a file supplied (comm,
// filename, agent and measurement names, state file contents): printable
// ASCII (0x20-0x7e) stays, a backslash becomes "\\", and every other byte
// (control characters such as ESC, DEL, and every byte >= 0x80, so invalid
// UTF-8 and C1 controls too) becomes "\xHH". The result cannot move the
// cursor, change colours, set the window title or inject a fake line, and
// distinct inputs stay distinct. Every human-readable output of vigilctl
// uses it; JSON output escapes through the JSON encoder instead.
std::string EscapeText(std::string_view raw);

// Serializes JSON without ever throwing on invalid UTF-8: strings come from
// the kernel (comm, filename) and from the monitored processes, so bytes that
// are not UTF-8 are replaced with U+FFFD instead of raising type_error.316.
// indent < 0: one line.
std::string Dump(const nlohmann::json& j, int indent = -1);

// RecordToJson(rec) serialized as Dump(..) does, appended to `out`, without
// building the JSON tree: vigild writes one line per record, and nlohmann's
// tree capped that at about 130k records/s. Same keys in the same (sorted)
// order and the same bytes: strings are escaped exactly as Dump escapes them
// (control characters as \b \t \n \f \r or \u00xx, UTF-8 kept, each
// maximal invalid UTF-8 subpart replaced with U+FFFD). Event records take the
// direct path; the module's log records (rare) go through RecordToJson.
void AppendRecordJson(const records::Record& rec, std::string& out);

// `raw` as a JSON string literal (quotes included), escaped as Dump escapes
// strings, appended to `out`.
void AppendJsonString(std::string_view raw, std::string& out);

// A checkpoint verdict and a finding as vigild prints them ("type":
// "checkpoint" / "finding"); vigilctl verify-chain uses the same layout.
nlohmann::json VerdictToJson(const verify::CheckpointVerdict& v);
nlohmann::json FindingToJson(const verify::Finding& f);

nlohmann::json VersionToJson(const vigil_version& v);
nlohmann::json InfoToJson(const vigil_info& info);

}  // namespace vigil::format

#endif  // VIGIL_USERSPACE_LIB_VIGIL_FORMAT_H_
