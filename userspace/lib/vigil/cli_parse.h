// Command-line parsing shared by vigil's programs: CLI11 exits with its own
// codes (105-115); vigil's tools exit 2 on a usage error, 0 after --help or
// --version, as their man pages say.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_CLI_PARSE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_CLI_PARSE_H_

#include <optional>

#include <CLI/CLI.hpp>

namespace vigil::cli {

inline constexpr int kExitUsage = 2;

// Parses argv into app. Returns nothing when the program goes on, else the
// code to exit with (the message was printed).
inline std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }
  return std::nullopt;
}

}  // namespace vigil::cli

#endif  // VIGIL_USERSPACE_LIB_VIGIL_CLI_PARSE_H_
