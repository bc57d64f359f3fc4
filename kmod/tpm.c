// SPDX-License-Identifier: GPL-2.0
/*
 * tpm.c - the only file of vigil.ko that talks to the TPM.
 *
 * PCR reads and extends go through the kernel's exported helpers. The
 * checkpoint key needs commands the kernel does not wrap (CreatePrimary,
 * ContextSave, ContextLoad, Sign): they are built with tpm_buf and sent
 * with tpm_transmit_cmd() while holding the chip's ops.
 *
 * The key is an ECC P-256 ECDSA-SHA256 signing key, a primary object
 * under the owner hierarchy whose template carries 32 secret random bytes
 * in its unique field (nobody else can recreate it; the module keeps them
 * to re-derive the same key if the TPM loses the saved context, e.g. after
 * a TPM reset) and whose auth value is 32 secret random bytes (nobody can
 * use it while it is loaded). It is
 * loaded only for the length of one signature: created, saved with
 * TPM2_ContextSave and flushed at load; ContextLoad, Sign, FlushContext at
 * every checkpoint, all under the chip's ops lock. So the module never
 * holds one of the TPM's few transient slots between checkpoints, and
 * /dev/tpmrm0 users keep working.
 *
 * TPM response codes become -EIO here; the raw code is handed back for
 * the log. Callers serialise with vigil.anchor_lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tpm.h>
#include "compat.h"
#include <crypto/hash.h>
#include <crypto/hash_info.h>

#include "internal.h"

#define VIGIL_TPM2_CC_SIGN		0x015D
#define VIGIL_TPM2_RH_OWNER		0x40000001
#define VIGIL_TPM2_ST_HASHCHECK		0x8024
#define VIGIL_TPM2_ALG_ECDSA		0x0018
#define VIGIL_TPM2_KEY_ATTRS	(TPM2_OA_FIXED_TPM | TPM2_OA_FIXED_PARENT | \
				 VIGIL_TPM2_OA_SENSITIVE_DATA_ORIGIN | \
				 TPM2_OA_USER_WITH_AUTH | VIGIL_TPM2_OA_NO_DA | \
				 VIGIL_TPM2_OA_SIGN)

/* A bounds-checked reader over a TPM response body. */
struct vigil_rsp {
	const u8 *p;
	u32 len;
	u32 off;
	bool err;
};

/*
 * Free a command buffer that carried a secret (key_auth, key_unique): the
 * page goes back to the allocator wiped.
 */
static void vigil_buf_destroy_sensitive(struct tpm_buf *buf)
{
	memzero_explicit(buf->data, PAGE_SIZE);
	tpm_buf_destroy(buf);
}

static const u8 *vigil_rsp_bytes(struct vigil_rsp *r, u32 n)
{
	const u8 *ret;

	if (r->err || n > r->len - r->off) {
		r->err = true;
		return NULL;
	}
	ret = r->p + r->off;
	r->off += n;
	return ret;
}

static u16 vigil_rsp_u16(struct vigil_rsp *r)
{
	const u8 *p = vigil_rsp_bytes(r, 2);

	return p ? get_unaligned_be16(p) : 0;
}

static u32 vigil_rsp_u32(struct vigil_rsp *r)
{
	const u8 *p = vigil_rsp_bytes(r, 4);

	return p ? get_unaligned_be32(p) : 0;
}

/* A TPM2B: returns the bytes and their count in *n. */
static const u8 *vigil_rsp_tpm2b(struct vigil_rsp *r, u16 *n)
{
	*n = vigil_rsp_u16(r);
	return vigil_rsp_bytes(r, *n);
}

/* Copy a big-endian number of up to @len bytes, left-padded with zeros. */
static bool vigil_rsp_coord(struct vigil_rsp *r, u8 *out, u32 len)
{
	const u8 *p;
	u16 n;

	p = vigil_rsp_tpm2b(r, &n);
	if (!p || n > len)
		return false;
	memset(out, 0, len - n);
	memcpy(out + len - n, p, n);
	return true;
}

