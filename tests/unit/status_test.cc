// Status and Result<T>: value() on an error stops the program with the
// status message in every build type (abseil StatusOr's rule).
#include "vigil/status.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace vigil {
namespace {

TEST(Result, ValueOfAnOkResult) {
  Result<std::string> r(std::string("abc"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "abc");
  EXPECT_EQ(r->size(), 3u);
  EXPECT_EQ(std::move(r).value(), "abc");
}

TEST(Result, OkStatusBecomesAnInternalError) {
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
}

// The tests run in RelWithDebInfo (NDEBUG): an assert would be compiled out
// and value() would read an empty optional instead of dying.
TEST(ResultDeathTest, ValueOnAnErrorAbortsWithTheStatusMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Result<int> r(Status::Error(ErrorCode::kMismatch, "chain head differs"));
  EXPECT_DEATH((void)r.value(), "Result::value\\(\\) called on an error: .*chain head differs");
  const Result<std::string> c(Status::Error(ErrorCode::kNotFound, "no such key"));
  EXPECT_DEATH((void)c.value(), "no such key");
  EXPECT_DEATH((void)c->size(), "no such key");
  EXPECT_DEATH((void)*c, "no such key");
  EXPECT_DEATH((void)std::move(r).value(), "chain head differs");
}

}  // namespace
}  // namespace vigil
