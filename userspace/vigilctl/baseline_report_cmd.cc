// vigilctl baseline report (see baseline_report_cmd.h).
#include "baseline_report_cmd.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "vigil/attest/baseline_report.h"
#include "vigil/attest_tpm/enrolment.h"
#include "vigil/attest_tpm/quote.h"
#include "vigil/device.h"
#include "vigil/digest.h"
#include "vigil/format.h"
#include "vigil/ima.h"
#include "vigil/read_file.h"
#include "vigil/tpm.h"
#include "vigil/unique_fd.h"

namespace vigilctl {
namespace {

using vigil::ErrorCode;
using vigil::Result;
using vigil::Status;

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitMalformed = 6;
constexpr int kImaWaitTries = 50;  // x 100 ms


// IMA's binary log (securityfs: the size is 0, read to the end).
Result<std::vector<uint8_t>> ReadImaLog(const std::string& path) {
  vigil::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "opening " + path + " (IMA's log)");
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading " + path);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > vigil::attest::kMaxReportImaBytes) {
      return Status::Error(ErrorCode::kUnsupported,
                           "IMA's log is larger than a report carries (64 MiB)");
    }
  }
  return out;
}

Result<std::string> NodeId(const std::string& dir) {
  VIGIL_ASSIGN_OR_RETURN(std::string text, vigil::ReadFileUpTo(dir + "/node.json", 64 * 1024));
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("node") || !j["node"].is_string()) {
    return Status::Error(ErrorCode::kMalformed, dir + "/node.json: no node id");
  }
  return j["node"].get<std::string>();
}

// Whether IMA's log holds the module's entry for MEASURE `seq`.
Result<bool> ImaHasMeasure(const std::string& path, std::span<const uint8_t> instance,
                           uint64_t seq) {
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadImaLog(path));
  VIGIL_ASSIGN_OR_RETURN(vigil::ima::ImaLog log, vigil::ima::ImaLog::Create({TPM2_ALG_SHA256}));
  VIGIL_RETURN_IF_ERROR(log.Append(bytes));
  const std::string me = vigil::crypto::ToHex(instance.first(4));
  for (const vigil::ima::VigilEntry& e : log.vigil_entries()) {
    if (e.instance == me && e.kind == "measure" && e.seq == seq) return true;
  }
  return false;
}

Status WriteFile0600(const std::string& out, const std::string& text) {
  std::string tmp = out + ".XXXXXX";
  vigil::UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));  // mode 0600
  if (fd.get() < 0) return Status::FromErrno(errno, "creating a temporary file next to " + out);
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return Status::FromErrno(err, "writing " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), out.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "writing " + out);
  }
  return Status::Ok();
}

struct Made {
  std::string json;
  vigil::attest::BaselineReportCheck check;
};