static void vigil_rsp_init(struct vigil_rsp *r, struct tpm_buf *buf)
{
	r->p = buf->data + TPM_HEADER_SIZE;
	r->len = tpm_buf_length(buf) > TPM_HEADER_SIZE ?
		 tpm_buf_length(buf) - TPM_HEADER_SIZE : 0;
	r->off = 0;
	r->err = false;
}

/* A password session (TPM2_RS_PW) with @pw as the auth value. */
static void vigil_buf_append_pw(struct tpm_buf *buf, const u8 *pw, u16 len)
{
	tpm_buf_append_u32(buf, 4 + 2 + 1 + 2 + len);
	tpm_buf_append_u32(buf, TPM2_RS_PW);
	tpm_buf_append_u16(buf, 0);	/* nonce */
	tpm_buf_append_u8(buf, 0);	/* session attributes */
	tpm_buf_append_u16(buf, len);
	if (len)
		tpm_buf_append(buf, pw, len);
}

/*
 * Send a command; the chip's ops must be held. Returns 0, -errno, or -EIO
 * with the TPM response code in *tpm_rc. No description is passed to the
 * TPM core, so a dead TPM does not flood the log at every checkpoint: the
 * callers report failures rate-limited.
 */
static int vigil_tpm_transmit(struct tpm_buf *buf, u32 *tpm_rc)
{
	ssize_t ret;

	if (buf->flags & TPM_BUF_OVERFLOW)
		return -E2BIG;
	ret = tpm_transmit_cmd(vigil.tpm.chip, buf, 0, NULL);
	if (ret < 0) {
		/*
		 * Timed out or cancelled: the TPM may still have run it and
		 * hold an object we never learnt the handle of.
		 */
		vigil.tpm.sweep = true;
		return ret;
	}
	if (ret > 0) {
		*tpm_rc = ret;
		return -EIO;
	}
	return 0;
}

/**
 * vigil_tpm_init() - find the TPM 2.0 chip and set up one hash per bank
 *
 * Without a TPM 2.0 the module runs degraded unless tpm_required is set.
 *
 * Return: 0 (TPM found, or degraded), -ENODEV when a TPM is required and
 * missing, -ENOMEM.
 */
int vigil_tpm_init(void)
{
	struct tpm_chip *chip;
	u32 i;

	chip = tpm_default_chip();
	if (chip && tpm_is_tpm2(chip) <= 0) {
		pr_warn("the TPM is not a TPM 2.0, ignoring it\n");
		put_device(&chip->dev);
		chip = NULL;
	}
	if (!chip) {
		if (vigil.p.tpm_required) {
			pr_err("no TPM 2.0 found and tpm_required=1: refusing to load\n");
			return -ENODEV;
		}
		pr_warn("no TPM 2.0 found: degraded mode, checkpoints are unsigned and nothing is anchored\n");
		return 0;
	}
	if (chip->nr_allocated_banks == 0 ||
	    chip->nr_allocated_banks > VIGIL_MAX_BANKS) {
		pr_err("TPM reports %u PCR banks, expected 1..%u\n",
		       chip->nr_allocated_banks, VIGIL_MAX_BANKS);
		put_device(&chip->dev);
		return -ENODEV;
	}

	vigil.tpm.chip = chip;
	vigil.tpm.nr_banks = chip->nr_allocated_banks;
	for (i = 0; i < vigil.tpm.nr_banks; i++) {
		struct tpm_bank_info *info = &chip->allocated_banks[i];
		struct vigil_bank *bank = &vigil.tpm.bank[i];
		struct crypto_shash *tfm;

		bank->alg_id = info->alg_id;
		bank->size = min_t(u16, info->digest_size, VIGIL_BANK_DIGEST_MAX);
		bank->tfm = NULL;
		if (info->crypto_id >= HASH_ALGO__LAST) {
			pr_warn("PCR bank 0x%04x has no kernel hash: extending it with zero-padded SHA-256\n",
				info->alg_id);
			continue;
		}
		tfm = crypto_alloc_shash(hash_algo_name[info->crypto_id], 0, 0);
		if (IS_ERR(tfm)) {
			pr_warn("PCR bank 0x%04x: no %s in the kernel (%ld): extending it with zero-padded SHA-256\n",
				info->alg_id, hash_algo_name[info->crypto_id],
				PTR_ERR(tfm));
			continue;
		}
		bank->tfm = tfm;
	}
	pr_info("TPM 2.0 found with %u PCR banks\n", vigil.tpm.nr_banks);
	return 0;
}

