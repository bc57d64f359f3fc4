// vigil.h seen from C++ must match the expected ABI and the C11 view.
#include <gtest/gtest.h>

#include <cstddef>
#include <map>
#include <string>

#include "abi_layout_c.h"
#include "vigil.h"

namespace {

#define CXX_ENTRY(name, value) \
  { name, static_cast<unsigned long>(value) }

// The C++ view; also the expected values where a literal is given below.
const std::map<std::string, unsigned long>& CxxLayout() {
  static const std::map<std::string, unsigned long> layout = {
      CXX_ENTRY("sizeof(vigil_rec_hdr)", sizeof(vigil_rec_hdr)),
      CXX_ENTRY("sizeof(vigil_ev_exec)", sizeof(vigil_ev_exec)),
      CXX_ENTRY("sizeof(vigil_ev_exit)", sizeof(vigil_ev_exit)),
      CXX_ENTRY("sizeof(vigil_ev_user)", sizeof(vigil_ev_user)),
      CXX_ENTRY("sizeof(vigil_log_measure)", sizeof(vigil_log_measure)),
      CXX_ENTRY("sizeof(vigil_log_key)", sizeof(vigil_log_key)),
      CXX_ENTRY("sizeof(vigil_log_checkpoint)", sizeof(vigil_log_checkpoint)),
      CXX_ENTRY("sizeof(vigil_log_signature)", sizeof(vigil_log_signature)),
      CXX_ENTRY("sizeof(vigil_log_event)", sizeof(vigil_log_event)),
      CXX_ENTRY("sizeof(vigil_log_base)", sizeof(vigil_log_base)),
      CXX_ENTRY("sizeof(vigil_version)", sizeof(vigil_version)),
      CXX_ENTRY("sizeof(vigil_info)", sizeof(vigil_info)),
      CXX_ENTRY("sizeof(vigil_measure)", sizeof(vigil_measure)),
      CXX_ENTRY("sizeof(vigil_commit)", sizeof(vigil_commit)),
      CXX_ENTRY("sizeof(vigil_checkpoint_req)", sizeof(vigil_checkpoint_req)),
      CXX_ENTRY("sizeof(vigil_trim)", sizeof(vigil_trim)),
      CXX_ENTRY("sizeof(vigil_producers)", sizeof(vigil_producers)),
      CXX_ENTRY("sizeof(vigil_seal)", sizeof(vigil_seal)),
      CXX_ENTRY("sizeof(vigil_key_creation)", sizeof(vigil_key_creation)),
      CXX_ENTRY("sizeof(vigil_producer_add)", sizeof(vigil_producer_add)),
      CXX_ENTRY("vigil_producer_add.prog_fd", offsetof(vigil_producer_add, prog_fd)),
      CXX_ENTRY("vigil_producer_add.__reserved", offsetof(vigil_producer_add, __reserved)),
      CXX_ENTRY("vigil_info.kfunc_guard", offsetof(vigil_info, kfunc_guard)),
      CXX_ENTRY("vigil_info.__reserved", offsetof(vigil_info, __reserved)),
      CXX_ENTRY("VIGIL_IOC_PRODUCERS_ADD", VIGIL_IOC_PRODUCERS_ADD),
      CXX_ENTRY("vigil_key_creation.buf", offsetof(vigil_key_creation, buf)),
      CXX_ENTRY("vigil_key_creation.needed", offsetof(vigil_key_creation, needed)),
      CXX_ENTRY("vigil_key_creation.context_len", offsetof(vigil_key_creation, context_len)),
      CXX_ENTRY("vigil_key_creation.__reserved", offsetof(vigil_key_creation, __reserved)),
      CXX_ENTRY("vigil_log_checkpoint.rejected_total", offsetof(vigil_log_checkpoint, rejected_total)),
      CXX_ENTRY("vigil_log_checkpoint.alive", offsetof(vigil_log_checkpoint, alive)),
      CXX_ENTRY("vigil_log_checkpoint.cp_flags", offsetof(vigil_log_checkpoint, cp_flags)),
      CXX_ENTRY("vigil_info.heartbeat_ms", offsetof(vigil_info, heartbeat_ms)),
      CXX_ENTRY("vigil_seal.log_end", offsetof(vigil_seal, log_end)),
      CXX_ENTRY("vigil_rec_hdr.size", offsetof(vigil_rec_hdr, size)),
      CXX_ENTRY("vigil_rec_hdr.seq", offsetof(vigil_rec_hdr, seq)),
      CXX_ENTRY("vigil_rec_hdr.ts_ns", offsetof(vigil_rec_hdr, ts_ns)),
      CXX_ENTRY("vigil_rec_hdr.agent_id", offsetof(vigil_rec_hdr, agent_id)),
      CXX_ENTRY("vigil_rec_hdr.flags", offsetof(vigil_rec_hdr, flags)),
      CXX_ENTRY("vigil_ev_exec.pid", offsetof(vigil_ev_exec, pid)),
      CXX_ENTRY("vigil_ev_exec.comm", offsetof(vigil_ev_exec, comm)),
      CXX_ENTRY("vigil_ev_exec.filename", offsetof(vigil_ev_exec, filename)),
      CXX_ENTRY("vigil_ev_exit.exit_code", offsetof(vigil_ev_exit, exit_code)),
      CXX_ENTRY("vigil_ev_exit.lifetime_ns", offsetof(vigil_ev_exit, lifetime_ns)),
      CXX_ENTRY("vigil_ev_exit.write_bytes", offsetof(vigil_ev_exit, write_bytes)),
      CXX_ENTRY("vigil_ev_exit.comm", offsetof(vigil_ev_exit, comm)),
      CXX_ENTRY("vigil_ev_user.payload", offsetof(vigil_ev_user, payload)),
      CXX_ENTRY("vigil_log_measure.digest", offsetof(vigil_log_measure, digest)),
      CXX_ENTRY("vigil_log_key.name", offsetof(vigil_log_key, name)),
      CXX_ENTRY("vigil_log_checkpoint.chain_head", offsetof(vigil_log_checkpoint, chain_head)),
      CXX_ENTRY("vigil_log_checkpoint.instance_id", offsetof(vigil_log_checkpoint, instance_id)),
      CXX_ENTRY("vigil_log_signature.r", offsetof(vigil_log_signature, r)),
      CXX_ENTRY("vigil_log_event.ev", offsetof(vigil_log_event, ev)),
      CXX_ENTRY("vigil_log_base.nr_banks", offsetof(vigil_log_base, nr_banks)),
      CXX_ENTRY("vigil_log_base.bank", offsetof(vigil_log_base, bank)),
      CXX_ENTRY("vigil_info.bank_alg", offsetof(vigil_info, bank_alg)),
      CXX_ENTRY("vigil_info.pcr_config", offsetof(vigil_info, pcr_config)),
      CXX_ENTRY("vigil_info.instance_id", offsetof(vigil_info, instance_id)),
      CXX_ENTRY("vigil_info.next_seq", offsetof(vigil_info, next_seq)),
      CXX_ENTRY("vigil_info.log_max_bytes", offsetof(vigil_info, log_max_bytes)),
      CXX_ENTRY("vigil_version.module_version", offsetof(vigil_version, module_version)),
      CXX_ENTRY("vigil_commit.payload", offsetof(vigil_commit, payload)),
      CXX_ENTRY("vigil_checkpoint_req.cp", offsetof(vigil_checkpoint_req, cp)),
      CXX_ENTRY("vigil_checkpoint_req.sig", offsetof(vigil_checkpoint_req, sig)),
      CXX_ENTRY("VIGIL_IOC_GET_VERSION", VIGIL_IOC_GET_VERSION),
      CXX_ENTRY("VIGIL_IOC_GET_INFO", VIGIL_IOC_GET_INFO),
      CXX_ENTRY("VIGIL_IOC_COMMIT", VIGIL_IOC_COMMIT),
      CXX_ENTRY("VIGIL_IOC_KEY_CREATION", VIGIL_IOC_KEY_CREATION),
  };
  return layout;
}

TEST(AbiLayout, CAndCxxAgreeOnEveryEntry) {
  const auto& cxx = CxxLayout();
  ASSERT_EQ(kAbiLayoutCCount, cxx.size()) << "C and C++ tables list different entries";
  for (unsigned long i = 0; i < kAbiLayoutCCount; ++i) {
    const std::string name = kAbiLayoutC[i].name;
    auto it = cxx.find(name);
    ASSERT_NE(it, cxx.end()) << name << " missing from the C++ table";
    EXPECT_EQ(kAbiLayoutC[i].value, it->second) << name;
  }
}

TEST(AbiLayout, SizesAreTheAbi) {
  // Literal values: a change here is an ABI change (bump a version).
  const std::map<std::string, unsigned long> expected = {
      {"sizeof(vigil_rec_hdr)", 32},         {"sizeof(vigil_ev_exec)", 328},
      {"sizeof(vigil_ev_exit)", 160},        {"sizeof(vigil_ev_user)", 560},
      {"sizeof(vigil_log_measure)", 136},    {"sizeof(vigil_log_key)", 144},
      {"sizeof(vigil_log_checkpoint)", 408}, {"sizeof(vigil_log_signature)", 144},
      {"sizeof(vigil_log_event)", 592},      {"sizeof(vigil_log_base)", 1152},
      {"sizeof(vigil_version)", 64},         {"sizeof(vigil_info)", 352},
      {"sizeof(vigil_measure)", 128},        {"sizeof(vigil_commit)", 48},
      {"sizeof(vigil_checkpoint_req)", 576}, {"sizeof(vigil_trim)", 40},
      {"sizeof(vigil_producers)", 72},       {"sizeof(vigil_seal)", 584},
      {"sizeof(vigil_key_creation)", 64},
  };
  const auto& cxx = CxxLayout();
  for (const auto& [name, size] : expected) {
    EXPECT_EQ(cxx.at(name), size) << name;
    EXPECT_EQ(size % 8, 0u) << name << " is not a multiple of 8";
  }
}

TEST(AbiLayout, KeyOffsets) {
  EXPECT_EQ(offsetof(vigil_rec_hdr, type), 0u);
  EXPECT_EQ(offsetof(vigil_rec_hdr, version), 2u);
  EXPECT_EQ(offsetof(vigil_rec_hdr, size), 4u);
  EXPECT_EQ(offsetof(vigil_rec_hdr, seq), 8u);
  EXPECT_EQ(offsetof(vigil_rec_hdr, ts_ns), 16u);
  EXPECT_EQ(offsetof(vigil_rec_hdr, agent_id), 24u);
  EXPECT_EQ(offsetof(vigil_rec_hdr, flags), 28u);
  EXPECT_EQ(offsetof(vigil_ev_exec, pid), 32u);
  EXPECT_EQ(offsetof(vigil_ev_exec, comm), 56u);
  EXPECT_EQ(offsetof(vigil_ev_exec, filename), 72u);
  EXPECT_EQ(offsetof(vigil_ev_exit, exit_code), 48u);
  EXPECT_EQ(offsetof(vigil_ev_exit, lifetime_ns), 64u);
  EXPECT_EQ(offsetof(vigil_ev_exit, comm), 144u);
  EXPECT_EQ(offsetof(vigil_log_base, bank), 64u);
  EXPECT_EQ(offsetof(vigil_log_checkpoint, chain_head), 80u);
  // ABI 2: the liveness fields follow the version 1 body.
  EXPECT_EQ(offsetof(vigil_log_checkpoint, rejected_total), 160u);
  EXPECT_EQ(offsetof(vigil_log_checkpoint, cp_flags), 404u);
  EXPECT_EQ(offsetof(vigil_version, size), 0u);
  EXPECT_EQ(offsetof(vigil_info, size), 0u);
  EXPECT_EQ(offsetof(vigil_info, flags), 4u);
  // ABI 2.1: KEY_CREATION.
  EXPECT_EQ(offsetof(vigil_key_creation, buf), 8u);
  EXPECT_EQ(offsetof(vigil_key_creation, buf_len), 16u);
  EXPECT_EQ(offsetof(vigil_key_creation, needed), 20u);
  EXPECT_EQ(offsetof(vigil_key_creation, public_len), 24u);
  EXPECT_EQ(offsetof(vigil_key_creation, context_len), 40u);
  EXPECT_EQ(offsetof(vigil_key_creation, __reserved), 44u);
  // ABI 2.2: kfunc_guard in GET_INFO's old reserved words (size unchanged),
  // PRODUCERS_ADD.
  EXPECT_EQ(offsetof(vigil_info, seal_log_end), 328u);
  EXPECT_EQ(offsetof(vigil_info, kfunc_guard), 336u);
  EXPECT_EQ(offsetof(vigil_info, __reserved), 344u);
  EXPECT_EQ(sizeof(vigil_producer_add), 32u);
  EXPECT_EQ(offsetof(vigil_producer_add, prog_fd), 8u);
  EXPECT_EQ(offsetof(vigil_producer_add, __reserved), 16u);
  // Every record begins with the common header.
  EXPECT_EQ(offsetof(vigil_ev_exec, hdr), 0u);
  EXPECT_EQ(offsetof(vigil_log_event, ev), sizeof(vigil_rec_hdr));
}

TEST(AbiLayout, IoctlNumbersEncodeDirectionAndSize) {
  EXPECT_EQ(_IOC_TYPE(VIGIL_IOC_GET_VERSION), static_cast<unsigned>(VIGIL_IOC_MAGIC));
  EXPECT_EQ(_IOC_DIR(VIGIL_IOC_GET_VERSION), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
  EXPECT_EQ(_IOC_SIZE(VIGIL_IOC_GET_VERSION), sizeof(vigil_version));
  EXPECT_EQ(_IOC_SIZE(VIGIL_IOC_GET_INFO), sizeof(vigil_info));
  EXPECT_EQ(_IOC_NR(VIGIL_IOC_GET_INFO), 1u);
  EXPECT_EQ(_IOC_SIZE(VIGIL_IOC_SEAL), sizeof(vigil_seal));
  EXPECT_EQ(_IOC_DIR(VIGIL_IOC_PRODUCERS_OPEN), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
  // The first published sizes are the sizes of this ABI.
  EXPECT_EQ(VIGIL_SIZE_VER0_INFO, sizeof(vigil_info));
  EXPECT_EQ(VIGIL_SIZE_VER0_SEAL, sizeof(vigil_seal));
  EXPECT_EQ(VIGIL_SIZE_VER0_CHECKPOINT, sizeof(vigil_checkpoint_req));
  EXPECT_EQ(VIGIL_SIZE_VER0_PRODUCERS, sizeof(vigil_producers));
  EXPECT_EQ(VIGIL_SIZE_VER0_KEY_CREATION, sizeof(vigil_key_creation));
  EXPECT_EQ(_IOC_NR(VIGIL_IOC_KEY_CREATION), 9u);
  EXPECT_EQ(_IOC_SIZE(VIGIL_IOC_KEY_CREATION), sizeof(vigil_key_creation));
  EXPECT_EQ(_IOC_DIR(VIGIL_IOC_KEY_CREATION), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
  EXPECT_EQ(VIGIL_SIZE_VER0_PRODUCER_ADD, sizeof(vigil_producer_add));
  EXPECT_EQ(_IOC_NR(VIGIL_IOC_PRODUCERS_ADD), 10u);
  EXPECT_EQ(_IOC_SIZE(VIGIL_IOC_PRODUCERS_ADD), sizeof(vigil_producer_add));
  EXPECT_EQ(_IOC_DIR(VIGIL_IOC_PRODUCERS_ADD), static_cast<unsigned>(_IOC_READ | _IOC_WRITE));
}

}  // namespace
