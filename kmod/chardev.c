// SPDX-License-Identifier: GPL-2.0
/*
 * chardev.c - /dev/vigil: read()/poll() stream log records, ioctls.
 *
 * The file position is a log seq: the seq of the next record a read()
 * returns (0 = the oldest record held). lseek(SEEK_SET, n) resumes at
 * log seq n, SEEK_END skips to the records written from now on. Every
 * ioctl argument starts with size and flags; size must equal the struct
 * size, flags and reserved fields must be zero, and nothing changes when
 * a check fails.
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

/*
 * The position is a log seq that read() and lseek() both move: with
 * FMODE_ATOMIC_POS the VFS serialises them (f_pos_lock) when several
 * threads share the open file, so two readers never get the same records.
 */
static int vigil_open(struct inode *inode, struct file *file)
{
	file->f_mode |= FMODE_ATOMIC_POS;
	return 0;
}

static ssize_t vigil_read(struct file *file, char __user *buf, size_t count,
			  loff_t *pos)
{
	return vigil_log_read(buf, count, pos, file->f_flags & O_NONBLOCK);
}

static __poll_t vigil_poll(struct file *file, poll_table *wait)
{
	poll_wait(file, &vigil.log_wait, wait);
	return vigil_log_readable(file->f_pos) ? EPOLLIN | EPOLLRDNORM : 0;
}

static loff_t vigil_llseek(struct file *file, loff_t offset, int whence)
{
	u64 first, next, records, bytes;

	switch (whence) {
	case SEEK_SET:
		break;
	case SEEK_CUR:
		if (check_add_overflow(offset, file->f_pos, &offset))
			return -EINVAL;
		break;
	case SEEK_END:
		vigil_log_stats(&first, &next, &records, &bytes);
		if (check_add_overflow(offset, (loff_t)next, &offset))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (offset < 0)
		return -EINVAL;
	file->f_pos = offset;
	return offset;
}

/* Copy an ioctl argument in and check its size and flags words. */
static int vigil_arg_in(void *karg, size_t ksize, void __user *uarg)
{
	u32 *words = karg;

	if (copy_from_user(karg, uarg, ksize))
		return -EFAULT;
	if (words[0] != ksize || words[1] != 0)
		return -EINVAL;
	return 0;
}

static bool vigil_zero(const void *p, size_t n)
{
	return !memchr_inv(p, 0, n);
}

static long vigil_ioc_version(void __user *uarg)
{
	struct vigil_version v;
	int ret;

	ret = vigil_arg_in(&v, sizeof(v), uarg);
	if (ret)
		return ret;
	if (!vigil_zero(v.__reserved, sizeof(v.__reserved)))
		return -EINVAL;
	v.abi_major = VIGIL_ABI_MAJOR;
	v.abi_minor = VIGIL_ABI_MINOR;
	memset(v.module_version, 0, sizeof(v.module_version));
	strscpy(v.module_version, VIGIL_VERSION, sizeof(v.module_version));
	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long vigil_ioc_info(void __user *uarg)
{
	struct vigil_info *in;
	u32 i;
	int ret;

	in = kmalloc(sizeof(*in), GFP_KERNEL);
	if (!in)
		return -ENOMEM;
	ret = vigil_arg_in(in, sizeof(*in), uarg);
	if (ret)
		goto out_free;
	if (!vigil_zero(in->__reserved, sizeof(in->__reserved))) {
		ret = -EINVAL;
		goto out_free;
	}
	memset(in, 0, sizeof(*in));
	in->size = sizeof(*in);
	if (vigil_tpm_present())
		in->tpm_flags |= VIGIL_TPM_PRESENT;
	if (vigil.tpm.have_key)
		in->tpm_flags |= VIGIL_TPM_KEY;
	if (vigil.p.tpm_required)
		in->tpm_flags |= VIGIL_TPM_REQUIRED;
	in->nr_banks = vigil.tpm.nr_banks;
	for (i = 0; i < vigil.tpm.nr_banks; i++)
		in->bank_alg[i] = vigil.tpm.bank[i].alg_id;
	in->pcr_config = vigil.p.pcr_config;
	in->pcr_events = vigil.p.pcr_events;
	in->anchor = vigil.p.anchor;
	in->checkpoint_ms = vigil.p.checkpoint_ms;
	in->checkpoint_events = vigil.p.checkpoint_events;
	memcpy(in->instance_id, vigil.instance_id, VIGIL_ID_LEN);
	if (vigil.tpm.have_key) {
		memcpy(in->key_x, vigil.tpm.key_x, VIGIL_ECC_COORD_LEN);
		memcpy(in->key_y, vigil.tpm.key_y, VIGIL_ECC_COORD_LEN);
	}
	vigil_chain_peek(&in->next_seq, in->chain_head);
	in->committed = atomic64_read(&vigil.committed);
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
	ret = copy_to_user(uarg, in, sizeof(*in)) ? -EFAULT : 0;
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
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in(&m, sizeof(m), uarg);
	if (ret)
		return ret;
	if (!vigil_zero(m.__reserved, sizeof(m.__reserved)) ||
	    !vigil_name_ok(m.name, sizeof(m.name)))
		return -EINVAL;
	ret = vigil_measure(VIGIL_MEASURE_USER, m.name, m.digest, &m.log_seq);
	if (ret && ret != -EIO)
		return ret;
	if (copy_to_user(uarg, &m, sizeof(m)))
		return -EFAULT;
	return ret;
}

static long vigil_ioc_commit(void __user *uarg)
{
	struct vigil_log_event *le;
	struct vigil_commit c;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in(&c, sizeof(c), uarg);
	if (ret)
		return ret;
	if (!vigil_zero(c.__reserved, sizeof(c.__reserved)) ||
	    c.len > VIGIL_USER_PAYLOAD_MAX || (c.len && !c.payload))
		return -EINVAL;

	le = kmalloc(sizeof(*le), GFP_KERNEL);
	if (!le)
		return -ENOMEM;
	vigil_rec_init(&le->hdr, VIGIL_LOG_EVENT, sizeof(*le));
	vigil_rec_init(&le->ev.hdr, VIGIL_EV_USER, sizeof(le->ev));
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
	if (copy_to_user(uarg, &c, sizeof(c)))
		ret = -EFAULT;
out_free:
	kfree(le);
	return ret;
}

static long vigil_ioc_checkpoint(void __user *uarg)
{
	struct vigil_checkpoint_req *req;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	req = kmalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	ret = vigil_arg_in(req, sizeof(*req), uarg);
	if (ret)
		goto out_free;
	if (!vigil_zero(req->__reserved, sizeof(req->__reserved))) {
		ret = -EINVAL;
		goto out_free;
	}
	ret = vigil_checkpoint(VIGIL_CP_IOCTL, &req->cp, &req->sig);
	if (ret)
		goto out_free;
	if (copy_to_user(uarg, req, sizeof(*req)))
		ret = -EFAULT;
out_free:
	kfree(req);
	return ret;
}

static long vigil_ioc_trim(void __user *uarg)
{
	struct vigil_trim t;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = vigil_arg_in(&t, sizeof(t), uarg);
	if (ret)
		return ret;
	if (!vigil_zero(t.__reserved, sizeof(t.__reserved)))
		return -EINVAL;
	ret = vigil_trim(t.before_seq, &t.trimmed);
	if (ret)
		return ret;
	return copy_to_user(uarg, &t, sizeof(t)) ? -EFAULT : 0;
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
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vigil_fops = {
	.owner = THIS_MODULE,
	.open = vigil_open,
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