/**
 * vigil_tpm_exit() - release the hashes, the saved key context and the chip
 */
void vigil_tpm_exit(void)
{
	u32 i;

	for (i = 0; i < vigil.tpm.nr_banks; i++) {
		if (vigil.tpm.bank[i].tfm)
			crypto_free_shash(vigil.tpm.bank[i].tfm);
		vigil.tpm.bank[i].tfm = NULL;
	}
	kfree_sensitive(vigil.tpm.key_ctx);
	vigil.tpm.key_ctx = NULL;
	kfree(vigil.tpm.creation.buf);
	vigil.tpm.creation.buf = NULL;
	memzero_explicit(vigil.tpm.key_auth, sizeof(vigil.tpm.key_auth));
	memzero_explicit(vigil.tpm.key_unique, sizeof(vigil.tpm.key_unique));
	vigil.tpm.have_key = false;
	if (vigil.tpm.chip)
		put_device(&vigil.tpm.chip->dev);
	vigil.tpm.chip = NULL;
	vigil.tpm.nr_banks = 0;
}

/* Same banks, same order: the PCR values and replay bases still apply. */
static bool vigil_tpm_same_banks(const struct tpm_chip *chip)
{
	u32 i;

	if (chip->nr_allocated_banks != vigil.tpm.nr_banks)
		return false;
	for (i = 0; i < vigil.tpm.nr_banks; i++)
		if (chip->allocated_banks[i].alg_id != vigil.tpm.bank[i].alg_id)
			return false;
	return true;
}

/**
 * vigil_tpm_revive() - follow the TPM to its new chip after a rebind
 *
 * When the TPM driver is unbound, the chip the module holds loses its ops
 * for good; a bind creates a new chip. Called before TPM work (checkpoint,
 * TRIM) after a TPM operation failed, with anchor_lock held like every TPM
 * user, so the chip is swapped while nobody uses it. A module loaded
 * without a TPM stays degraded.
 *
 * Return: true when the module moved to a new chip.
 */
bool vigil_tpm_revive(void)
{
	struct tpm_chip *old = vigil.tpm.chip, *chip;

	lockdep_assert_held(&vigil.anchor_lock);
	if (!old)
		return false;
	if (!tpm_try_get_ops(old)) {
		tpm_put_ops(old);
		return false;
	}
	chip = tpm_default_chip();
	if (!chip)
		return false;
	/*
	 * Only the same TPM, bound again: the same parent device, not a
	 * virtual chip (tpm_vtpm_proxy), same banks. Another chip would be
	 * handed the key's context and its auth value.
	 */
	if (chip == old || tpm_is_tpm2(chip) <= 0 ||
	    (chip->flags & TPM_CHIP_FLAG_VIRTUAL) ||
	    chip->dev.parent != old->dev.parent ||
	    !vigil_tpm_same_banks(chip)) {
		if (chip != old)
			pr_warn_ratelimited("another TPM chip appeared (virtual, other device or other banks): not used\n");
		put_device(&chip->dev);
		return false;
	}
	vigil.tpm.chip = chip;
	put_device(&old->dev);
	pr_info("the TPM came back as a new chip: extending and signing resume\n");
	return true;
}

/**
 * vigil_tpm_present() - is there a TPM 2.0?
 *
 * Return: true when the module found a TPM 2.0 at load.
 */
bool vigil_tpm_present(void)
{
	return vigil.tpm.chip;
}

/**
 * vigil_tpm_pcr_read() - read one PCR in one bank
 * @pcr:  PCR index
 * @bank: bank index in the chip's order
 * @out:  the bank's digest size in bytes
 *
 * Return: 0 or -errno.
 */
int vigil_tpm_pcr_read(u32 pcr, unsigned int bank, u8 *out)
{
	struct tpm_digest d = {};
	int ret;

	if (!vigil.tpm.chip || bank >= vigil.tpm.nr_banks)
		return -ENODEV;
	d.alg_id = vigil.tpm.bank[bank].alg_id;
	ret = tpm_pcr_read(vigil.tpm.chip, pcr, &d);
	if (ret)
		return ret > 0 ? -EIO : ret;
	memcpy(out, d.digest, vigil.tpm.bank[bank].size);
	return 0;
}

