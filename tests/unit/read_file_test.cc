// vigil::ReadFileUpTo: what every parser of a file given on the command line
// reads through.
#include "vigil/read_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace vigil {
namespace {

class ReadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-read-file-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string dir_;
};

TEST_F(ReadFileTest, ReadsAWholeFileUpToTheBound) {
  const std::string bytes(200000, 'x');  // more than one read() buffer
  auto text = ReadFileUpTo(Write("f", bytes), bytes.size());
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, bytes);
}

TEST_F(ReadFileTest, RefusesOneByteOverTheBound) {
  auto text = ReadFileUpTo(Write("f", std::string(100, 'x')), 99);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(text.status().message().find("larger than 99 bytes"), std::string::npos);
}

TEST_F(ReadFileTest, AMissingFileIsNotFound) {
  auto text = ReadFileUpTo(dir_ + "/none", 10);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), ErrorCode::kNotFound);
}

// A FIFO with no writer would block open() and read() forever.
TEST_F(ReadFileTest, AFifoIsRefusedWithoutWaiting) {
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto text = ReadFileUpTo(fifo, 10);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.status().message().find("not a regular file"), std::string::npos);
  EXPECT_FALSE(ReadFileUpTo(dir_, 10).ok());  // a directory
}

// procfs and securityfs files say size 0: they are read to their end.
TEST_F(ReadFileTest, ReadsFilesWhoseSizeIsNotKnown) {
  auto text = ReadFileUpTo("/proc/self/status", 1 << 20);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find("Pid:"), std::string::npos);
}

}  // namespace
}  // namespace vigil
