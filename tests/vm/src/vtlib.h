/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtlib.h - helpers shared by the guest test programs: /dev/vigil access,
 * reading the whole log, SHA-256, hex output.
 */
#ifndef VIGIL_VTLIB_H
#define VIGIL_VTLIB_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "vigil.h"

struct vt_log {
	uint8_t *buf;		/* all records, back to back */
	size_t len;
	size_t nrec;
	struct vigil_rec_hdr **rec;	/* pointers into buf */
};

int vt_open(int flags);
int vt_info(int fd, struct vigil_info *info);
/* Read every record available now (non-blocking) from a fresh fd. */
int vt_read_log(struct vt_log *log);
/* Read from an open fd until EAGAIN; appends to log. */
int vt_read_more(int fd, struct vt_log *log);
void vt_log_free(struct vt_log *log);
void vt_sha256(const void *a, size_t alen, const void *b, size_t blen,
	       uint8_t out[32]);
void vt_hex(char *out, const uint8_t *p, size_t n);
/* Hash with a TPM algorithm id (sha1/256/384/512); returns digest size. */
int vt_hash_alg(uint16_t alg, const void *a, size_t alen, const void *b,
		size_t blen, uint8_t *out);
int vt_alg_size(uint16_t alg);
/* ECDSA P-256 verify of a SHA-256 digest with raw x, y, r, s. 1 = valid. */
int vt_ecdsa_verify(const uint8_t x[32], const uint8_t y[32],
		    const uint8_t digest[32], const uint8_t r[32],
		    const uint8_t s[32]);

#endif