/**
 * vigil_tpm_hash() - hash a buffer with a bank's algorithm
 * @bank: bank index
 * @data: bytes to hash
 * @len:  byte count
 * @out:  the bank's digest size in bytes
 *
 * A bank whose algorithm the kernel lacks gets SHA-256 zero-padded (or
 * truncated) to the bank's size.
 *
 * Return: 0 or -errno.
 */
int vigil_tpm_hash(unsigned int bank, const void *data, u32 len, u8 *out)
{
	struct vigil_bank *b;
	u8 d[SHA256_DIGEST_SIZE];

	if (bank >= vigil.tpm.nr_banks)
		return -EINVAL;
	b = &vigil.tpm.bank[bank];
	if (b->tfm)
		return crypto_shash_tfm_digest(b->tfm, data, len, out);
	sha256(data, len, d);
	memset(out, 0, b->size);
	memcpy(out, d, min_t(u32, b->size, sizeof(d)));
	return 0;
}

/**
 * vigil_tpm_extend() - extend a PCR with a record's digest in every bank
 * @pcr: PCR index
 * @rec: the record
 * @len: its size
 *
 * Bank B is extended with H_B(record), in the chip's bank order.
 *
 * Return: 0, -ENODEV without a TPM, -EIO for a TPM error, -errno.
 */
int vigil_tpm_extend(u32 pcr, const void *rec, u32 len)
{
	struct tpm_digest *digests;
	u32 i;
	int ret;

	if (!vigil.tpm.chip)
		return -ENODEV;
	digests = kcalloc(vigil.tpm.nr_banks, sizeof(*digests), GFP_KERNEL);
	if (!digests)
		return -ENOMEM;
	for (i = 0; i < vigil.tpm.nr_banks; i++) {
		digests[i].alg_id = vigil.tpm.bank[i].alg_id;
		ret = vigil_tpm_hash(i, rec, len, digests[i].digest);
		if (ret)
			goto out_free;
	}
	ret = tpm_pcr_extend(vigil.tpm.chip, pcr, digests);
	if (ret > 0)
		ret = -EIO;
out_free:
	kfree(digests);
	return ret;
}

/*
 * TPM2_CreatePrimary of the signing key from vigil.tpm.key_unique and
 * key_auth; fills @x, @y, @name and @cr (outPublic, creationData,
 * creationHash and creationTicket as the TPM marshalled them; @cr->buf is
 * allocated on success and the caller owns it). The same secrets give the
 * same key as long as the owner seed is unchanged.
 */
static int vigil_tpm_create_primary(u32 *handle, u8 *x, u8 *y, u8 *name,
				    struct vigil_creation *cr, u32 *tpm_rc)
{
	u32 start, end[VIGIL_CREATION_PARTS], i;
	struct vigil_rsp r, pub;
	struct tpm_buf buf;
	const u8 *p;
	u16 n;
	int ret;

	ret = tpm_buf_init(&buf, TPM2_ST_SESSIONS, TPM2_CC_CREATE_PRIMARY);
	if (ret)
		return ret;

