#include "vigil/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "vigil/unique_fd.h"

namespace vigil {

Result<std::string> ReadFileUpTo(const std::string& path, size_t max) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::Error(ErrorCode::kNotFound, path + " does not exist");
    return Status::FromErrno(err, "opening " + path);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "reading " + path);
  if (!S_ISREG(st.st_mode)) {
    return Status::Error(ErrorCode::kInvalidArgument, path + " is not a regular file");
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading " + path);
    }
    if (n == 0) break;
    if (static_cast<size_t>(n) > max - text.size()) {
      return Status::Error(ErrorCode::kInvalidArgument,
                           path + " is larger than " + std::to_string(max) + " bytes");
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace vigil
