// Errors as values: Status and Result<T>, carrying where an error came from
// (errno, a TSS2 response code, OpenSSL, libbpf) so messages can say why.
#ifndef VIGIL_USERSPACE_LIB_VIGIL_STATUS_H_
#define VIGIL_USERSPACE_LIB_VIGIL_STATUS_H_

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

// Records are hashed and parsed as they lie in memory, in the ABI's
// little-endian order (include/uapi/vigil.h): no big-endian build. Every
// user-space file includes this header.
static_assert(std::endian::native == std::endian::little,
              "vigil: little-endian targets only (the ABI is little-endian)");

namespace vigil {

// A small code set in the manner of abseil's StatusCode.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,     // the caller passed something wrong
  kNotFound,            // a file, device, symbol or record is missing
  kPermissionDenied,    // not root / missing capability
  kUnavailable,         // a resource (TPM, device) cannot be reached
  kTruncated,           // input ended inside a record
  kMalformed,           // input is structurally invalid (sizes, fields)
  kUnsupported,         // unknown record type, version or algorithm
  kIncompatible,        // ABI major version mismatch
  kMismatch,            // a verification found different values
  kFailedPrecondition,  // the system is not in the needed state
  kInternal,            // a library call failed unexpectedly
};

// Which C boundary produced the error; origin_code() holds its raw value.
enum class ErrorOrigin { kNone, kErrno, kTss2, kOpenSsl, kLibbpf, kPostgres };

std::string_view ErrorCodeName(ErrorCode code);

// Thread-safety: a value type; const methods are safe to call concurrently.
class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status Error(ErrorCode code, std::string message);
  // errno (positive) from a system call; `what` says what was attempted.
  static Status FromErrno(int err, std::string_view what);
  // A TSS2_RC; the text comes from Tss2_RC_Decode.
  static Status FromTss2(uint32_t rc, std::string_view what);
  // Drains the OpenSSL error queue into the message.
  static Status FromOpenSsl(std::string_view what);
  // A libbpf return value (negative errno).
  static Status FromLibbpf(int err, std::string_view what);
  // A PostgreSQL error: `sqlstate` (5 characters, or empty when libpq gave
  // none, e.g. a lost connection) is kept as origin_code (its 5 bytes).
  static Status FromPostgres(ErrorCode code, std::string_view sqlstate, std::string message);

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  ErrorOrigin origin() const { return origin_; }
  int64_t origin_code() const { return origin_code_; }
  const std::string& message() const { return message_; }
  // kPostgres: the SQLSTATE ("40001"); empty otherwise.
  std::string sqlstate() const;
  std::string ToString() const;

 private:
  Status(ErrorCode code, ErrorOrigin origin, int64_t origin_code, std::string message)
      : code_(code), origin_(origin), origin_code_(origin_code), message_(std::move(message)) {}

  ErrorCode code_ = ErrorCode::kOk;
  ErrorOrigin origin_ = ErrorOrigin::kNone;
  int64_t origin_code_ = 0;
  std::string message_;
};

namespace internal {
// Prints the status and aborts. Reading the value of an error Result is a
// programming error; in a verifier, continuing with garbage could turn into
// a wrong verdict, so it stops in every build type (abseil StatusOr does the
// same), not only where assert() is compiled in.
[[noreturn]] void DieOnErrorValue(const Status& status);
}  // namespace internal

// A value or the Status saying why there is none. value() (and * and ->) on
// an error aborts with the status message.
// Thread-safety: like the T it holds.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  // Builds the value in place (no move of a large value).
  template <typename... Args>
  explicit Result(std::in_place_t, Args&&... args)
      : value_(std::in_place, std::forward<Args>(args)...) {}
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    // An OK status carries no value: turn the mistake into an error.
    if (status_.ok()) {
      status_ = Status::Error(ErrorCode::kInternal, "Result built from OK Status");
    }
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & {
    CheckOk();
    return *value_;
  }
  const T& value() const& {
    CheckOk();
    return *value_;
  }
  T&& value() && {
    CheckOk();
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void CheckOk() const {
    if (!ok()) [[unlikely]] internal::DieOnErrorValue(status_);
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace vigil

#define VIGIL_CONCAT_INNER_(a, b) a##b
#define VIGIL_CONCAT_(a, b) VIGIL_CONCAT_INNER_(a, b)

#define VIGIL_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::vigil::Status vigil_status_ = (expr);        \
    if (!vigil_status_.ok()) return vigil_status_; \
  } while (0)

#define VIGIL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#define VIGIL_ASSIGN_OR_RETURN(lhs, expr) \
  VIGIL_ASSIGN_OR_RETURN_IMPL_(VIGIL_CONCAT_(vigil_result_, __LINE__), lhs, expr)

#endif  // VIGIL_USERSPACE_LIB_VIGIL_STATUS_H_
