#include "vigil/version.h"

#include <openssl/opensslv.h>

#include "vigil.h"

// Set by userspace/lib/CMakeLists.txt; the fallbacks keep other builds
// (the fuzz project) compiling.
#ifndef VIGIL_VERSION
#define VIGIL_VERSION "unknown"
#endif
#ifndef VIGIL_BUILD_TYPE
#define VIGIL_BUILD_TYPE "unknown"
#endif
#ifndef VIGIL_GIT_REV
#define VIGIL_GIT_REV "unknown"
#endif

namespace vigil::version {
namespace {

std::string Compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown compiler";
#endif
}

}  // namespace

std::string_view Release() { return VIGIL_VERSION; }

std::string BuildInfo() {
  return Compiler() + ", " + VIGIL_BUILD_TYPE + ", git " + VIGIL_GIT_REV + ", " +
         OPENSSL_VERSION_TEXT;
}

std::string VersionText(std::string_view program) {
  return std::string(program) + " " + std::string(Release()) + "\nABI " +
         std::to_string(VIGIL_ABI_MAJOR) + "." + std::to_string(VIGIL_ABI_MINOR) +
         " (include/uapi/vigil.h)\nbuild: " + BuildInfo();
}

}  // namespace vigil::version
