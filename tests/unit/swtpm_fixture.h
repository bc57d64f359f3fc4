// Starts a private swtpm (TCP, fresh state) for a test and stops it after.
// A missing swtpm binary is a test failure, never a skip.
#ifndef VIGIL_TESTS_UNIT_SWTPM_FIXTURE_H_
#define VIGIL_TESTS_UNIT_SWTPM_FIXTURE_H_

#include <gtest/gtest.h>

#include <string>

namespace vigil::testing {

// A swtpm process (TCP, 127.0.0.1) on a state directory the caller owns and
// removes: a second TPM in one test, or a state prepared by swtpm_setup.
// Stopped on destruction. Thread-safety: not thread-safe.
class SwtpmProcess {
 public:
  SwtpmProcess() = default;
  ~SwtpmProcess() { Stop(); }
  SwtpmProcess(const SwtpmProcess&) = delete;
  SwtpmProcess& operator=(const SwtpmProcess&) = delete;

  // Starts swtpm on `state_dir` (startup-clear); fails when swtpm is
  // missing or does not come up.
  ::testing::AssertionResult Start(const std::string& state_dir);
  void Stop();
  const std::string& tcti() const { return tcti_; }

 private:
  std::string tcti_;
  int pid_ = -1;
};

// Files of a TPM "manufactured" by swtpm_setup with swtpm_localca: an RSA
// 2048 and an ECC P-384 EK (swtpm 0.7) with certificates in NV, a platform
// certificate, and the local CA (root + intermediate) that signed them, all
// under `dir`.
struct ManufacturedTpm {
  std::string state_dir;        // swtpm's state (dir/state)
  std::string root_ca_pem;      // the local CA's self-signed root
  std::string issuer_ca_pem;    // the intermediate that signs EK certificates
  std::string ek_rsa_cert_der;  // the RSA EK certificate swtpm_setup wrote
};

// Runs `swtpm_setup --tpm2 --create-ek-cert --create-platform-cert` with its
// own swtpm_setup.conf and swtpm-localca.conf in `dir`, so nothing is read
// from or written to /etc or /var/lib/swtpm-localca. A missing
// swtpm_setup/swtpm_localca (package swtpm-tools) is a failure.
::testing::AssertionResult ManufactureTpm(const std::string& dir, ManufacturedTpm* out);

// Makes a fresh directory under /tmp; removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Thread-safety: not thread-safe; one per test.
class SwtpmFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  const std::string& tcti() const { return swtpm_.tcti(); }

 private:
  std::string state_dir_;
  SwtpmProcess swtpm_;
};

}  // namespace vigil::testing

#endif  // VIGIL_TESTS_UNIT_SWTPM_FIXTURE_H_
