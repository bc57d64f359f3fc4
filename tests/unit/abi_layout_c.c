/*
 * abi_layout_c.c - vigil.h as a C11 compiler sees it. Exports sizes and
 * offsets for abi_layout_test.cc to compare with the C++ view; the static
 * asserts inside vigil.h already run here, in C.
 */
#include <stddef.h>

#include "vigil.h"
#include "abi_layout_c.h"

#define ENTRY(name, value) {name, (unsigned long)(value)}

const struct abi_layout_entry kAbiLayoutC[] = {
	ENTRY("sizeof(vigil_rec_hdr)", sizeof(struct vigil_rec_hdr)),
	ENTRY("sizeof(vigil_ev_exec)", sizeof(struct vigil_ev_exec)),
	ENTRY("sizeof(vigil_ev_exit)", sizeof(struct vigil_ev_exit)),
	ENTRY("sizeof(vigil_ev_user)", sizeof(struct vigil_ev_user)),
	ENTRY("sizeof(vigil_log_measure)", sizeof(struct vigil_log_measure)),
	ENTRY("sizeof(vigil_log_key)", sizeof(struct vigil_log_key)),
	ENTRY("sizeof(vigil_log_checkpoint)", sizeof(struct vigil_log_checkpoint)),
	ENTRY("sizeof(vigil_log_signature)", sizeof(struct vigil_log_signature)),
	ENTRY("sizeof(vigil_log_event)", sizeof(struct vigil_log_event)),
	ENTRY("sizeof(vigil_log_base)", sizeof(struct vigil_log_base)),
	ENTRY("sizeof(vigil_version)", sizeof(struct vigil_version)),
	ENTRY("sizeof(vigil_info)", sizeof(struct vigil_info)),
	ENTRY("sizeof(vigil_measure)", sizeof(struct vigil_measure)),
	ENTRY("sizeof(vigil_commit)", sizeof(struct vigil_commit)),
	ENTRY("sizeof(vigil_checkpoint_req)", sizeof(struct vigil_checkpoint_req)),
	ENTRY("sizeof(vigil_trim)", sizeof(struct vigil_trim)),
	ENTRY("sizeof(vigil_producers)", sizeof(struct vigil_producers)),
	ENTRY("sizeof(vigil_seal)", sizeof(struct vigil_seal)),
	ENTRY("sizeof(vigil_key_creation)", sizeof(struct vigil_key_creation)),
	ENTRY("sizeof(vigil_producer_add)", sizeof(struct vigil_producer_add)),
	ENTRY("vigil_producer_add.prog_fd", offsetof(struct vigil_producer_add, prog_fd)),
	ENTRY("vigil_producer_add.__reserved", offsetof(struct vigil_producer_add, __reserved)),
	ENTRY("vigil_info.kfunc_guard", offsetof(struct vigil_info, kfunc_guard)),
	ENTRY("vigil_info.__reserved", offsetof(struct vigil_info, __reserved)),
	ENTRY("VIGIL_IOC_PRODUCERS_ADD", VIGIL_IOC_PRODUCERS_ADD),
	ENTRY("vigil_key_creation.buf", offsetof(struct vigil_key_creation, buf)),
	ENTRY("vigil_key_creation.needed", offsetof(struct vigil_key_creation, needed)),
	ENTRY("vigil_key_creation.context_len", offsetof(struct vigil_key_creation, context_len)),
	ENTRY("vigil_key_creation.__reserved", offsetof(struct vigil_key_creation, __reserved)),
	ENTRY("vigil_log_checkpoint.rejected_total", offsetof(struct vigil_log_checkpoint, rejected_total)),
	ENTRY("vigil_log_checkpoint.alive", offsetof(struct vigil_log_checkpoint, alive)),
	ENTRY("vigil_log_checkpoint.cp_flags", offsetof(struct vigil_log_checkpoint, cp_flags)),
	ENTRY("vigil_info.heartbeat_ms", offsetof(struct vigil_info, heartbeat_ms)),
	ENTRY("vigil_seal.log_end", offsetof(struct vigil_seal, log_end)),
	ENTRY("vigil_rec_hdr.size", offsetof(struct vigil_rec_hdr, size)),
	ENTRY("vigil_rec_hdr.seq", offsetof(struct vigil_rec_hdr, seq)),
	ENTRY("vigil_rec_hdr.ts_ns", offsetof(struct vigil_rec_hdr, ts_ns)),
	ENTRY("vigil_rec_hdr.agent_id", offsetof(struct vigil_rec_hdr, agent_id)),
	ENTRY("vigil_rec_hdr.flags", offsetof(struct vigil_rec_hdr, flags)),
	ENTRY("vigil_ev_exec.pid", offsetof(struct vigil_ev_exec, pid)),
	ENTRY("vigil_ev_exec.comm", offsetof(struct vigil_ev_exec, comm)),
	ENTRY("vigil_ev_exec.filename", offsetof(struct vigil_ev_exec, filename)),
	ENTRY("vigil_ev_exit.exit_code", offsetof(struct vigil_ev_exit, exit_code)),
	ENTRY("vigil_ev_exit.lifetime_ns", offsetof(struct vigil_ev_exit, lifetime_ns)),
	ENTRY("vigil_ev_exit.write_bytes", offsetof(struct vigil_ev_exit, write_bytes)),
	ENTRY("vigil_ev_exit.comm", offsetof(struct vigil_ev_exit, comm)),
	ENTRY("vigil_ev_user.payload", offsetof(struct vigil_ev_user, payload)),
	ENTRY("vigil_log_measure.digest", offsetof(struct vigil_log_measure, digest)),
	ENTRY("vigil_log_key.name", offsetof(struct vigil_log_key, name)),
	ENTRY("vigil_log_checkpoint.chain_head", offsetof(struct vigil_log_checkpoint, chain_head)),
	ENTRY("vigil_log_checkpoint.instance_id", offsetof(struct vigil_log_checkpoint, instance_id)),
	ENTRY("vigil_log_signature.r", offsetof(struct vigil_log_signature, r)),
	ENTRY("vigil_log_event.ev", offsetof(struct vigil_log_event, ev)),
	ENTRY("vigil_log_base.nr_banks", offsetof(struct vigil_log_base, nr_banks)),
	ENTRY("vigil_log_base.bank", offsetof(struct vigil_log_base, bank)),
	ENTRY("vigil_info.bank_alg", offsetof(struct vigil_info, bank_alg)),
	ENTRY("vigil_info.pcr_config", offsetof(struct vigil_info, pcr_config)),
	ENTRY("vigil_info.instance_id", offsetof(struct vigil_info, instance_id)),
	ENTRY("vigil_info.next_seq", offsetof(struct vigil_info, next_seq)),
	ENTRY("vigil_info.log_max_bytes", offsetof(struct vigil_info, log_max_bytes)),
	ENTRY("vigil_version.module_version", offsetof(struct vigil_version, module_version)),
	ENTRY("vigil_commit.payload", offsetof(struct vigil_commit, payload)),
	ENTRY("vigil_checkpoint_req.cp", offsetof(struct vigil_checkpoint_req, cp)),
	ENTRY("vigil_checkpoint_req.sig", offsetof(struct vigil_checkpoint_req, sig)),
	ENTRY("VIGIL_IOC_GET_VERSION", VIGIL_IOC_GET_VERSION),
	ENTRY("VIGIL_IOC_GET_INFO", VIGIL_IOC_GET_INFO),
	ENTRY("VIGIL_IOC_COMMIT", VIGIL_IOC_COMMIT),
	ENTRY("VIGIL_IOC_KEY_CREATION", VIGIL_IOC_KEY_CREATION),
};

const unsigned long kAbiLayoutCCount = sizeof(kAbiLayoutC) / sizeof(kAbiLayoutC[0]);
