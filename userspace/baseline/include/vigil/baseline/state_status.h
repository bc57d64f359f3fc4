// Errors as values for the baseline library: a typed code, the place in the
// input it refers to (a JSON pointer such as "/agents/3/features/ipc/sketch"),
// and a human message. Self-contained so the library depends on nothing but
// the standard library and nlohmann-json; vigild maps StateCode onto
// vigil::ErrorCode at its boundary (see StateCodeName for the names).
#ifndef VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STATE_STATUS_H_
#define VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STATE_STATUS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace vigil::baseline {

enum class StateCode {
  kOk = 0,
  kSyntax,              // not JSON at all (vigil::ErrorCode::kMalformed)
  kTruncated,           // JSON ended early (kTruncated)
  kWrongFormat,         // the "format" tag is missing or not ours (kMalformed)
  kUnsupportedVersion,  // a version this build does not read (kUnsupported)
  kMissingField,        // a required member is absent (kMalformed)
  kUnknownField,        // a member this version does not define (kMalformed)
  kWrongType,           // e.g. a string where a count belongs (kMalformed)
  kNonFinite,           // NaN or +-inf, or a number beyond double (kMalformed)
  kOutOfRange,          // a value outside its documented range (kMalformed)
  kInconsistent,        // counts or invariants disagree (kMalformed)
  kDuplicate,           // the same agent or executable twice (kMalformed)
  kConfigMismatch,      // state made with other sketch parameters (kIncompatible)
  kInvalidConfig,       // a BaselineConfig field is out of range (kInvalidArgument)
};

std::string_view StateCodeName(StateCode code);

// Thread-safety: a value type; const methods are safe to call concurrently.
class [[nodiscard]] StateStatus {
 public:
  StateStatus() = default;  // OK
  StateStatus(StateCode code, std::string path, std::string message)
      : code_(code), path_(std::move(path)), message_(std::move(message)) {}

  static StateStatus Ok() { return StateStatus(); }

  bool ok() const { return code_ == StateCode::kOk; }
  StateCode code() const { return code_; }
  // JSON pointer of the offending member ("" for the document itself).
  const std::string& path() const { return path_; }
  const std::string& message() const { return message_; }
  // "out of range at /agents/0/features/lifetime/welford/m2: must be >= 0".
  std::string ToString() const;

 private:
  StateCode code_ = StateCode::kOk;
  std::string path_;
  std::string message_;
};

// Prints the status and aborts: value() on an error is a programming error,
// and stops in every build type rather than read an empty optional (UB
// where assert() is compiled out, as in RelWithDebInfo).
[[noreturn]] void DieOnErrorValue(const StateStatus& status);

// A value or the StateStatus saying why there is none. value() (and ->) on
// an error aborts with the status message.
// Thread-safety: like the T it holds.
template <typename T>
class [[nodiscard]] StateResult {
 public:
  StateResult(T value) : value_(std::move(value)) {}              // NOLINT: implicit
  StateResult(StateStatus status) : status_(std::move(status)) {  // NOLINT
    if (status_.ok()) {
      status_ =
          StateStatus(StateCode::kInvalidConfig, "", "internal: StateResult built from OK status");
    }
  }

  bool ok() const { return value_.has_value(); }
  const StateStatus& status() const { return status_; }
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

 private:
  void CheckOk() const {
    if (!ok()) [[unlikely]] DieOnErrorValue(status_);
  }

  std::optional<T> value_;
  StateStatus status_;
};

}  // namespace vigil::baseline

#endif  // VIGIL_USERSPACE_BASELINE_INCLUDE_VIGIL_BASELINE_STATE_STATUS_H_
