// Module kfunc detection from split BTF, without a module: the test writes
// the kind of BTF a module carries (split over the kernel's vmlinux BTF).
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "vigil/collector.h"

namespace vigil {
namespace {

struct BtfFree {
  void operator()(btf* b) const { btf__free(b); }
};
using BtfPtr = std::unique_ptr<btf, BtfFree>;

class ModuleDetectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(bpf::kVmlinuxBtfPath, R_OK), 0) << "needs kernel BTF";
    char tmpl[] = "/tmp/vigil-btf-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::remove(path_.c_str()); }

  // Writes split BTF holding `int <name>(void *rec, u32 rec__sz)` per name.
  void WriteModuleBtf(std::initializer_list<const char*> funcs) {
    BtfPtr base(btf__load_vmlinux_btf());
    ASSERT_TRUE(base);
    BtfPtr split(btf__new_empty_split(base.get()));
    ASSERT_TRUE(split);
    const int int_id = btf__add_int(split.get(), "int", 4, BTF_INT_SIGNED);
    ASSERT_GT(int_id, 0);
    const int ptr_id = btf__add_ptr(split.get(), 0);
    ASSERT_GT(ptr_id, 0);
    for (const char* name : funcs) {
      const int proto = btf__add_func_proto(split.get(), int_id);
      ASSERT_GT(proto, 0);
      ASSERT_EQ(btf__add_func_param(split.get(), "rec", ptr_id), 0);
      ASSERT_GT(btf__add_func(split.get(), name, BTF_FUNC_GLOBAL, proto), 0);
    }
    uint32_t size = 0;
    const void* raw = btf__raw_data(split.get(), &size);
    ASSERT_NE(raw, nullptr);
    std::ofstream(path_, std::ios::binary).write(static_cast<const char*>(raw), size);
  }

  std::string path_;
};

TEST_F(ModuleDetectTest, MissingFileMeansNoModule) {
  auto found = bpf::DetectModuleKfuncs("/nonexistent/btf/vigil");
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_FALSE(found->commit);
  EXPECT_FALSE(found->drop);
}

TEST_F(ModuleDetectTest, FindsBothKfuncs) {
  WriteModuleBtf({"vigil_commit", "vigil_drop"});
  auto found = bpf::DetectModuleKfuncs(path_);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->commit);
  EXPECT_TRUE(found->drop);
}

TEST_F(ModuleDetectTest, CommitWithoutDrop) {
  WriteModuleBtf({"vigil_commit", "something_else"});
  auto found = bpf::DetectModuleKfuncs(path_);
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->commit);
  EXPECT_FALSE(found->drop);
}

TEST_F(ModuleDetectTest, ModuleWithoutKfuncs) {
  WriteModuleBtf({"unrelated"});
  auto found = bpf::DetectModuleKfuncs(path_);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->commit);
}

TEST_F(ModuleDetectTest, GarbageIsAnError) {
  std::ofstream(path_, std::ios::binary) << "not BTF at all";
  auto found = bpf::DetectModuleKfuncs(path_);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().origin(), ErrorOrigin::kLibbpf);
}

}  // namespace
}  // namespace vigil
