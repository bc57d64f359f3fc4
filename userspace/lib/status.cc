#include "vigil/status.h"

#include <openssl/err.h>
#include <tss2/tss2_rc.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace vigil {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kPermissionDenied:
      return "permission denied";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTruncated:
      return "truncated";
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kIncompatible:
      return "incompatible";
    case ErrorCode::kMismatch:
      return "mismatch";
    case ErrorCode::kFailedPrecondition:
      return "failed precondition";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

namespace internal {

void DieOnErrorValue(const Status& status) {
  std::fprintf(stderr, "vigil: Result::value() called on an error: %s\n",
               status.ToString().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace internal

Status Status::Error(ErrorCode code, std::string message) {
  return Status(code, ErrorOrigin::kNone, 0, std::move(message));
}

namespace {

ErrorCode CodeForErrno(int err) {
  switch (err) {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return ErrorCode::kNotFound;
    case EPERM:
    case EACCES:
      return ErrorCode::kPermissionDenied;
    case EINVAL:
      return ErrorCode::kInvalidArgument;
    case ENOTTY:
    case EOPNOTSUPP:
      return ErrorCode::kUnsupported;
    case EAGAIN:
    case EBUSY:
    case ECONNREFUSED:
      return ErrorCode::kUnavailable;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace

Status Status::FromErrno(int err, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return Status(CodeForErrno(err), ErrorOrigin::kErrno, err, std::move(msg));
}

Status Status::FromTss2(uint32_t rc, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += Tss2_RC_Decode(rc);
  char hex[16];
  std::snprintf(hex, sizeof(hex), " (0x%x)", rc);
  msg += hex;
  return Status(ErrorCode::kUnavailable, ErrorOrigin::kTss2, rc, std::move(msg));
}

Status Status::FromOpenSsl(std::string_view what) {
  std::string msg(what);
  unsigned long first = 0;
  while (unsigned long e = ERR_get_error()) {
    if (first == 0) first = e;
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += ": ";
    msg += buf;
  }
  return Status(ErrorCode::kInternal, ErrorOrigin::kOpenSsl, static_cast<int64_t>(first),
                std::move(msg));
}

Status Status::FromLibbpf(int err, std::string_view what) {
  int e = err < 0 ? -err : err;
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(e);
  return Status(CodeForErrno(e), ErrorOrigin::kLibbpf, e, std::move(msg));
}

Status Status::FromPostgres(ErrorCode code, std::string_view sqlstate, std::string message) {
  int64_t packed = 0;
  if (sqlstate.size() == 5) {
    for (const char c : sqlstate) packed = (packed << 8) | static_cast<unsigned char>(c);
  }
  return Status(code, ErrorOrigin::kPostgres, packed, std::move(message));
}

std::string Status::sqlstate() const {
  if (origin_ != ErrorOrigin::kPostgres || origin_code_ == 0) return "";
  std::string out(5, '\0');
  for (int i = 4, shift = 0; i >= 0; --i, shift += 8) {
    out[i] = static_cast<char>((origin_code_ >> shift) & 0xff);
  }
  return out;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(ErrorCodeName(code_)) + ": " + message_;
}

}  // namespace vigil
