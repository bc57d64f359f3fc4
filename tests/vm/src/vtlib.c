// SPDX-License-Identifier: GPL-2.0
/* vtlib.c - helpers shared by the guest test programs. */
#include "vtlib.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>

int vt_open(int flags)
{
	int fd = open(VIGIL_DEVICE_PATH, flags | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "open %s: %s\n", VIGIL_DEVICE_PATH,
			strerror(errno));
	return fd;
}

int vt_info(int fd, struct vigil_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	if (ioctl(fd, VIGIL_IOC_GET_INFO, info)) {
		fprintf(stderr, "GET_INFO: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int vt_index(struct vt_log *log)
{
	size_t off = 0, n = 0;

	free(log->rec);
	log->rec = NULL;
	while (off < log->len) {
		struct vigil_rec_hdr *h = (void *)(log->buf + off);

		if (log->len - off < sizeof(*h) || h->size < sizeof(*h) ||
		    h->size % 8 || h->size > log->len - off) {
			fprintf(stderr, "bad record at offset %zu\n", off);
			return -1;
		}
		off += h->size;
		n++;
	}
	log->rec = calloc(n ? n : 1, sizeof(*log->rec));
	if (!log->rec)
		return -1;
	off = 0;
	for (size_t i = 0; i < n; i++) {
		log->rec[i] = (void *)(log->buf + off);
		off += log->rec[i]->size;
	}
	log->nrec = n;
	return 0;
}

int vt_read_more(int fd, struct vt_log *log)
{
	uint8_t chunk[65536];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			fprintf(stderr, "read /dev/vigil: %s\n", strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		uint8_t *nb = realloc(log->buf, log->len + n);

		if (!nb)
			return -1;
		log->buf = nb;
		memcpy(log->buf + log->len, chunk, n);
		log->len += n;
	}
	return vt_index(log);
}

int vt_read_log(struct vt_log *log)
{
	int fd = vt_open(O_RDONLY | O_NONBLOCK);
	int ret;

	memset(log, 0, sizeof(*log));
	if (fd < 0)
		return -1;
	ret = vt_read_more(fd, log);
	close(fd);
	return ret;
}

void vt_log_free(struct vt_log *log)
{
	free(log->buf);
	free(log->rec);
	memset(log, 0, sizeof(*log));
}

static const EVP_MD *vt_md(uint16_t alg)
{
	switch (alg) {
	case VIGIL_ALG_SHA1:
		return EVP_sha1();
	case VIGIL_ALG_SHA256:
		return EVP_sha256();
	case VIGIL_ALG_SHA384:
		return EVP_sha384();
	case VIGIL_ALG_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

int vt_alg_size(uint16_t alg)
{
	const EVP_MD *md = vt_md(alg);

	return md ? EVP_MD_get_size(md) : -1;
}

int vt_hash_alg(uint16_t alg, const void *a, size_t alen, const void *b,
		size_t blen, uint8_t *out)
{
	const EVP_MD *md = vt_md(alg);
	EVP_MD_CTX *ctx;
	unsigned int n = 0;

	if (!md)
		return -1;
	ctx = EVP_MD_CTX_new();
	if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL) ||
	    (alen && !EVP_DigestUpdate(ctx, a, alen)) ||
	    (blen && !EVP_DigestUpdate(ctx, b, blen)) ||
	    !EVP_DigestFinal_ex(ctx, out, &n)) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	EVP_MD_CTX_free(ctx);
	return n;
}

void vt_sha256(const void *a, size_t alen, const void *b, size_t blen,
	       uint8_t out[32])
{
	vt_hash_alg(VIGIL_ALG_SHA256, a, alen, b, blen, out);
}

void vt_hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = 0;
}

int vt_ecdsa_verify(const uint8_t x[32], const uint8_t y[32],
		    const uint8_t digest[32], const uint8_t r[32],
		    const uint8_t s[32])
{
	uint8_t point[65];
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *kctx = NULL, *vctx = NULL;
	EVP_PKEY *pkey = NULL;
	ECDSA_SIG *sig = NULL;
	unsigned char *der = NULL;
	int derlen, ok = -1;

	point[0] = 4;
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					      point, sizeof(point)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!params || !kctx || EVP_PKEY_fromdata_init(kctx) <= 0 ||
	    EVP_PKEY_fromdata(kctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;

	sig = ECDSA_SIG_new();
	if (!sig || !ECDSA_SIG_set0(sig, BN_bin2bn(r, 32, NULL),
				    BN_bin2bn(s, 32, NULL)))
		goto out;
	derlen = i2d_ECDSA_SIG(sig, &der);
	if (derlen <= 0)
		goto out;
	vctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (!vctx || EVP_PKEY_verify_init(vctx) <= 0)
		goto out;
	ok = EVP_PKEY_verify(vctx, der, derlen, digest, 32) == 1;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(sig);
	EVP_PKEY_CTX_free(vctx);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(kctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return ok;
}
