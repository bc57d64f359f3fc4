// SPDX-License-Identifier: GPL-2.0
/*
 * main.c - vigil.ko init, exit and parameters.
 *
 * vigil commits behavioral events into a SHA-256 hash chain in the kernel
 * (kfunc for BPF tracing programs, COMMIT ioctl), keeps an append-only
 * measurement log, and anchors it in a TPM 2.0: its identity and key in
 * pcr_config at load, TPM-signed checkpoints of the chain in pcr_events
 * (or IMA) every checkpoint_ms or checkpoint_events.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/string.h>

#include "internal.h"

struct vigil vigil;

static uint pcr_config = 16;
module_param(pcr_config, uint, 0444);
MODULE_PARM_DESC(pcr_config, "PCR for the module's identity, key and MEASURE records (default 16)");

static uint pcr_events = 23;
module_param(pcr_events, uint, 0444);
MODULE_PARM_DESC(pcr_events, "PCR for checkpoints with anchor=pcr (default 23)");

static bool allow_claimed_pcrs;
module_param(allow_claimed_pcrs, bool, 0444);
MODULE_PARM_DESC(allow_claimed_pcrs, "allow PCRs 0-15, which firmware and Linux components use (default N)");

static bool tpm_required;
module_param(tpm_required, bool, 0444);
MODULE_PARM_DESC(tpm_required, "refuse to load without a TPM 2.0 (default N)");

static uint checkpoint_ms = 1000;
module_param(checkpoint_ms, uint, 0444);
MODULE_PARM_DESC(checkpoint_ms, "checkpoint period in ms, 0 = none, 10..3600000 (default 1000)");

static uint checkpoint_events = 4096;
module_param(checkpoint_events, uint, 0444);
MODULE_PARM_DESC(checkpoint_events, "events per checkpoint, 0 = no count trigger, up to 16777216 (default 4096)");

static char *anchor = "pcr";
module_param(anchor, charp, 0444);
MODULE_PARM_DESC(anchor, "where checkpoints are anchored: pcr (pcr_events) or ima (IMA critical data) (default pcr)");

static uint heartbeat_ms = 10000;
module_param(heartbeat_ms, uint, 0444);
MODULE_PARM_DESC(heartbeat_ms, "longest time between two signed checkpoints, idle or not, 100..3600000 (default 10000)");

static unsigned long long log_max_bytes = 16ULL << 20;
module_param(log_max_bytes, ullong, 0444);
MODULE_PARM_DESC(log_max_bytes, "cap on log record bytes held, 65536..1073741824 (default 16 MiB)");

#define VIGIL_CP_MS_MIN		10
#define VIGIL_CP_MS_MAX		3600000
#define VIGIL_CP_EVENTS_MAX	BIT(24)
#define VIGIL_HB_MS_MIN		100
#define VIGIL_LOG_MIN		(64ULL << 10)
#define VIGIL_LOG_MAX		BIT_ULL(30)

/*
 * Locality 0 (the only one the kernel uses) can extend PCRs 0-16 and 23.
 * 0-15 belong to firmware and to other Linux components; extending them
 * breaks their verifiers, hence allow_claimed_pcrs.
 */
static int vigil_check_pcr(const char *param, uint pcr)
{
	if (pcr == 16 || pcr == 23)
		return 0;
	if (pcr > 23) {
		pr_err("%s=%u: no such PCR (0-23)\n", param, pcr);
		return -EINVAL;
	}
	if (pcr > 16) {
		pr_err("%s=%u: PCRs 17-22 cannot be extended from locality 0; use 16 or 23\n",
		       param, pcr);
		return -EINVAL;
	}
	if (!allow_claimed_pcrs) {
		pr_err("%s=%u: PCRs 0-15 are used by firmware and Linux; use 16 or 23, or set allow_claimed_pcrs=1\n",
		       param, pcr);
		return -EINVAL;
	}
	return 0;
}

