// Human and JSON renderings of records and of the module's info.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_FORMAT_H_
#define VIGIL_USERSPACE_LIB_VIGIL_FORMAT_H_

#include <nlohmann/json.hpp>
#include <string>

#include "vigil.h"
#include "vigil/records.h"

namespace vigil::format {

// One JSON object per record: "type", "seq", "committed", "ts_ns", "flags"
// and the type's fields (see docs/kernel-module.md for event field names).
nlohmann::json RecordToJson(const records::Record& rec);
// One line of text per record.
std::string RecordToText(const records::Record& rec);

// Serializes JSON without ever throwing on invalid UTF-8: strings come from
// the kernel (comm, filename) and from the monitored processes, so bytes that
// are not UTF-8 are replaced with U+FFFD instead of raising type_error.316.
// indent < 0: one line.
std::string Dump(const nlohmann::json& j, int indent = -1);

nlohmann::json VersionToJson(const vigil_version& v);
nlohmann::json InfoToJson(const vigil_info& info);

}  // namespace vigil::format

#endif  // VIGIL_USERSPACE_LIB_VIGIL_FORMAT_H_
