// Root BPF test on the host kernel: what root can do to vigil's loaded
// programs without touching a record, and Collector::Audit() seeing each:
// a foreign program writing into vigil's ring buffer, a second link on a
// vigil program, vigil_active_gen flipped, a pinned link removed. Fails
// (does not skip) when not run as root.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "forge_host.skel.h"
#include "vigil/collector.h"

namespace {

using vigil::bpf::AuditFinding;
using vigil::bpf::Collector;
using vigil::bpf::CollectorOptions;

// This collector's objects, through its own pins: another vigil on the
// host (a test running beside this one) has maps and programs of the same
// names.
int PinnedMap(const std::string& pins, const std::string& name) {
  return bpf_obj_get((pins + "/maps/" + name).c_str());
}

// The program behind the pinned link links/<name>-<generation>, -1 when absent.
int PinnedProg(const std::string& pins, const std::string& name) {
  for (const auto& e : std::filesystem::directory_iterator(pins + "/links")) {
    if (e.path().filename().string().rfind(name + "-", 0) != 0) continue;
    const int link = bpf_obj_get(e.path().c_str());
    if (link < 0) return -1;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    const int err = bpf_obj_get_info_by_fd(link, &info, &len);
    close(link);
    return err == 0 ? bpf_prog_get_fd_by_id(info.prog_id) : -1;
  }
  return -1;
}

int Count(const std::vector<AuditFinding>& f, AuditFinding::Kind k) {
  int n = 0;
  for (const auto& x : f) n += x.kind == k;
  return n;
}

TEST(AuditTest, RootTamperingWithTheProgramsIsSeen) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root (BPF)";
  const std::string pins = "/sys/fs/bpf/vigil-audit-test";
  std::filesystem::remove_all(pins);
  CollectorOptions o;
  o.allow_module = false;
  o.pin_dir = pins;
  o.hw = CollectorOptions::Hw::kOff;
  auto c = Collector::Start(o, [](const vigil::Result<vigil::records::Record>&) {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE((*c)->Audit().empty()) << vigil::bpf::AuditKindName((*c)->Audit()[0].kind);

  // 1. A foreign program that writes into vigil's ring buffer.
  const int ring = PinnedMap(pins, "vigil_events");
  ASSERT_GE(ring, 0);
  forge_host* forge = forge_host__open();
  ASSERT_NE(forge, nullptr);
  ASSERT_EQ(bpf_map__reuse_fd(forge->maps.target, ring), 0);
  ASSERT_EQ(forge_host__load(forge), 0);
  auto f = (*c)->Audit();
  EXPECT_EQ(Count(f, AuditFinding::Kind::kForeignProgram), 1);
  forge_host__destroy(forge);
  close(ring);

  // 2. vigil's exec program attached a second time.
  const int exec = PinnedProg(pins, "vigil_exec");
  ASSERT_GE(exec, 0);
  const int link = bpf_raw_tracepoint_open(nullptr, exec);
  ASSERT_GE(link, 0) << std::strerror(errno);
  f = (*c)->Audit();
  EXPECT_EQ(Count(f, AuditFinding::Kind::kExtraLink), 1);
  close(link);
  close(exec);

  // 3. vigil_active_gen flipped in the pinned .bss.
  const int bss = PinnedMap(pins, "bss");
  ASSERT_GE(bss, 0);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(bss, &info, &len), 0);
  std::vector<uint8_t> value(info.value_size);
  const uint32_t key = 0;
  ASSERT_EQ(bpf_map_lookup_elem(bss, &key, value.data()), 0);
  std::vector<uint8_t> off = value;
  const uint64_t bogus = 0x7fffffff;
  std::memcpy(off.data(), &bogus, sizeof(bogus));  // vigil_active_gen is its first field
  ASSERT_EQ(bpf_map_update_elem(bss, &key, off.data(), BPF_ANY), 0);
  f = (*c)->Audit();
  EXPECT_EQ(Count(f, AuditFinding::Kind::kGeneration), 1);
  ASSERT_EQ(bpf_map_update_elem(bss, &key, value.data(), BPF_ANY), 0);
  close(bss);

  // 4. A pinned link removed.
  std::string removed;
  for (const auto& e : std::filesystem::directory_iterator(pins + "/links")) {
    removed = e.path();
    break;
  }
  ASSERT_FALSE(removed.empty());
  ASSERT_EQ(::unlink(removed.c_str()), 0);
  f = (*c)->Audit();
  EXPECT_EQ(Count(f, AuditFinding::Kind::kLinkPin), 1);
  c->reset();
  std::filesystem::remove_all(pins);
}

}  // namespace