static int vigil_params_init(void)
{
	struct vigil_params *p = &vigil.p;
	int ret;

	ret = vigil_check_pcr("pcr_config", pcr_config);
	if (!ret)
		ret = vigil_check_pcr("pcr_events", pcr_events);
	if (ret)
		return ret;
	if (pcr_config == pcr_events) {
		pr_err("pcr_config and pcr_events must differ (both %u)\n",
		       pcr_config);
		return -EINVAL;
	}
	if (checkpoint_ms &&
	    (checkpoint_ms < VIGIL_CP_MS_MIN || checkpoint_ms > VIGIL_CP_MS_MAX)) {
		pr_err("checkpoint_ms=%u: use 0 or %u..%u\n", checkpoint_ms,
		       VIGIL_CP_MS_MIN, VIGIL_CP_MS_MAX);
		return -EINVAL;
	}
	if (checkpoint_events > VIGIL_CP_EVENTS_MAX) {
		pr_err("checkpoint_events=%u: at most %lu\n", checkpoint_events,
		       VIGIL_CP_EVENTS_MAX);
		return -EINVAL;
	}
	if (heartbeat_ms < VIGIL_HB_MS_MIN || heartbeat_ms > VIGIL_CP_MS_MAX) {
		pr_err("heartbeat_ms=%u: use %u..%u\n", heartbeat_ms,
		       VIGIL_HB_MS_MIN, VIGIL_CP_MS_MAX);
		return -EINVAL;
	}
	if (!checkpoint_ms && !checkpoint_events)
		pr_warn("checkpoint_ms=0 and checkpoint_events=0: heartbeat checkpoints only\n");
	if (log_max_bytes < VIGIL_LOG_MIN || log_max_bytes > VIGIL_LOG_MAX) {
		pr_err("log_max_bytes=%llu: use %llu..%llu\n", log_max_bytes,
		       VIGIL_LOG_MIN, VIGIL_LOG_MAX);
		return -EINVAL;
	}
	if (!anchor || !strcmp(anchor, "pcr")) {
		p->anchor = VIGIL_ANCHOR_PCR;
	} else if (!strcmp(anchor, "ima")) {
		p->anchor = VIGIL_ANCHOR_IMA;
	} else {
		pr_err("anchor=%s: use pcr or ima\n", anchor);
		return -EINVAL;
	}
	p->pcr_config = pcr_config;
	p->pcr_events = pcr_events;
	p->checkpoint_ms = checkpoint_ms;
	p->checkpoint_events = checkpoint_events;
	p->heartbeat_ms = heartbeat_ms;
	p->tpm_required = tpm_required;
	p->log_max_bytes = log_max_bytes;
	return 0;
}

static int __init vigil_init(void)
{
	int ret;

	ret = vigil_params_init();
	if (ret)
		return ret;
	ret = vigil_tpm_init();
	if (ret)
		return ret;
	vigil_chain_init();
	ret = vigil_watch_init();
	if (ret)
		goto out_tpm_exit;
	ret = vigil_log_init();
	if (ret)
		goto out_watch_exit;
	ret = vigil_anchor_init();
	if (ret)
		goto out_log_exit;
	ret = vigil_kfunc_init();
	if (ret)
		goto out_anchor_exit;
	ret = vigil_securityfs_init();
	if (ret) {
		pr_err("creating securityfs files failed: %d\n", ret);
		goto out_kfunc_exit;
	}
	/* Last: once /dev/vigil exists, user space may hold it open. */
	ret = vigil_chardev_init();
	if (ret) {
		pr_err("registering /dev/%s failed: %d\n", VIGIL_DEVICE_NAME, ret);
		goto out_securityfs_exit;
	}
	/*
	 * Held until SEAL and a reader drained the log (chardev.c): rmmod
	 * fails with EAGAIN before, so the final checkpoint and every record
	 * are read while /dev/vigil still exists.
	 */
	__module_get(THIS_MODULE);
	pr_info("loaded: %s, pcr_config=%u pcr_events=%u anchor=%s\n",
		vigil_tpm_present() ? "TPM 2.0" : "no TPM (degraded)",
		vigil.p.pcr_config, vigil.p.pcr_events,
		vigil.p.anchor == VIGIL_ANCHOR_IMA ? "ima" : "pcr");
	return 0;

out_securityfs_exit:
	vigil_securityfs_exit();
out_kfunc_exit:
	vigil_kfunc_exit();
out_anchor_exit:
	vigil_anchor_exit();
out_log_exit:
	vigil_log_exit();
out_watch_exit:
	vigil_watch_exit();
out_tpm_exit:
	vigil_tpm_exit();
	return ret;
}

/*
 * A forced unload (rmmod -f; Debian has CONFIG_MODULE_FORCE_UNLOAD=y) runs
 * the exit with references held: by the module itself (not sealed and
 * drained), by open files, or by BPF programs whose JITed code calls the
 * kfuncs. Freeing anything then would lose the unread tail and let those
 * programs call freed code. The module stays instead: the exit never
 * returns (TASK_IDLE, so no hung-task report), rmmod blocks forever.
 */
static void vigil_refuse_forced_unload(void)
{
	/* -1 in a normal unload (the base reference is gone); > 0 forced */
	if (module_refcount(THIS_MODULE) <= 0)
		return;
	pr_emerg("forced unload while in use (not sealed and drained, or files or BPF programs hold it): the module stays\n");
	for (;;) {
		set_current_state(TASK_IDLE);
		schedule();
	}
}

/* Reached after SEAL and a drain, with nothing holding the module. */
static void __exit vigil_exit(void)
{
	vigil_refuse_forced_unload();
	vigil_chardev_exit();
	vigil_securityfs_exit();
	vigil_anchor_exit();
	vigil_kfunc_exit();
	vigil_watch_exit();
	vigil_log_exit();
	vigil_tpm_exit();
	pr_info("unloaded\n");
}

module_init(vigil_init);
module_exit(vigil_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("vigil authors");
MODULE_DESCRIPTION("vigil: TPM-anchored hash chain of behavioral events");
MODULE_VERSION(VIGIL_VERSION);
