// Starts a private swtpm (TCP, fresh state) for a test and stops it after.
// A missing swtpm binary is a test failure, never a skip.
#ifndef VIGIL_TESTS_UNIT_SWTPM_FIXTURE_H_
#define VIGIL_TESTS_UNIT_SWTPM_FIXTURE_H_

#include <gtest/gtest.h>

#include <string>

namespace vigil::testing {

// Thread-safety: not thread-safe; one per test.
class SwtpmFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  const std::string& tcti() const { return tcti_; }

 private:
  std::string state_dir_;
  std::string tcti_;
  int pid_ = -1;
};

}  // namespace vigil::testing

#endif  // VIGIL_TESTS_UNIT_SWTPM_FIXTURE_H_