	tpm_buf_append_u32(&buf, VIGIL_TPM2_RH_OWNER);
	vigil_buf_append_pw(&buf, NULL, 0);
	/* inSensitive: userAuth = the secret auth value, no data */
	tpm_buf_append_u16(&buf, 2 + VIGIL_KEY_AUTH_LEN + 2);
	tpm_buf_append_u16(&buf, VIGIL_KEY_AUTH_LEN);
	tpm_buf_append(&buf, vigil.tpm.key_auth, VIGIL_KEY_AUTH_LEN);
	tpm_buf_append_u16(&buf, 0);
	/* inPublic: TPMT_PUBLIC of an ECC P-256 ECDSA-SHA256 signing key */
	tpm_buf_append_u16(&buf, 2 + 2 + 4 + 2 + 2 + 4 + 2 + 2 +
			   2 + VIGIL_KEY_UNIQUE_LEN + 2);
	tpm_buf_append_u16(&buf, VIGIL_TPM_ALG_ECC);
	tpm_buf_append_u16(&buf, TPM_ALG_SHA256);
	tpm_buf_append_u32(&buf, VIGIL_TPM2_KEY_ATTRS);
	tpm_buf_append_u16(&buf, 0);			/* authPolicy */
	tpm_buf_append_u16(&buf, TPM_ALG_NULL);		/* symmetric */
	tpm_buf_append_u16(&buf, VIGIL_TPM2_ALG_ECDSA);	/* scheme */
	tpm_buf_append_u16(&buf, TPM_ALG_SHA256);
	tpm_buf_append_u16(&buf, VIGIL_TPM2_ECC_NIST_P256);
	tpm_buf_append_u16(&buf, TPM_ALG_NULL);		/* kdf */
	tpm_buf_append_u16(&buf, VIGIL_KEY_UNIQUE_LEN);	/* unique.x */
	tpm_buf_append(&buf, vigil.tpm.key_unique, VIGIL_KEY_UNIQUE_LEN);
	tpm_buf_append_u16(&buf, 0);			/* unique.y */
	tpm_buf_append_u16(&buf, 0);			/* outsideInfo */
	tpm_buf_append_u32(&buf, 0);			/* creationPCR */

	ret = vigil_tpm_transmit(&buf, tpm_rc);
	if (ret)
		goto out_destroy;

	vigil_rsp_init(&r, &buf);
	*handle = vigil_rsp_u32(&r);
	vigil_rsp_u32(&r);				/* parameterSize */
	start = r.off;
	p = vigil_rsp_tpm2b(&r, &n);			/* outPublic */
	end[VIGIL_CREATION_PUBLIC] = r.off;
	if (!p) {
		ret = -EBADMSG;
		goto out_flush;
	}
	pub.p = p;
	pub.len = n;
	pub.off = 0;
	pub.err = false;
	if (vigil_rsp_u16(&pub) != VIGIL_TPM_ALG_ECC) {
		ret = -EBADMSG;
		goto out_flush;
	}
	vigil_rsp_u16(&pub);				/* nameAlg */
	vigil_rsp_u32(&pub);				/* attributes */
	vigil_rsp_tpm2b(&pub, &n);			/* authPolicy */
	vigil_rsp_u16(&pub);				/* symmetric: NULL */
	vigil_rsp_u16(&pub);				/* scheme: ECDSA */
	vigil_rsp_u16(&pub);				/* scheme hash */
	vigil_rsp_u16(&pub);				/* curve */
	vigil_rsp_u16(&pub);				/* kdf: NULL */
	if (!vigil_rsp_coord(&pub, x, VIGIL_ECC_COORD_LEN) ||
	    !vigil_rsp_coord(&pub, y, VIGIL_ECC_COORD_LEN)) {
		ret = -EBADMSG;
		goto out_flush;
	}
	vigil_rsp_tpm2b(&r, &n);			/* creationData */
	end[VIGIL_CREATION_DATA] = r.off;
	vigil_rsp_tpm2b(&r, &n);			/* creationHash */
	end[VIGIL_CREATION_HASH] = r.off;
	vigil_rsp_u16(&r);				/* creationTicket.tag */
	vigil_rsp_u32(&r);				/* .hierarchy */
	vigil_rsp_tpm2b(&r, &n);			/* .digest */
	end[VIGIL_CREATION_TICKET] = r.off;
	p = vigil_rsp_tpm2b(&r, &n);			/* name */
	if (!p || n != sizeof(vigil.tpm.key_name)) {
		ret = -EBADMSG;
		goto out_flush;
	}
	memcpy(name, p, n);
	/* r.err is clear: every end[] lies inside the response, in order */
	cr->buf = kmemdup(r.p + start, end[VIGIL_CREATION_TICKET] - start,
			  GFP_KERNEL);
	if (!cr->buf) {
		ret = -ENOMEM;
		goto out_flush;
	}
	for (i = 0; i < VIGIL_CREATION_PARTS; i++) {
		cr->len[i] = end[i] - start;
		start = end[i];
	}
	vigil_buf_destroy_sensitive(&buf);
	return 0;

out_flush:
	tpm2_flush_context(vigil.tpm.chip, *handle);
out_destroy:
	vigil_buf_destroy_sensitive(&buf);
	return ret;
}

