// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-tpm-coexist - user-space TPM users keep working next to vigil.ko.
 *
 *  1. Through the raw /dev/tpm0 (no resource manager), the TPM holds no
 *     transient object between checkpoints: the module's key is loaded only
 *     for the length of one signature.
 *  2. Through /dev/tpmrm0, three ECC keys are created and held (swtpm has
 *     three transient slots) and used to sign repeatedly while another
 *     thread forces checkpoints: every user signature and every checkpoint
 *     signature succeeds.
 *  3. Again no transient object is left in the TPM.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "vtlib.h"

static atomic_int stop;
static atomic_int cp_ok, cp_bad;

static int esys_open(const char *conf, ESYS_CONTEXT **esys,
		     TSS2_TCTI_CONTEXT **tcti)
{
	TSS2_RC rc = Tss2_TctiLdr_Initialize(conf, tcti);

	if (rc) {
		fprintf(stderr, "TctiLdr(%s): 0x%x\n", conf, rc);
		return -1;
	}
	rc = Esys_Initialize(esys, *tcti, NULL);
	if (rc) {
		fprintf(stderr, "Esys_Initialize: 0x%x\n", rc);
		Tss2_TctiLdr_Finalize(tcti);
		return -1;
	}
	return 0;
}

static void esys_close(ESYS_CONTEXT **esys, TSS2_TCTI_CONTEXT **tcti)
{
	Esys_Finalize(esys);
	Tss2_TctiLdr_Finalize(tcti);
}

/* Transient objects loaded in the TPM, seen without a resource manager. */
static int count_transient(void)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;
	int n = -1;

	if (esys_open("device:/dev/tpm0", &esys, &tcti))
		return -1;
	rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_HANDLES, TPM2_TRANSIENT_FIRST, 16,
				&more, &cap);
	if (rc == TSS2_RC_SUCCESS)
		n = cap->data.handles.count;
	else
		fprintf(stderr, "GetCapability: 0x%x\n", rc);
	Esys_Free(cap);
	esys_close(&esys, &tcti);
	return n;
}

static void *checkpointer(void *arg)
{
	int fd = vt_open(O_RDWR);

	(void)arg;
	while (fd >= 0 && !atomic_load(&stop)) {
		struct vigil_checkpoint_req *r = calloc(1, sizeof(*r));

		r->size = sizeof(*r);
		if (ioctl(fd, VIGIL_IOC_CHECKPOINT, r) == 0 &&
		    r->sig.status == VIGIL_SIG_OK)
			atomic_fetch_add(&cp_ok, 1);
		else
			atomic_fetch_add(&cp_bad, 1);
		free(r);
		usleep(2000);
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

int main(void)
{
	TPM2B_SENSITIVE_CREATE sens = {};
	TPM2B_PUBLIC tmpl = {
		.publicArea = {
			.type = TPM2_ALG_ECC,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					    TPMA_OBJECT_SENSITIVEDATAORIGIN |
					    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_SIGN_ENCRYPT,
			.parameters.eccDetail = {
				.symmetric.algorithm = TPM2_ALG_NULL,
				.scheme = { .scheme = TPM2_ALG_ECDSA,
					    .details.ecdsa.hashAlg = TPM2_ALG_SHA256 },
				.curveID = TPM2_ECC_NIST_P256,
				.kdf.scheme = TPM2_ALG_NULL,
			},
		},
	};
	TPM2B_DATA outside = {};
	TPML_PCR_SELECTION pcrs = {};
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR keys[3];
	pthread_t th;
	int n, fail = 0, signs = 0;

	n = count_transient();
	printf("transient objects before: %d\n", n);
	if (n != 0) {
		printf("FAIL: %d transient objects in the TPM (module holds a slot?)\n", n);
		fail = 1;
	}
	if (esys_open("device:/dev/tpmrm0", &esys, &tcti))
		return 1;
	for (int i = 0; i < 3; i++) {
		TSS2_RC rc;

		tmpl.publicArea.unique.ecc.x.size = 1;
		tmpl.publicArea.unique.ecc.x.buffer[0] = i;
		rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
					ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
					&outside, &pcrs, &keys[i], NULL, NULL,
					NULL, NULL);
		if (rc) {
			printf("FAIL: CreatePrimary %d: 0x%x\n", i, rc);
			return 1;
		}
	}
	pthread_create(&th, NULL, checkpointer, NULL);
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 3; i++) {
			TPM2B_DIGEST dg = { .size = 32 };
			TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
			TPMT_TK_HASHCHECK ticket = { .tag = TPM2_ST_HASHCHECK,
						     .hierarchy = TPM2_RH_NULL };
			TPMT_SIGNATURE *sig = NULL;
			TSS2_RC rc;

			memset(dg.buffer, round * 3 + i, 32);
			rc = Esys_Sign(esys, keys[i], ESYS_TR_PASSWORD, ESYS_TR_NONE,
				       ESYS_TR_NONE, &dg, &scheme, &ticket, &sig);
			if (rc) {
				printf("FAIL: user Sign with key %d: 0x%x\n", i, rc);
				fail = 1;
			} else {
				signs++;
			}
			Esys_Free(sig);
		}
	}
	usleep(50000);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	for (int i = 0; i < 3; i++)
		Esys_FlushContext(esys, keys[i]);
	esys_close(&esys, &tcti);

	printf("user signatures: %d of 30; checkpoints: %d signed, %d not\n", signs,
	       atomic_load(&cp_ok), atomic_load(&cp_bad));
	if (atomic_load(&cp_bad) || atomic_load(&cp_ok) == 0) {
		printf("FAIL: checkpoints not all signed while user keys were held\n");
		fail = 1;
	}
	n = count_transient();
	printf("transient objects after: %d\n", n);
	if (n != 0) {
		printf("FAIL: %d transient objects left in the TPM\n", n);
		fail = 1;
	}
	printf("%s\n", fail ? "coexist FAILED" : "coexist ok");
	return fail;
}
