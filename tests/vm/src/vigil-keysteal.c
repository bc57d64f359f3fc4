// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-keysteal - play a root attacker who has read the module's key
 * secrets from kernel memory (with vigil-kread): recreate the checkpoint
 * key in the TPM and sign with it, as the module would.
 *
 *   vigil-keysteal addrs
 *     Prints "key_auth ADDR" and "key_unique ADDR" (hex): where
 *     vigil.tpm.key_auth and vigil.tpm.key_unique are, from the address
 *     /proc/kallsyms gives for the module's global `struct vigil` and the
 *     member offsets in the module's BTF (/sys/kernel/btf/vigil).
 *
 *   vigil-keysteal create AUTH_HEX UNIQUE_HEX
 *     TPM2_CreatePrimary under the owner hierarchy with the module's
 *     template (kmod/tpm.c: ECC P-256, ECDSA-SHA256, fixedTPM |
 *     fixedParent | sensitiveDataOrigin | userWithAuth | noDA | sign,
 *     unique.x = UNIQUE, userAuth = AUTH), then one Sign with AUTH.
 *     Prints "x HEX", "y HEX" and "signed": the same x and y as the
 *     module's KEY record mean the attacker holds the module's key.
 *
 * Exit codes: 0 done, 1 error, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#define SECRET_LEN 32

/* Byte offset of member @name in struct/union @id of @btf, or -1. */
static long member_off(const struct btf *btf, __u32 id, const char *name,
		       __u32 *type)
{
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_member *m;
	int i;

	if (!t || !btf_is_composite(t))
		return -1;
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		if (strcmp(btf__name_by_offset(btf, m->name_off), name))
			continue;
		if (type)
			*type = m->type;
		return btf_member_bit_offset(t, i) / 8;
	}
	return -1;
}

/* Address of the module's `vigil` object in /proc/kallsyms, or 0. */
static unsigned long long vigil_addr(void)
{
	unsigned long long addr, found = 0;
	char line[512], name[128], mod[64];
	FILE *f = fopen("/proc/kallsyms", "r");
	char type;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %127s %63s", &addr, &type, name, mod) == 4 &&
		    !strcmp(name, "vigil") && !strcmp(mod, "[vigil]")) {
			found = addr;
			break;
		}
	}
	fclose(f);
	return found;
}

static int addrs(void)
{
	unsigned long long base = vigil_addr();
	struct btf *vmlinux = btf__load_vmlinux_btf();
	struct btf *mod;
	long tpm, auth, uniq;
	__u32 tpm_type = 0;
	int id;

	if (!vmlinux) {
		fprintf(stderr, "vigil-keysteal: no vmlinux BTF\n");
		return 1;
	}
	mod = btf__parse_split("/sys/kernel/btf/vigil", vmlinux);
	if (!mod) {
		fprintf(stderr, "vigil-keysteal: no module BTF (is vigil.ko loaded?)\n");
		return 1;
	}
	id = btf__find_by_name_kind(mod, "vigil", BTF_KIND_STRUCT);
	tpm = id > 0 ? member_off(mod, id, "tpm", &tpm_type) : -1;
	auth = tpm >= 0 ? member_off(mod, tpm_type, "key_auth", NULL) : -1;
	uniq = tpm >= 0 ? member_off(mod, tpm_type, "key_unique", NULL) : -1;
	if (auth < 0 || uniq < 0) {
		fprintf(stderr, "vigil-keysteal: struct vigil.tpm.key_{auth,unique} not in BTF\n");
		return 1;
	}
	if (!base) {
		fprintf(stderr, "vigil-keysteal: no 'vigil [vigil]' in /proc/kallsyms\n");
		return 1;
	}
	printf("key_auth %llx\nkey_unique %llx\n", base + tpm + auth, base + tpm + uniq);
	btf__free(mod);
	btf__free(vmlinux);
	return 0;
}

