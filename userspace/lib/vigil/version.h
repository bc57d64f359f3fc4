// What `--version` prints for vigild and vigilctl: the release, the ABI of
// include/uapi/vigil.h this build speaks, and how it was built.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_VERSION_H_
#define VIGIL_USERSPACE_LIB_VIGIL_VERSION_H_

#include <string>
#include <string_view>

namespace vigil::version {

// The project version (CMake's project(VERSION)).
std::string_view Release();
// "<compiler>, <build type>, git <revision at configure time>, <OpenSSL>".
std::string BuildInfo();
// The lines `PROGRAM --version` prints:
//   PROGRAM 0.1.0
//   ABI 1.0 (include/uapi/vigil.h)
//   build: gcc 12.2.0, RelWithDebInfo, git cc76e7c, OpenSSL 3.0.x ...
std::string VersionText(std::string_view program);

}  // namespace vigil::version

#endif  // VIGIL_USERSPACE_LIB_VIGIL_VERSION_H_
