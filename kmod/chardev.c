// SPDX-License-Identifier: GPL-2.0
/*
 * chardev.c - /dev/vigil: read()/poll() stream log records, ioctls.
 *
 * The file position is a log seq: the seq of the next record a read()
 * returns (0 = the oldest record held). lseek(SEEK_SET, n) resumes at
 * log seq n, SEEK_END skips to the records written from now on. Every
 * ioctl argument starts with size and flags; sizes follow the
 * copy_struct_from_user() rules (see vigil_arg_in()), flags and reserved
 * fields must be zero, and nothing changes when a check fails.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/ctype.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/overflow.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "internal.h"

/**
 * struct vigil_reader - one open /dev/vigil
 * @lock: serialises read() and lseek() of this file, so two threads that
 *        share it never get the same records; taken interruptibly, so a
 *        second reader waiting behind a blocked one can be killed
 * @pos:  the cursor: log seq of the next record read() returns
 * @run_start: where the reads since the last lseek (or the open) began:
 *        only a run from the oldest record counts as a drain
 */
struct vigil_reader {
	struct mutex lock;	/* the cursor: read() and lseek() */
	loff_t pos;
	loff_t run_start;
};

static int vigil_open(struct inode *inode, struct file *file)
{
	struct vigil_reader *r;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	mutex_init(&r->lock);
	file->private_data = r;
	return 0;
}

static int vigil_release(struct inode *inode, struct file *file)
{
	vigil_producers_abandon(file);
	kfree(file->private_data);
	return 0;
}

/*
 * After SEAL, the first read that completes a run of reads from the oldest
 * record held (no lseek past anything) to the end of the final records
 * drops the reference the module holds on itself: from then on rmmod
 * works. Before, it fails with EAGAIN. Seeking to the end and reading the
 * last record does not count: every record must have been read.
 */
static void vigil_note_drain(const struct vigil_reader *r)
{
	u64 end;

	if (!READ_ONCE(vigil.sealed))
		return;
	/* pairs with vigil_seal(): seal_log_first is set before the end */
	end = smp_load_acquire(&vigil.seal_log_end);
	if (end && r->run_start <= vigil.seal_log_first && r->pos >= end &&
	    !atomic_cmpxchg(&vigil.drained, 0, 1)) {
		pr_info("log drained after the seal: unload allowed\n");
		module_put(THIS_MODULE);
	}
}

/* The position lives in the reader, under its lock; *pos is not used. */
static ssize_t vigil_read(struct file *file, char __user *buf, size_t count,
			  loff_t *pos)
{
	struct vigil_reader *r = file->private_data;
	ssize_t ret;

	if (mutex_lock_interruptible(&r->lock))
		return -ERESTARTSYS;
	ret = vigil_log_read(buf, count, &r->pos, file->f_flags & O_NONBLOCK);
	if (ret > 0)
		vigil_note_drain(r);
	mutex_unlock(&r->lock);
	return ret;
}

static __poll_t vigil_poll(struct file *file, poll_table *wait)
{
	struct vigil_reader *r = file->private_data;

	poll_wait(file, &vigil.log_wait, wait);
	return vigil_log_readable(READ_ONCE(r->pos)) ? EPOLLIN | EPOLLRDNORM : 0;
}

static loff_t vigil_llseek(struct file *file, loff_t offset, int whence)
{
	struct vigil_reader *r = file->private_data;
	u64 first, next, records, bytes;
	loff_t ret;

	if (mutex_lock_interruptible(&r->lock))
		return -ERESTARTSYS;
	switch (whence) {
	case SEEK_SET:
		break;
	case SEEK_CUR:
		if (check_add_overflow(offset, r->pos, &offset))
			offset = -1;
		break;
	case SEEK_END:
		vigil_log_stats(&first, &next, &records, &bytes);
		if (check_add_overflow(offset, (loff_t)next, &offset))
			offset = -1;
		break;
	default:
		offset = -1;
		break;
	}
	if (offset < 0) {
		ret = -EINVAL;
	} else {
		/* A seek that moves the cursor starts a new run of reads. */
		if (offset != r->pos)
			r->run_start = offset;
		r->pos = offset;
		file->f_pos = offset;
		ret = offset;
	}
	mutex_unlock(&r->lock);
	return ret;
}