static int unhex(const char *s, BYTE *out)
{
	int i;

	if (strlen(s) != 2 * SECRET_LEN)
		return -1;
	for (i = 0; i < SECRET_LEN; i++) {
		if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1)
			return -1;
	}
	return 0;
}

static void print_hex(const char *label, const BYTE *p, size_t n)
{
	printf("%s ", label);
	while (n--)
		printf("%02x", *p++);
	printf("\n");
}

static int create(const char *auth_hex, const char *unique_hex)
{
	TPM2B_SENSITIVE_CREATE sens = { .sensitive.userAuth.size = SECRET_LEN };
	TPM2B_PUBLIC tmpl = {
		.publicArea = {
			.type = TPM2_ALG_ECC,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					    TPMA_OBJECT_SENSITIVEDATAORIGIN |
					    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA |
					    TPMA_OBJECT_SIGN_ENCRYPT,
			.parameters.eccDetail = {
				.symmetric.algorithm = TPM2_ALG_NULL,
				.scheme = { .scheme = TPM2_ALG_ECDSA,
					    .details.ecdsa.hashAlg = TPM2_ALG_SHA256 },
				.curveID = TPM2_ECC_NIST_P256,
				.kdf.scheme = TPM2_ALG_NULL,
			},
			.unique.ecc.x.size = SECRET_LEN,
		},
	};
	TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL };
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_DIGEST digest = { .size = 32 };
	TPM2B_AUTH auth = { .size = SECRET_LEN };
	TPM2B_PUBLIC *pub = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	TPML_PCR_SELECTION pcrs = {};
	ESYS_CONTEXT *esys = NULL;
	TPM2B_DATA outside = {};
	ESYS_TR key = ESYS_TR_NONE;
	TSS2_RC rc;
	int ret = 1;

	if (unhex(auth_hex, auth.buffer) ||
	    unhex(unique_hex, tmpl.publicArea.unique.ecc.x.buffer)) {
		fprintf(stderr, "vigil-keysteal: secrets must be %d hex bytes each\n", SECRET_LEN);
		return 2;
	}
	memcpy(sens.sensitive.userAuth.buffer, auth.buffer, SECRET_LEN);
	rc = Tss2_TctiLdr_Initialize("device:/dev/tpmrm0", &tcti);
	if (rc) {
		fprintf(stderr, "vigil-keysteal: TctiLdr: 0x%x\n", rc);
		return 1;
	}
	rc = Esys_Initialize(&esys, tcti, NULL);
	if (rc) {
		fprintf(stderr, "vigil-keysteal: Esys_Initialize: 0x%x\n", rc);
		goto out_tcti;
	}
	rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &key, &pub,
				NULL, NULL, NULL);
	if (rc) {
		fprintf(stderr, "vigil-keysteal: CreatePrimary: 0x%x\n", rc);
		goto out_esys;
	}
	print_hex("x", pub->publicArea.unique.ecc.x.buffer, pub->publicArea.unique.ecc.x.size);
	print_hex("y", pub->publicArea.unique.ecc.y.buffer, pub->publicArea.unique.ecc.y.size);
	rc = Esys_TR_SetAuth(esys, key, &auth);
	if (!rc) {
		memset(digest.buffer, 0x5a, sizeof(digest.buffer));
		rc = Esys_Sign(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
			       &digest, &scheme, &ticket, &sig);
	}
	if (rc) {
		fprintf(stderr, "vigil-keysteal: Sign with the stolen auth: 0x%x\n", rc);
		goto out_flush;
	}
	printf("signed\n");
	ret = 0;
out_flush:
	Esys_Free(sig);
	Esys_Free(pub);
	Esys_FlushContext(esys, key);
out_esys:
	Esys_Finalize(&esys);
out_tcti:
	Tss2_TctiLdr_Finalize(&tcti);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "addrs"))
		return addrs();
	if (argc == 4 && !strcmp(argv[1], "create"))
		return create(argv[2], argv[3]);
	fprintf(stderr, "usage: vigil-keysteal addrs | create AUTH_HEX UNIQUE_HEX\n");
	return 2;
}
