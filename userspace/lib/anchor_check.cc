#include "vigil/anchor_check.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <map>

#include "vigil/replay.h"

namespace vigil::anchor {
namespace {

Status Unavailable(const std::string& what, const Status& why) {
  return Status::Error(ErrorCode::kUnavailable, what + ": " + why.message());
}

// A TPM mismatch can be a race with the module (the log is written before
// the TPM is extended, and IMA's log before PCR 10): read again.
constexpr int kAttempts = 3;

class TpmSource final : public PcrSource {
 public:
  explicit TpmSource(std::string tcti) : tcti_(std::move(tcti)) {}

  Status OpenTpm() override {
    if (esys_) return Status::Ok();
    auto ctx = tpm::EsysContext::Open(tcti_);
    if (!ctx.ok()) return Unavailable("TPM " + tcti_, ctx.status());
    esys_.emplace(std::move(ctx).value());
    return Status::Ok();
  }
  Result<std::vector<uint8_t>> ReadLog() override {
    if (!device_) {
      auto dev = device::VigilDevice::Open();
      if (!dev.ok()) return dev.status();
      device_.emplace(std::move(dev).value());
    }
    return device_->ReadAvailable();
  }
  Result<crypto::Digest> ReadPcr(uint16_t alg, uint32_t pcr) override {
    return esys_->PcrRead(alg, pcr);
  }

 private:
  std::string tcti_;
  std::optional<tpm::EsysContext> esys_;
  std::optional<device::VigilDevice> device_;
};

}  // namespace

std::unique_ptr<PcrSource> TpmPcrSource(std::string tcti) {
  return std::make_unique<TpmSource>(std::move(tcti));
}

Status PcrChecker::Check(const std::vector<records::Record>& verified) {
  if (Status st = source_->OpenTpm(); !st.ok()) return st;
  auto reader = [this](uint16_t alg, uint32_t pcr) { return source_->ReadPcr(alg, pcr); };
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (Status st = ReadMore(); !st.ok()) return st;
    last = replay::CheckPcrPath(verified, current_, info_.pcr_config, info_.pcr_events, reader);
    if (last.code() != ErrorCode::kMismatch) return last;
  }
  return last;
}

// Errors here say nothing about the TPM's values: "not checked".
Status PcrChecker::ReadMore() {
  const std::string what = "reading the module's log for the PCR check";
  auto bytes = source_->ReadLog();
  if (!bytes.ok()) return Unavailable(what, bytes.status());
  auto more = records::DecodeStream(*bytes);
  if (!more.ok()) return Unavailable(what, more.status());
  // The replay starts at the newest BASE's cut (TRIM writes its BASE after
  // the records it keeps).
  for (records::Record& r : *more) replay::AppendToReplayView(current_, std::move(r));
  return Status::Ok();
}

ImaAnchorCheck::~ImaAnchorCheck() {
  if (fd_ >= 0) ::close(fd_);
}

Status ImaAnchorCheck::operator()(const std::vector<records::Record>& verified) {
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    // The module logs a record, then measures it: give IMA a moment.
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    last = Once(verified);
    if (last.code() != ErrorCode::kMismatch) return last;
  }
  return last;
}

Status ImaAnchorCheck::Once(const std::vector<records::Record>& verified) {
  if (!esys_) {
    auto ctx = tpm::EsysContext::Open(tcti_);
    if (!ctx.ok()) return Unavailable("TPM " + tcti_, ctx.status());
    esys_.emplace(std::move(ctx).value());
  }
  std::vector<uint16_t> banks;
  for (uint32_t i = 0; i < info_.nr_banks && i < VIGIL_MAX_BANKS; ++i) {
    banks.push_back(info_.bank_alg[i]);
  }
  if (!log_) {
    auto log = ima::ImaLog::Create(banks);
    if (!log.ok()) return Unavailable("IMA log replay", log.status());
    log_.emplace(std::move(log).value());
  }
  // PCR 10 first, then the log: the log can only be ahead of the values.
  std::map<uint16_t, crypto::Digest> pcr10;
  for (uint16_t alg : banks) {
    auto v = esys_->PcrRead(alg, ima::kImaPcr);
    if (!v.ok()) return Unavailable("reading PCR 10", v.status());
    pcr10[alg] = std::move(*v);
  }
  if (fd_ < 0) {
    fd_ = ::open(log_path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      return Unavailable("IMA's log", Status::FromErrno(errno, "open " + log_path_));
    }
  }
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    const ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unavailable("IMA's log", Status::FromErrno(errno, "read " + log_path_));
    if (n == 0) break;
    if (Status st = log_->Append(std::span<const uint8_t>(buf.data(), static_cast<size_t>(n)));
        !st.ok()) {
      // Start over next time. kMalformed: not IMA's log (anchor broken);
      // kUnsupported: not checked.
      log_.reset();
      ::close(fd_);
      fd_ = -1;
      return st;
    }
  }
  auto prefix = log_->MatchPcr10(pcr10);
  if (!prefix.ok()) return prefix.status();
  return log_->CheckModuleRecords(verified, info_.instance_id, *prefix);
}

}  // namespace vigil::anchor