/* Larger arguments than this are refused before they are looked at. */
#define VIGIL_ARG_MAX	PAGE_SIZE

static bool vigil_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

static int vigil_arg_out(void __user *uarg, const void *karg, size_t usize)
{
	return copy_to_user(uarg, karg, usize) ? -EFAULT : 0;
}

/*
 * Copy an ioctl argument in, copy_struct_from_user() style: any size from
 * the first published one (@ver0) on; bytes this module does not know must
 * be zero (-E2BIG); the flags word and the @rsize reserved bytes at
 * @reserved (inside @karg) must be zero (-EINVAL). *@usize is what may be
 * written back: the smaller of the two sizes.
 */
static int vigil_arg_in(void *karg, size_t ksize, size_t ver0,
			const void *reserved, size_t rsize,
			void __user *uarg, size_t *usize)
{
	u32 *words = karg;
	u32 size;
	int ret;

	if (get_user(size, (u32 __user *)uarg))
		return -EFAULT;
	if (size < ver0)
		return -EINVAL;
	if (size > VIGIL_ARG_MAX)
		return -E2BIG;
	ret = copy_struct_from_user(karg, ksize, uarg, size);
	if (ret)
		return ret;
	if (words[1] != 0 || !vigil_zero(reserved, rsize))
		return -EINVAL;
	*usize = min_t(size_t, size, ksize);
	return 0;
}

/*
 * vigil_arg_in() for an ioctl that acts: a call that fails changes nothing,
 * so the argument is also written back unchanged before the action, and a
 * read-only or unmapped page fails here, not after it (a caller that
 * retried would act twice). Only a concurrent munmap/mprotect between this
 * and the final copy can still lose the result.
 */
static int vigil_arg_in_rw(void *karg, size_t ksize, size_t ver0,
			   const void *reserved, size_t rsize,
			   void __user *uarg, size_t *usize)
{
	int ret;

	ret = vigil_arg_in(karg, ksize, ver0, reserved, rsize, uarg, usize);
	if (ret)
		return ret;
	return vigil_arg_out(uarg, karg, *usize);
}

static long vigil_ioc_version(void __user *uarg)
{
	struct vigil_version v;
	size_t usize;
	int ret;

	ret = vigil_arg_in(&v, sizeof(v), VIGIL_SIZE_VER0_VERSION, v.__reserved,
			   sizeof(v.__reserved), uarg, &usize);
	if (ret)
		return ret;
	v.abi_major = VIGIL_ABI_MAJOR;
	v.abi_minor = VIGIL_ABI_MINOR;
	memset(v.module_version, 0, sizeof(v.module_version));
	strscpy(v.module_version, VIGIL_VERSION, sizeof(v.module_version));
	return vigil_arg_out(uarg, &v, usize);
}