/* TPM2_ContextSave of @handle into vigil.tpm.key_ctx (replaced on success). */
static int vigil_tpm_context_save(u32 handle, u32 *tpm_rc)
{
	struct tpm_buf buf;
	struct vigil_rsp r;
	u8 *ctx;
	u16 n;
	int ret;

	ret = tpm_buf_init(&buf, TPM2_ST_NO_SESSIONS, TPM2_CC_CONTEXT_SAVE);
	if (ret)
		return ret;
	tpm_buf_append_u32(&buf, handle);
	ret = vigil_tpm_transmit(&buf, tpm_rc);
	if (ret)
		goto out_destroy;

	/* TPMS_CONTEXT: sequence, savedHandle, hierarchy, contextBlob */
	vigil_rsp_init(&r, &buf);
	vigil_rsp_bytes(&r, 8 + 4 + 4);
	vigil_rsp_tpm2b(&r, &n);
	if (r.err || r.off != r.len) {
		ret = -EBADMSG;
		goto out_destroy;
	}
	ctx = kmemdup(r.p, r.len, GFP_KERNEL);
	if (!ctx) {
		ret = -ENOMEM;
		goto out_destroy;
	}
	kfree_sensitive(vigil.tpm.key_ctx);
	vigil.tpm.key_ctx = ctx;
	vigil.tpm.key_ctx_len = r.len;
out_destroy:
	tpm_buf_destroy(&buf);
	return ret;
}

/**
 * vigil_tpm_create_key() - create the checkpoint key and save its context
 * @tpm_rc: out: TPM response code when the result is -EIO
 *
 * Fills vigil.tpm.key_x/key_y/key_name and leaves no object loaded.
 * Caller holds anchor_lock.
 *
 * Return: 0, -ENODEV without a TPM, -EIO for a TPM error, -errno.
 */
int vigil_tpm_create_key(u32 *tpm_rc)
{
	struct vigil_creation cr;
	u32 handle;
	int ret;

	*tpm_rc = 0;
	if (!vigil.tpm.chip)
		return -ENODEV;
	get_random_bytes(vigil.tpm.key_auth, sizeof(vigil.tpm.key_auth));
	get_random_bytes(vigil.tpm.key_unique, sizeof(vigil.tpm.key_unique));
	ret = tpm_try_get_ops(vigil.tpm.chip);
	if (ret)
		return ret;
	ret = vigil_tpm_create_primary(&handle, vigil.tpm.key_x, vigil.tpm.key_y,
				       vigil.tpm.key_name, &cr, tpm_rc);
	if (ret)
		goto out_put_ops;
	ret = vigil_tpm_context_save(handle, tpm_rc);
	tpm2_flush_context(vigil.tpm.chip, handle);
	if (ret) {
		kfree(cr.buf);
		goto out_put_ops;
	}
	kfree(vigil.tpm.creation.buf);
	vigil.tpm.creation = cr;
	vigil.tpm.have_key = true;
out_put_ops:
	tpm_put_ops(vigil.tpm.chip);
	return ret;
}

/*
 * The TPM refused the saved context: create the primary again from the same
 * secrets. With an unchanged owner seed this is the same key (checked
 * against the logged public point) and signing resumes; after a TPM2_Clear
 * it is not, and the module will not sign with a key the log does not hold.
 * The chip's ops are held; on success the key is loaded at *handle.
 */
static int vigil_tpm_rederive(u32 *handle, u32 *tpm_rc)
{
	u8 x[VIGIL_ECC_COORD_LEN], y[VIGIL_ECC_COORD_LEN], name[34];
	struct vigil_creation cr;
	int ret;

	*tpm_rc = 0;
	ret = vigil_tpm_create_primary(handle, x, y, name, &cr, tpm_rc);
	if (ret)
		return ret;
	if (memcmp(x, vigil.tpm.key_x, sizeof(x)) ||
	    memcmp(y, vigil.tpm.key_y, sizeof(y))) {
		pr_warn_ratelimited("the TPM's owner seed changed: checkpoint key lost, checkpoints stay unsigned\n");
		tpm2_flush_context(vigil.tpm.chip, *handle);
		kfree(cr.buf);
		return -EKEYREJECTED;
	}
	/* Same key, same public area; a new creation record and ticket. */
	kfree(vigil.tpm.creation.buf);
	vigil.tpm.creation = cr;
	if (vigil_tpm_context_save(*handle, tpm_rc))
		pr_warn_ratelimited("re-derived checkpoint key not saved\n");
	pr_info_ratelimited("checkpoint key re-derived after the TPM lost its context\n");
	return 0;
}

