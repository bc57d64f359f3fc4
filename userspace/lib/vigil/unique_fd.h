// UniqueFd: owns a file descriptor.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_UNIQUE_FD_H_
#define VIGIL_USERSPACE_LIB_VIGIL_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace vigil {

// Move-only owner of a file descriptor; closes it on destruction.
// Thread-safety: not thread-safe; one owner at a time.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it (to an owner such as fdopendir).
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace vigil

#endif  // VIGIL_USERSPACE_LIB_VIGIL_UNIQUE_FD_H_