static long vigil_ioc_info(void __user *uarg)
{
	struct vigil_info *in;
	size_t usize;
	u32 i;
	int ret;

	in = kmalloc(sizeof(*in), GFP_KERNEL);
	if (!in)
		return -ENOMEM;
	ret = vigil_arg_in(in, sizeof(*in), VIGIL_SIZE_VER0_INFO, &in->__reserved,
			   sizeof(in->__reserved), uarg, &usize);
	if (ret)
		goto out_free;
	memset(in, 0, sizeof(*in));
	in->size = usize;
	if (vigil_tpm_present())
		in->tpm_flags |= VIGIL_TPM_PRESENT;
	if (vigil.tpm.have_key)
		in->tpm_flags |= VIGIL_TPM_KEY;
	if (vigil.p.tpm_required)
		in->tpm_flags |= VIGIL_TPM_REQUIRED;
	if (vigil_tpm_present() && vigil_dev_anchor())
		in->tpm_flags |= VIGIL_TPM_DEV_ANCHOR;
	if (READ_ONCE(vigil.sealed))
		in->tpm_flags |= VIGIL_TPM_SEALED;
	if (READ_ONCE(vigil.window_owner))
		in->tpm_flags |= VIGIL_TPM_WINDOW_OPEN;
	in->nr_banks = vigil.tpm.nr_banks;
	for (i = 0; i < vigil.tpm.nr_banks; i++)
		in->bank_alg[i] = vigil.tpm.bank[i].alg_id;
	in->pcr_config = vigil.p.pcr_config;
	in->pcr_events = vigil.p.pcr_events;
	in->anchor = vigil.p.anchor;
	in->checkpoint_ms = vigil.p.checkpoint_ms;
	in->checkpoint_events = vigil.p.checkpoint_events;
	in->heartbeat_ms = vigil.p.heartbeat_ms;
	memcpy(in->instance_id, vigil.instance_id, VIGIL_ID_LEN);
	if (vigil.tpm.have_key) {
		memcpy(in->key_x, vigil.tpm.key_x, VIGIL_ECC_COORD_LEN);
		memcpy(in->key_y, vigil.tpm.key_y, VIGIL_ECC_COORD_LEN);
	}
	vigil_chain_peek(&in->next_seq, in->chain_head);
	in->committed = vigil_chain_committed(NULL);
	in->dropped = vigil_chain_drops_total();
	in->busy = atomic64_read(&vigil.busy);
	in->rejected = atomic64_read(&vigil.rejected);
	in->checkpoints_signed = atomic64_read(&vigil.cp_signed);
	in->checkpoints_unsigned = atomic64_read(&vigil.cp_unsigned);
	vigil_log_stats(&in->log_first_seq, &in->log_next_seq,
			&in->log_records, &in->log_bytes);
	in->log_max_bytes = vigil.p.log_max_bytes;
	in->log_refused = atomic64_read(&vigil.log_refused);
	in->tpm_errors = atomic64_read(&vigil.tpm_errors);
	/* not anchor_lock: that one is held across TPM commands */
	spin_lock(&vigil.producers_lock);
	in->producers_gen = vigil.producers_gen;
	in->nr_producers = vigil.producers_sealed;
	memcpy(in->producers_digest, vigil.producers_digest, VIGIL_DIGEST_LEN);
	spin_unlock(&vigil.producers_lock);
	/* pairs with vigil_seal() */
	in->seal_log_end = smp_load_acquire(&vigil.seal_log_end);
	in->kfunc_guard = vigil_kfunc_guard();
	ret = vigil_arg_out(uarg, in, usize);
out_free:
	kfree(in);
	return ret;
}

/* A measurement name: non-empty, NUL-terminated, printable ASCII. */
static bool vigil_name_ok(const char *name, size_t len)
{
	size_t n = strnlen(name, len);
	size_t i;

	if (n == 0 || n == len)
		return false;
	for (i = 0; i < n; i++)
		if (name[i] < 0x20 || name[i] > 0x7e)
			return false;
	return true;
}

static long vigil_ioc_measure(void __user *uarg)
{
	struct vigil_measure m;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in_rw(&m, sizeof(m), VIGIL_SIZE_VER0_MEASURE,
			      m.__reserved, sizeof(m.__reserved), uarg, &usize);
	if (ret)
		return ret;
	if (!vigil_name_ok(m.name, sizeof(m.name)))
		return -EINVAL;
	ret = vigil_measure(VIGIL_MEASURE_USER, m.name, m.digest, &m.log_seq);
	if (ret && ret != -EIO)
		return ret;
	if (vigil_arg_out(uarg, &m, usize))
		return -EFAULT;
	return ret;
}