#define VIGIL_TPM2_CAP_HANDLES		0x00000001
#define VIGIL_TPM2_TRANSIENT_FIRST	0x80000000
#define VIGIL_SWEEP_MAX			16

/*
 * After a command of ours timed out, flush every transient object the TPM
 * holds. With the chip's ops held no other command is in flight, and both
 * the resource manager (/dev/tpmrm0) and kernel users save or flush their
 * transient objects before they release the chip, so what is loaded now
 * was left by a command that never completed: ours, typically the key a
 * timed-out Sign had loaded. Without it such a leak would take one of the
 * TPM's few object slots (3 in libtpms) from every /dev/tpmrm0 user.
 * The chip's ops are held; caller holds anchor_lock.
 */
static void vigil_tpm_sweep(struct tpm_buf *buf)
{
	u32 handles[VIGIL_SWEEP_MAX], tpm_rc, n, i;
	struct vigil_rsp r;

	tpm_buf_reset(buf, TPM2_ST_NO_SESSIONS, TPM2_CC_GET_CAPABILITY);
	tpm_buf_append_u32(buf, VIGIL_TPM2_CAP_HANDLES);
	tpm_buf_append_u32(buf, VIGIL_TPM2_TRANSIENT_FIRST);
	tpm_buf_append_u32(buf, VIGIL_SWEEP_MAX);
	if (vigil_tpm_transmit(buf, &tpm_rc))
		return;
	vigil_rsp_init(&r, buf);
	vigil_rsp_bytes(&r, 1);				/* moreData */
	if (vigil_rsp_u32(&r) != VIGIL_TPM2_CAP_HANDLES)
		return;
	n = vigil_rsp_u32(&r);
	if (r.err || n > VIGIL_SWEEP_MAX)
		return;
	for (i = 0; i < n; i++)
		handles[i] = vigil_rsp_u32(&r);
	if (r.err)
		return;
	for (i = 0; i < n; i++)
		tpm2_flush_context(vigil.tpm.chip, handles[i]);
	vigil.tpm.swept += n;
	vigil.tpm.sweep = false;
	if (n)
		pr_info_ratelimited("flushed %u transient object(s) left by a timed-out TPM command\n",
				    n);
}

/**
 * vigil_tpm_sign() - sign a SHA-256 digest with the checkpoint key
 * @digest: 32 bytes
 * @r:      out: 32 bytes, big-endian
 * @s:      out: 32 bytes, big-endian
 * @tpm_rc: out: TPM response code when the result is -EIO
 *
 * ContextLoad, Sign, FlushContext under one hold of the chip's ops.
 * Caller holds anchor_lock.
 *
 * Return: 0, -ENOKEY without a key, -EIO for a TPM error, -errno.
 */
