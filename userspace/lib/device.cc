#include "vigil/device.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <string>

namespace vigil::device {

namespace {

// An ioctl argument: zeroed (flags and reserved words must be 0), its size
// word set.
template <typename T>
T Arg() {
  T arg;
  std::memset(&arg, 0, sizeof(arg));
  arg.size = sizeof(arg);
  return arg;
}

// 0 when the ioctl succeeded, else its errno.
int Ioctl(int fd, unsigned long cmd, void* arg) { return ::ioctl(fd, cmd, arg) == 0 ? 0 : errno; }

}  // namespace

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
  auto v = Arg<vigil_version>();
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_GET_VERSION, &v); err != 0) {
    if (err == ENOTTY) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "VIGIL_IOC_GET_VERSION: the device does not answer vigil's ioctls");
    }
    return Status::FromErrno(err, "VIGIL_IOC_GET_VERSION");
  }
  v.module_version[sizeof(v.module_version) - 1] = '\0';
  return v;
}

Result<vigil_info> VigilDevice::GetInfo() {
  auto info = Arg<vigil_info>();
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_GET_INFO, &info); err != 0) {
    return Status::FromErrno(err, "VIGIL_IOC_GET_INFO");
  }
  return info;
}

Result<uint64_t> VigilDevice::Commit(uint32_t kind, std::span<const uint8_t> payload) {
  if (payload.size() > VIGIL_USER_PAYLOAD_MAX) {
    return Status::Error(ErrorCode::kInvalidArgument,
                         "a committed payload holds at most " +
                             std::to_string(VIGIL_USER_PAYLOAD_MAX) + " bytes");
  }
  auto c = Arg<vigil_commit>();
  c.kind = kind;
  c.len = static_cast<uint32_t>(payload.size());
  c.payload = reinterpret_cast<uint64_t>(payload.data());
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_COMMIT, &c); err != 0) {
    return Status::FromErrno(err, "VIGIL_IOC_COMMIT");
  }
  return c.seq;
}

Status VigilDevice::OpenProducers() {
  auto p = Arg<vigil_producers>();
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_PRODUCERS_OPEN, &p); err != 0) {
    return Status::FromErrno(err, "VIGIL_IOC_PRODUCERS_OPEN");
  }
  return Status::Ok();
}

Result<vigil_producers> VigilDevice::SealProducers() {
  auto p = Arg<vigil_producers>();
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_PRODUCERS_SEAL, &p); err != 0) {
    return Status::FromErrno(err, "VIGIL_IOC_PRODUCERS_SEAL");
  }
  return p;
}

Result<bool> VigilDevice::AddProducer(int prog_fd) {
  auto a = Arg<vigil_producer_add>();
  a.prog_fd = prog_fd;
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_PRODUCERS_ADD, &a); err != 0) {
    if (err == ENOMSG) return false;
    return Status::FromErrno(err, "VIGIL_IOC_PRODUCERS_ADD");
  }
  return true;
}

Result<vigil_seal> VigilDevice::Seal() {
  auto seal = Arg<vigil_seal>();
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_SEAL, &seal); err != 0 && err != EALREADY) {
    return Status::FromErrno(err, "VIGIL_IOC_SEAL");
  }
  return seal;
}

Result<uint64_t> VigilDevice::Trim(uint64_t before_seq) {
  auto t = Arg<vigil_trim>();
  t.before_seq = before_seq;
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_TRIM, &t); err != 0) {
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
  auto m = Arg<vigil_measure>();
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
  if (const int err = Ioctl(fd_.get(), VIGIL_IOC_MEASURE, &m); err != 0) {
    return Status::FromErrno(err, "VIGIL_IOC_MEASURE " + name);
  }
  return m.log_seq;
}

Result<KeyCreation> VigilDevice::GetKeyCreation() {
  // The blobs take about 600 bytes; a re-derive between two calls may
  // change their lengths, hence the loop.
  std::vector<uint8_t> buf(2048);
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto kc = Arg<vigil_key_creation>();
    kc.buf = reinterpret_cast<uint64_t>(buf.data());
    kc.buf_len = static_cast<uint32_t>(buf.size());
    const int err = Ioctl(fd_.get(), VIGIL_IOC_KEY_CREATION, &kc);
    if (err == ENOSPC && kc.needed > buf.size()) {
      buf.resize(kc.needed);
      continue;
    }
    if (err == ENOTTY) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "VIGIL_IOC_KEY_CREATION: the module is older than ABI 2.1");
    }
    if (err == ENODEV || err == ENOKEY) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           std::string("VIGIL_IOC_KEY_CREATION: the module has ") +
                               (err == ENODEV ? "no TPM" : "no checkpoint key"));
    }
    if (err != 0) return Status::FromErrno(err, "VIGIL_IOC_KEY_CREATION");
    const uint32_t lens[] = {kc.public_len, kc.creation_data_len, kc.creation_hash_len,
                             kc.ticket_len, kc.context_len};
    uint64_t total = 0;
    for (uint32_t n : lens) total += n;
    if (total != kc.needed || total > buf.size()) {
      return Status::Error(ErrorCode::kMalformed,
                           "VIGIL_IOC_KEY_CREATION: lengths disagree with needed");
    }
    KeyCreation out;
    std::vector<uint8_t>* parts[] = {&out.key_public, &out.creation_data, &out.creation_hash,
                                     &out.creation_ticket, &out.context};
    size_t off = 0;
    for (size_t i = 0; i < std::size(lens); ++i) {
      parts[i]->assign(buf.begin() + off, buf.begin() + off + lens[i]);
      off += lens[i];
    }
    return out;
  }
  return Status::Error(ErrorCode::kUnavailable,
                       "VIGIL_IOC_KEY_CREATION: the key's blobs kept changing size");
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
