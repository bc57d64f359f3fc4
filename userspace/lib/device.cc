#include "vigil/device.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace vigil::device {

Result<VigilDevice> VigilDevice::Open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno(errno, "open " + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISCHR(st.st_mode)) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         path + " is not a character device (not the vigil module's device)");
  }
  return VigilDevice(std::move(fd));
}

Result<vigil_version> VigilDevice::GetVersion() {
  vigil_version v;
  std::memset(&v, 0, sizeof(v));
  v.size = sizeof(v);
  if (::ioctl(fd_.get(), VIGIL_IOC_GET_VERSION, &v) != 0) {
    if (errno == ENOTTY) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "VIGIL_IOC_GET_VERSION: the device does not answer vigil's ioctls");
    }
    return Status::FromErrno(errno, "VIGIL_IOC_GET_VERSION");
  }
  v.module_version[sizeof(v.module_version) - 1] = '\0';
  return v;
}

Result<vigil_info> VigilDevice::GetInfo() {
  vigil_info info;
  std::memset(&info, 0, sizeof(info));
  info.size = sizeof(info);
  if (::ioctl(fd_.get(), VIGIL_IOC_GET_INFO, &info) != 0) {
    return Status::FromErrno(errno, "VIGIL_IOC_GET_INFO");
  }
  return info;
}

Result<uint64_t> VigilDevice::Commit(uint32_t kind, std::span<const uint8_t> payload) {
  if (payload.size() > VIGIL_USER_PAYLOAD_MAX) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a committed payload holds at most " +
                             std::to_string(VIGIL_USER_PAYLOAD_MAX) + " bytes");
  }
  vigil_commit c;
  std::memset(&c, 0, sizeof(c));
  c.size = sizeof(c);
  c.kind = kind;
  c.len = static_cast<uint32_t>(payload.size());
  c.payload = reinterpret_cast<uint64_t>(payload.data());
  if (::ioctl(fd_.get(), VIGIL_IOC_COMMIT, &c) != 0) {
    return Status::FromErrno(errno, "VIGIL_IOC_COMMIT");
  }
  return c.seq;
}

Status VigilDevice::OpenProducers() {
  vigil_producers p;
  std::memset(&p, 0, sizeof(p));
  p.size = sizeof(p);
  if (::ioctl(fd_.get(), VIGIL_IOC_PRODUCERS_OPEN, &p) != 0) {
    return Status::FromErrno(errno, "VIGIL_IOC_PRODUCERS_OPEN");
  }
  return Status::Ok();
}

Result<vigil_producers> VigilDevice::SealProducers() {
  vigil_producers p;
  std::memset(&p, 0, sizeof(p));
  p.size = sizeof(p);
  if (::ioctl(fd_.get(), VIGIL_IOC_PRODUCERS_SEAL, &p) != 0) {
    return Status::FromErrno(errno, "VIGIL_IOC_PRODUCERS_SEAL");
  }
  return p;
}

Result<vigil_seal> VigilDevice::Seal() {
  vigil_seal seal;
  std::memset(&seal, 0, sizeof(seal));
  seal.size = sizeof(seal);
  if (::ioctl(fd_.get(), VIGIL_IOC_SEAL, &seal) != 0 && errno != EALREADY) {
    return Status::FromErrno(errno, "VIGIL_IOC_SEAL");
  }
  return seal;
}

Result<uint64_t> VigilDevice::Trim(uint64_t before_seq) {
  vigil_trim t;
  std::memset(&t, 0, sizeof(t));
  t.size = sizeof(t);
  t.before_seq = before_seq;
  if (::ioctl(fd_.get(), VIGIL_IOC_TRIM, &t) != 0) {
    const int err = errno;
    const std::string what = "VIGIL_IOC_TRIM before log seq " + std::to_string(before_seq);
    // The two answers callers act on get codes of their own: EAGAIN means
    // "later", ESHUTDOWN "never again".
    if (err == EAGAIN) {
      return Status::Error(ErrorCode::kUnavailable,
                           what + ": a record it would drop has a PCR extend pending (EAGAIN)");
    }
    if (err == ESHUTDOWN) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           what + ": the module is sealed (ESHUTDOWN)");
    }
    return Status::FromErrno(err, what);
  }
  return t.trimmed;
}

Result<uint64_t> VigilDevice::Measure(const std::string& name, std::span<const uint8_t> digest) {
  vigil_measure m;
  std::memset(&m, 0, sizeof(m));
  m.size = sizeof(m);
  if (name.empty() || name.size() >= sizeof(m.name)) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "measurement name must be 1.." + std::to_string(sizeof(m.name) - 1) +
                             " bytes: " + name);
  }
  if (digest.size() != sizeof(m.digest)) {
    return Status::Error(ErrorCode::kInvalidArgument, "measurement digest must be SHA-256");
  }
  std::memcpy(m.name, name.data(), name.size());
  std::memcpy(m.digest, digest.data(), digest.size());
  if (::ioctl(fd_.get(), VIGIL_IOC_MEASURE, &m) != 0) {
    return Status::FromErrno(errno, "VIGIL_IOC_MEASURE " + name);
  }
  return m.log_seq;
}

Result<std::vector<uint8_t>> VigilDevice::ReadAvailable() {
  std::vector<uint8_t> out;
  std::vector<uint8_t> buf(64 * 1024);
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n > 0) {
      out.insert(out.end(), buf.begin(), buf.begin() + n);
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) break;
    return Status::FromErrno(errno, "read " VIGIL_DEVICE_PATH);
  }
  return out;
}

Status CheckAbi(const vigil_version& version) {
  if (version.abi_major != VIGIL_ABI_MAJOR) {
    return Status::Error(
        ErrorCode::kIncompatible,
        "incompatible vigil ABI: the module speaks " + std::to_string(version.abi_major) + "." +
            std::to_string(version.abi_minor) + ", this program was built for " +
            std::to_string(VIGIL_ABI_MAJOR) + "." + std::to_string(VIGIL_ABI_MINOR) +
            "; install matching versions of the module and tools");
  }
  return Status::Ok();
}

}  // namespace vigil::device
