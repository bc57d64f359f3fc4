// Reading a file vigil parses (evidence, policy, state, reports) whole, with
// a bound: a hostile or mistaken path can neither exhaust memory nor hang
// the program (a FIFO or device in its place is refused, not read).
#ifndef VIGIL_USERSPACE_LIB_VIGIL_READ_FILE_H_
#define VIGIL_USERSPACE_LIB_VIGIL_READ_FILE_H_

#include <cstddef>
#include <string>

#include "vigil/status.h"

namespace vigil {

// The bytes of the regular file at `path`, at most `max` of them.
// kNotFound when it does not exist, kInvalidArgument when it is not a
// regular file or is larger than `max`, the errno otherwise. Files whose
// size is not known in advance (securityfs, procfs) are read to their end.
Result<std::string> ReadFileUpTo(const std::string& path, size_t max);

}  // namespace vigil

#endif  // VIGIL_USERSPACE_LIB_VIGIL_READ_FILE_H_