int vigil_tpm_sign(const u8 *digest, u8 *r, u8 *s, u32 *tpm_rc)
{
	struct tpm_buf buf;
	struct vigil_rsp rsp;
	u32 handle;
	int ret;

	*tpm_rc = 0;
	if (!vigil.tpm.chip)
		return -ENODEV;
	if (!vigil.tpm.have_key)
		return -ENOKEY;
	ret = tpm_buf_init(&buf, TPM2_ST_NO_SESSIONS, TPM2_CC_CONTEXT_LOAD);
	if (ret)
		return ret;
	ret = tpm_try_get_ops(vigil.tpm.chip);
	if (ret)
		goto out_destroy;

	if (vigil.tpm.sweep) {
		vigil_tpm_sweep(&buf);
		tpm_buf_reset(&buf, TPM2_ST_NO_SESSIONS, TPM2_CC_CONTEXT_LOAD);
	}
	tpm_buf_append(&buf, vigil.tpm.key_ctx, vigil.tpm.key_ctx_len);
	ret = vigil_tpm_transmit(&buf, tpm_rc);
	if (ret == -EIO) {
		/* e.g. a TPM reset invalidated the saved context */
		ret = vigil_tpm_rederive(&handle, tpm_rc);
		if (ret)
			goto out_put_ops;
	} else if (ret) {
		goto out_put_ops;
	} else {
		vigil_rsp_init(&rsp, &buf);
		handle = vigil_rsp_u32(&rsp);
		if (rsp.err) {
			ret = -EBADMSG;
			goto out_put_ops;
		}
	}

	tpm_buf_reset(&buf, TPM2_ST_SESSIONS, VIGIL_TPM2_CC_SIGN);
	tpm_buf_append_u32(&buf, handle);
	vigil_buf_append_pw(&buf, vigil.tpm.key_auth, VIGIL_KEY_AUTH_LEN);
	tpm_buf_append_u16(&buf, VIGIL_DIGEST_LEN);
	tpm_buf_append(&buf, digest, VIGIL_DIGEST_LEN);
	tpm_buf_append_u16(&buf, VIGIL_TPM2_ALG_ECDSA);	/* inScheme */
	tpm_buf_append_u16(&buf, TPM_ALG_SHA256);
	tpm_buf_append_u16(&buf, VIGIL_TPM2_ST_HASHCHECK);	/* validation */
	tpm_buf_append_u32(&buf, VIGIL_TPM2_RH_NULL);
	tpm_buf_append_u16(&buf, 0);
	ret = vigil_tpm_transmit(&buf, tpm_rc);
	if (ret)
		goto out_flush;

	vigil_rsp_init(&rsp, &buf);
	vigil_rsp_u32(&rsp);				/* parameterSize */
	if (vigil_rsp_u16(&rsp) != VIGIL_TPM2_ALG_ECDSA ||
	    vigil_rsp_u16(&rsp) != TPM_ALG_SHA256 ||
	    !vigil_rsp_coord(&rsp, r, VIGIL_ECC_COORD_LEN) ||
	    !vigil_rsp_coord(&rsp, s, VIGIL_ECC_COORD_LEN))
		ret = -EBADMSG;
out_flush:
	tpm2_flush_context(vigil.tpm.chip, handle);
out_put_ops:
	tpm_put_ops(vigil.tpm.chip);
out_destroy:
	vigil_buf_destroy_sensitive(&buf);
	return ret;
}

/**
 * vigil_tpm_key_creation() - copy out what user space needs to certify the key
 * @blobs: out: kmalloc'd outPublic, creationData, creationHash,
 *         creationTicket and the saved TPMS_CONTEXT, back to back
 * @len:   out: bytes of each of the five, in that order
 *         (VIGIL_CREATION_PARTS + 1 entries)
 *
 * No secret is in them: the context blob is encrypted and integrity
 * protected by the TPM, and using the key needs its auth value, which
 * stays here. Caller holds anchor_lock.
 *
 * Return: 0, -ENODEV without a TPM, -ENOKEY without a key, -ENOMEM.
 */
int vigil_tpm_key_creation(u8 **blobs, u32 *len)
{
	const struct vigil_creation *cr = &vigil.tpm.creation;
	u32 total = 0, i;
	u8 *p;

	lockdep_assert_held(&vigil.anchor_lock);
	if (!vigil.tpm.chip)
		return -ENODEV;
	if (!vigil.tpm.have_key || !cr->buf || !vigil.tpm.key_ctx)
		return -ENOKEY;
	for (i = 0; i < VIGIL_CREATION_PARTS; i++) {
		len[i] = cr->len[i];
		total += cr->len[i];
	}
	len[VIGIL_CREATION_PARTS] = vigil.tpm.key_ctx_len;
	p = kmalloc(total + vigil.tpm.key_ctx_len, GFP_KERNEL);
	if (!p)
		return -ENOMEM;
	memcpy(p, cr->buf, total);
	memcpy(p + total, vigil.tpm.key_ctx, vigil.tpm.key_ctx_len);
	*blobs = p;
	return 0;
}