static long vigil_ioc_commit(void __user *uarg)
{
	struct vigil_log_event *le;
	struct vigil_commit c;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in_rw(&c, sizeof(c), VIGIL_SIZE_VER0_COMMIT,
			      c.__reserved, sizeof(c.__reserved), uarg, &usize);
	if (ret)
		return ret;
	if (c.len > VIGIL_USER_PAYLOAD_MAX || (c.len && !c.payload))
		return -EINVAL;

	le = kmalloc(sizeof(*le), GFP_KERNEL);
	if (!le)
		return -ENOMEM;
	vigil_rec_init(le, VIGIL_LOG_EVENT, sizeof(*le));
	vigil_rec_init(&le->ev, VIGIL_EV_USER, sizeof(le->ev));
	le->ev.hdr.ts_ns = le->hdr.ts_ns;
	le->ev.pid = task_tgid_nr(current);
	le->ev.uid = from_kuid(&init_user_ns, current_uid());
	le->ev.kind = c.kind;
	le->ev.len = c.len;
	if (c.len && copy_from_user(le->ev.payload, u64_to_user_ptr(c.payload),
				    c.len)) {
		ret = -EFAULT;
		goto out_free;
	}
	ret = vigil_log_commit_event(le);
	if (ret)
		goto out_free;
	c.seq = le->ev.hdr.seq;
	ret = vigil_arg_out(uarg, &c, usize);
out_free:
	kfree(le);
	return ret;
}

static long vigil_ioc_checkpoint(void __user *uarg)
{
	struct vigil_checkpoint_req *req;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	req = kmalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	ret = vigil_arg_in_rw(req, sizeof(*req), VIGIL_SIZE_VER0_CHECKPOINT,
			      req->__reserved, sizeof(req->__reserved), uarg,
			      &usize);
	if (ret)
		goto out_free;
	ret = vigil_checkpoint(VIGIL_CP_IOCTL, &req->cp, &req->sig);
	if (ret)
		goto out_free;
	ret = vigil_arg_out(uarg, req, usize);
out_free:
	kfree(req);
	return ret;
}

static long vigil_ioc_trim(void __user *uarg)
{
	struct vigil_trim t;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in_rw(&t, sizeof(t), VIGIL_SIZE_VER0_TRIM, t.__reserved,
			      sizeof(t.__reserved), uarg, &usize);
	if (ret)
		return ret;
	ret = vigil_trim(t.before_seq, &t.trimmed);
	if (ret)
		return ret;
	return vigil_arg_out(uarg, &t, usize);
}

static long vigil_ioc_producers(struct file *file, void __user *uarg,
				bool seal)
{
	struct vigil_producers p;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in_rw(&p, sizeof(p), VIGIL_SIZE_VER0_PRODUCERS,
			      p.__reserved, sizeof(p.__reserved), uarg, &usize);
	if (ret)
		return ret;
	if (!seal)
		return vigil_producers_open(file);
	ret = vigil_producers_seal(file, &p);
	if (ret && ret != -EIO)
		return ret;
	if (vigil_arg_out(uarg, &p, usize))
		return -EFAULT;
	return ret;
}

static long vigil_ioc_producer_add(struct file *file, void __user *uarg)
{
	struct vigil_producer_add a;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in(&a, sizeof(a), VIGIL_SIZE_VER0_PRODUCER_ADD,
			   a.__reserved, sizeof(a.__reserved), uarg, &usize);
	if (ret)
		return ret;
	if (a.__pad)
		return -EINVAL;
	return vigil_producers_add(file, a.prog_fd);
}

static long vigil_ioc_seal(void __user *uarg)
{
	struct vigil_seal *s;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s)
		return -ENOMEM;
	ret = vigil_arg_in_rw(s, sizeof(*s), VIGIL_SIZE_VER0_SEAL, s->__reserved,
			      sizeof(s->__reserved), uarg, &usize);
	if (ret)
		goto out_free;
	ret = vigil_seal(&s->cp, &s->sig, &s->log_end);
	if (ret && ret != -EALREADY)
		goto out_free;
	if (vigil_arg_out(uarg, s, usize))
		ret = -EFAULT;