Result<Made> MakeReport(const std::string& state_dir, const BaselineReportOptions& o) {
  if (o.out.empty()) return Status::Error(ErrorCode::kInvalidArgument, "-o FILE is required");
  vigil::attest::BaselineReport r;
  std::vector<uint8_t> nonce;
  if (o.nonce.empty()) {
    nonce.resize(32);
    if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
      return Status::FromOpenSsl("RAND_bytes");
    }
  } else {
    auto parsed = vigil::crypto::FromHex(o.nonce);
    if (!parsed.ok() || parsed->empty() || parsed->size() > vigil::attest::kMaxNonceBytes) {
      return Status::Error(ErrorCode::kInvalidArgument, "--nonce takes 1 to 64 bytes of hex");
    }
    nonce = std::move(parsed).value();
  }
  r.nonce = nonce;

  // 1. The snapshot: vigild's state file, verbatim, if it is one.
  const std::string state =
      state_dir + (!state_dir.empty() && state_dir.back() == '/' ? "" : "/") + "baselines.json";
  auto text = vigil::ReadFileUpTo(state, vigil::attest::kMaxSnapshotBytes);
  if (!text.ok()) {
    if (text.status().code() == ErrorCode::kNotFound) {
      return Status::Error(ErrorCode::kNotFound, "no baselines yet: vigild has not saved " + state);
    }
    return text.status();
  }
  if (text->empty()) return Status::Error(ErrorCode::kMalformed, state + " is empty");
  if (auto agents = vigil::attest::ParseBaselineSnapshot(*text); !agents.ok()) {
    return Status::Error(ErrorCode::kMalformed,
                         "malformed baseline state " + state + ": " + agents.status().message());
  }
  r.snapshot.assign(text->begin(), text->end());
  VIGIL_ASSIGN_OR_RETURN(r.snapshot_sha256, vigil::crypto::Hash(TPM2_ALG_SHA256, r.snapshot));

  // 2. The AK (and node id) before anything is measured.
  auto blobs = vigil::attest_tpm::LoadAkBlobs(o.dir);
  if (!blobs.ok()) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "no AK in " + o.dir + " (" + blobs.status().message() +
                             "): run `vigilctl attest enrol-request` and enrol first");
  }
  VIGIL_ASSIGN_OR_RETURN(r.node, NodeId(o.dir));
  r.ak_public = blobs->public_area;
  VIGIL_ASSIGN_OR_RETURN(vigil::tpmobj::PublicArea ak_public,
                         vigil::tpmobj::ParseTpm2bPublic(blobs->public_area));

  // 3. The module, anchored in IMA.
  auto dev = o.device.empty() ? vigil::device::VigilDevice::Open()
                              : vigil::device::VigilDevice::Open(o.device);
  if (!dev.ok()) {
    if (dev.status().code() == ErrorCode::kNotFound) {
      return Status::Error(ErrorCode::kNotFound,
                           "the vigil module is not loaded (insmod vigil.ko anchor=ima)");
    }
    return dev.status();
  }
  VIGIL_ASSIGN_OR_RETURN(vigil_info info, dev->GetInfo());
  if (info.anchor != VIGIL_ANCHOR_IMA) {
    return Status::Error(ErrorCode::kFailedPrecondition,
                         "the module anchors in PCRs " + std::to_string(info.pcr_config) + "/" +
                             std::to_string(info.pcr_events) +
                             " (anchor=pcr, resettable): a baseline report needs anchor=ima, "
                             "where the MEASURE record reaches PCR 10 through IMA");
  }
  std::memcpy(r.instance.data(), info.instance_id, r.instance.size());

  // 4. MEASURE, then wait until IMA's log holds the record.
  VIGIL_ASSIGN_OR_RETURN(
      r.measure_seq,
      dev->Measure(std::string(vigil::attest::kBaselineMeasureName), r.snapshot_sha256));
  for (int attempt = 0;; ++attempt) {
    VIGIL_ASSIGN_OR_RETURN(bool there, ImaHasMeasure(o.ima_log, r.instance, r.measure_seq));
    if (there) break;
    if (attempt >= kImaWaitTries) {
      return Status::Error(ErrorCode::kFailedPrecondition,
                           "IMA's log has no entry for MEASURE seq " +
                               std::to_string(r.measure_seq) +
                               " after 5 s: does IMA's policy measure CRITICAL_DATA?");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // 5. The quote, then IMA's log (a log read after the quote holds at
  // least what PCR 10 covers).
  VIGIL_ASSIGN_OR_RETURN(std::vector<uint8_t> qualifying,
                         vigil::attest::BaselineReportQualifyingData(r.snapshot_sha256, r.instance,
                                                                     r.measure_seq, nonce));
  VIGIL_ASSIGN_OR_RETURN(vigil::tpm::EsysContext tpm, vigil::tpm::EsysContext::Open(o.tcti));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::LoadedObject ak,
                         vigil::attest_tpm::LoadAk(tpm, *blobs));
  VIGIL_ASSIGN_OR_RETURN(vigil::attest_tpm::QuoteOut quote,
                         vigil::attest_tpm::Quote(tpm, ak.handle(), qualifying,
                                                  {{TPM2_ALG_SHA256, {vigil::ima::kImaPcr}}}));
  r.quote_attest = std::move(quote.attest);
  r.quote_signature = std::move(quote.signature);
  r.pcr10_sha256 = quote.values.at(0).value;
  VIGIL_ASSIGN_OR_RETURN(r.ima_entries, ReadImaLog(o.ima_log));

  // 6. Checked as a verifier checks it, with this node's AK.
  Made made;
  made.json = vigil::attest::SerializeBaselineReport(r);
  made.check = vigil::attest::CheckBaselineReport(made.json, ak_public, nonce);
  if (!made.check.valid) {
    std::string why;
    for (const std::string& reason : made.check.reasons) why += "\n  " + reason;
    return Status::Error(ErrorCode::kInternal, "the report fails its own check:" + why);
  }
  return made;
}

}  // namespace

int CmdBaselineReport(const std::string& state_dir, const BaselineReportOptions& o) {
  auto made = MakeReport(state_dir, o);
  Status st = made.ok() ? WriteFile0600(o.out, made->json) : made.status();
  if (!st.ok()) {
    std::fprintf(stderr, "vigilctl baseline report: %s\n",
                 vigil::format::EscapeText(st.ToString()).c_str());
    return st.code() == ErrorCode::kMalformed ? kExitMalformed : kExitError;
  }
  const vigil::attest::BaselineReportCheck& c = made->check;
  std::printf("baseline report %s: %zu agents, sha256 %s, MEASURE seq %llu (IMA entry %zu)\n",
              o.out.c_str(), c.agents.value_or(0), vigil::crypto::ToHex(c.snapshot_sha256).c_str(),
              static_cast<unsigned long long>(c.measure_seq), c.ima_entry.value_or(0));
  return kExitOk;
}

}  // namespace vigilctl