out_free:
	kfree(s);
	return ret;
}

/*
 * KEY_CREATION: the blobs are copied under anchor_lock (a re-derive at a
 * checkpoint replaces them) and written to user memory after it is
 * dropped, so a faulting or userfaultfd-backed buffer cannot stall
 * checkpoints. The call acts on nothing: a caller may simply retry.
 */
static long vigil_ioc_key_creation(void __user *uarg)
{
	u32 len[VIGIL_CREATION_PARTS + 1], total = 0, i;
	struct vigil_key_creation kc;
	u8 *blobs = NULL;
	size_t usize;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in(&kc, sizeof(kc), VIGIL_SIZE_VER0_KEY_CREATION,
			   kc.__reserved, sizeof(kc.__reserved), uarg, &usize);
	if (ret)
		return ret;
	if (kc.buf_len && !kc.buf)
		return -EINVAL;

	if (mutex_lock_killable(&vigil.anchor_lock))
		return -EINTR;
	ret = vigil_tpm_key_creation(&blobs, len);
	mutex_unlock(&vigil.anchor_lock);
	if (ret)
		return ret;

	for (i = 0; i <= VIGIL_CREATION_PARTS; i++)
		total += len[i];
	kc.needed = total;
	kc.public_len = len[VIGIL_CREATION_PUBLIC];
	kc.creation_data_len = len[VIGIL_CREATION_DATA];
	kc.creation_hash_len = len[VIGIL_CREATION_HASH];
	kc.ticket_len = len[VIGIL_CREATION_TICKET];
	kc.context_len = len[VIGIL_CREATION_PARTS];
	if (kc.buf_len < total)
		ret = -ENOSPC;
	else if (copy_to_user(u64_to_user_ptr(kc.buf), blobs, total))
		ret = -EFAULT;
	kfree(blobs);
	if (ret != -EFAULT && vigil_arg_out(uarg, &kc, usize))
		ret = -EFAULT;
	return ret;
}

static long vigil_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case VIGIL_IOC_GET_VERSION:
		return vigil_ioc_version(uarg);
	case VIGIL_IOC_GET_INFO:
		return vigil_ioc_info(uarg);
	case VIGIL_IOC_MEASURE:
		return vigil_ioc_measure(uarg);
	case VIGIL_IOC_COMMIT:
		return vigil_ioc_commit(uarg);
	case VIGIL_IOC_CHECKPOINT:
		return vigil_ioc_checkpoint(uarg);
	case VIGIL_IOC_TRIM:
		return vigil_ioc_trim(uarg);
	case VIGIL_IOC_PRODUCERS_OPEN:
		return vigil_ioc_producers(file, uarg, false);
	case VIGIL_IOC_PRODUCERS_SEAL:
		return vigil_ioc_producers(file, uarg, true);
	case VIGIL_IOC_SEAL:
		return vigil_ioc_seal(uarg);
	case VIGIL_IOC_PRODUCERS_ADD:
		return vigil_ioc_producer_add(file, uarg);
	case VIGIL_IOC_KEY_CREATION:
		return vigil_ioc_key_creation(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vigil_fops = {
	.owner = THIS_MODULE,
	.open = vigil_open,
	.release = vigil_release,
	.read = vigil_read,
	.poll = vigil_poll,
	.llseek = vigil_llseek,
	.unlocked_ioctl = vigil_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice vigil_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = VIGIL_DEVICE_NAME,
	.fops = &vigil_fops,
	.mode = 0600,
};

/**
 * vigil_chardev_init() - register /dev/vigil
 *
 * Return: 0 or the error of misc_register().
 */
int vigil_chardev_init(void)
{
	return misc_register(&vigil_misc);
}

/**
 * vigil_chardev_exit() - unregister /dev/vigil
 */
void vigil_chardev_exit(void)
{
	misc_deregister(&vigil_misc);
}
