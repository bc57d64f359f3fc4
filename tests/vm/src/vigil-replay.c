// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-replay - an independent verifier of vigil's log, for the VM tests.
 *
 * Reads the PCRs through tpm2-tss (ESAPI over /dev/tpmrm0), then the whole
 * log from /dev/vigil, and checks, following docs/kernel-module.md:
 *  - record framing and contiguous log seqs;
 *  - replaying pcr_config and pcr_events from the newest BASE record, in
 *    every bank, reaches the TPM's values (the log may run ahead of the
 *    PCR: a prefix must match, IMA's rule);
 *  - every checkpoint: batch continuity, prev_digest chaining, instance id;
 *    its SIGNATURE carries SHA-256(checkpoint) and, when signed, verifies
 *    with OpenSSL against the KEY record's public key (and a flipped bit
 *    does not);
 *  - the KEY record's TPM name matches its public key, MEASURE digests of
 *    the module identity and parameters match their names;
 *  - committed events (LOG_EVENT copies) have unique seqs; with
 *    --chain-complete they are exactly 1..N and the recomputed chain
 *    matches every checkpoint head and GET_INFO's head.
 *
 * usage: vigil-replay [--no-tpm] [--skip-pcr] [--chain-complete] [--min-checkpoints N]
 *                     [--expect-signed] [--expect-sig-status S] [--quiet]
 * Exit status 0 when every check holds; prints "FAIL: ..." otherwise.
 */
#include <getopt.h>
#include <stdbool.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "vtlib.h"

static int failures;
static bool quiet;

#define FAIL(...)                                 \
	do {                                      \
		printf("FAIL: " __VA_ARGS__);     \
		printf("\n");                     \
		failures++;                       \
	} while (0)
#define NOTE(...)                                 \
	do {                                      \
		if (!quiet) {                     \
			printf(__VA_ARGS__);      \
			printf("\n");             \
		}                                 \
	} while (0)

struct tpm_pcrs {
	int nr;
	uint16_t alg[VIGIL_MAX_BANKS];
	uint8_t config[VIGIL_MAX_BANKS][64];
	uint8_t events[VIGIL_MAX_BANKS][64];
};

static int pcr_read_one(ESYS_CONTEXT *esys, uint16_t alg, uint32_t pcr,
			uint8_t *out, int size)
{
	TPML_PCR_SELECTION sel = { .count = 1 };
	TPML_PCR_SELECTION *sel_out = NULL;
	TPML_DIGEST *values = NULL;
	UINT32 counter;
	TSS2_RC rc;
	int ret = -1;

	sel.pcrSelections[0].hash = alg;
	sel.pcrSelections[0].sizeofSelect = 3;
	sel.pcrSelections[0].pcrSelect[pcr / 8] = 1 << (pcr % 8);
	rc = Esys_PCR_Read(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &sel,
			   &counter, &sel_out, &values);
	if (rc != TSS2_RC_SUCCESS) {
		fprintf(stderr, "Esys_PCR_Read(alg 0x%x, %u): 0x%x\n", alg, pcr,
			rc);
		goto out;
	}
	if (values->count != 1 || values->digests[0].size != size) {
		fprintf(stderr, "PCR_Read returned %u digests\n", values->count);
		goto out;
	}
	memcpy(out, values->digests[0].buffer, size);
	ret = 0;
out:
	Esys_Free(sel_out);
	Esys_Free(values);
	return ret;
}

static int read_tpm(const struct vigil_info *info, struct tpm_pcrs *t)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	TSS2_RC rc;
	int ret = -1;

	/* VIGIL_TCTI: another device after a driver rebind (/dev/tpmrm1) */
	rc = Tss2_TctiLdr_Initialize(getenv("VIGIL_TCTI") ? getenv("VIGIL_TCTI") :
				     "device:/dev/tpmrm0", &tcti);
	if (rc != TSS2_RC_SUCCESS) {
		fprintf(stderr, "Tss2_TctiLdr_Initialize: 0x%x\n", rc);
		return -1;
	}
	rc = Esys_Initialize(&esys, tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		fprintf(stderr, "Esys_Initialize: 0x%x\n", rc);
		goto out;
	}
	t->nr = info->nr_banks;
	for (int i = 0; i < t->nr; i++) {
		int size = vt_alg_size(info->bank_alg[i]);

		t->alg[i] = info->bank_alg[i];
		if (size < 0 ||
		    pcr_read_one(esys, t->alg[i], info->pcr_config, t->config[i], size) ||
		    pcr_read_one(esys, t->alg[i], info->pcr_events, t->events[i], size))
			goto out;
	}
	ret = 0;
out:
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	return ret;
}

/* TPM name of the key: 0x000b || SHA-256(TPMT_PUBLIC), as the module made it. */
static void key_name(const struct vigil_log_key *k, uint8_t name[34])
{
	uint8_t pub[2 + 2 + 4 + 2 + 2 + 4 + 2 + 2 + 34 + 34], *p = pub;
	const uint32_t attrs = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) |
			       (1 << 10) | (1 << 18);
#define PUT16(v) do { *p++ = (v) >> 8; *p++ = (v) & 0xff; } while (0)
	PUT16(0x0023);		/* TPM_ALG_ECC */
	PUT16(0x000b);		/* nameAlg SHA-256 */
	PUT16(attrs >> 16);
	PUT16(attrs & 0xffff);
	PUT16(0);		/* authPolicy */
	PUT16(0x0010);		/* symmetric NULL */
	PUT16(0x0018);		/* ECDSA */
	PUT16(0x000b);
	PUT16(0x0003);		/* NIST P-256 */
	PUT16(0x0010);		/* kdf NULL */
	PUT16(32);
	memcpy(p, k->x, 32);
	p += 32;
	PUT16(32);
	memcpy(p, k->y, 32);
	p += 32;
#undef PUT16
	name[0] = 0x00;
	name[1] = 0x0b;
	vt_sha256(pub, p - pub, NULL, 0, name + 2);
}

struct pcr_replay {
	uint8_t cur[64];
	int size;
	bool matched;
	int matched_at;		/* records replayed when it matched */
	int steps;
};

static void replay_step(struct pcr_replay *r, uint16_t alg, const void *rec,
			size_t len, const uint8_t *tpm)
{
	uint8_t d[64];

	vt_hash_alg(alg, rec, len, NULL, 0, d);
	vt_hash_alg(alg, r->cur, r->size, d, r->size, r->cur);
	r->steps++;
	if (!memcmp(r->cur, tpm, r->size)) {
		r->matched = true;
		r->matched_at = r->steps;
	}
}

int main(int argc, char **argv)
{
	bool no_tpm = false, chain_complete = false, expect_signed = false;
	bool skip_pcr = false;
	int min_cps = 0, expect_status = -1;
	static const struct option opts[] = {
		{ "no-tpm", no_argument, NULL, 'n' },
		{ "chain-complete", no_argument, NULL, 'c' },
		{ "min-checkpoints", required_argument, NULL, 'm' },
		{ "expect-signed", no_argument, NULL, 's' },
		{ "expect-sig-status", required_argument, NULL, 'S' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "skip-pcr", no_argument, NULL, 'P' },
		{}
	};
	struct vigil_info info;
	struct tpm_pcrs tpm = {};
	struct vt_log log;
	const struct vigil_log_base *base = NULL;
	const struct vigil_log_key *key = NULL;
	const struct vigil_log_checkpoint *prev_cp = NULL;
	uint8_t zero[32] = {}, chain[32];
	size_t i, ncp = 0, nsigned = 0, nunsigned = 0, nev = 0;
	uint64_t max_ev = 0, *evseqs;
	int fd, opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': no_tpm = true; break;
		case 'c': chain_complete = true; break;
		case 'm': min_cps = atoi(optarg); break;
		case 's': expect_signed = true; break;
		case 'S': expect_status = atoi(optarg); break;
		case 'q': quiet = true; break;
		case 'P': skip_pcr = true; break;
		default:
			fprintf(stderr, "usage: see the header of vigil-replay.c\n");
			return 2;
		}
	}

	fd = vt_open(O_RDONLY);
	if (fd < 0 || vt_info(fd, &info))
		return 1;
	close(fd);
	if (!!(info.tpm_flags & VIGIL_TPM_PRESENT) == no_tpm) {
		FAIL("GET_INFO tpm_flags=0x%x, expected %s", info.tpm_flags,
		     no_tpm ? "no TPM" : "a TPM");
		return 1;
	}
	/* PCRs first, then the log: the log then holds every extended record. */
	if (!no_tpm && !skip_pcr && read_tpm(&info, &tpm)) {
		FAIL("reading PCRs through tpm2-tss");
		return 1;
	}
	if (vt_read_log(&log)) {
		FAIL("reading the log");
		return 1;
	}
	if (!log.nrec) {
		FAIL("empty log");
		return 1;
	}

	/* framing, contiguity, the newest BASE, the KEY */
	for (i = 0; i < log.nrec; i++) {
		const struct vigil_rec_hdr *h = log.rec[i];

		if (i && h->seq != log.rec[i - 1]->seq + 1)
			FAIL("log seq %llu follows %llu", (unsigned long long)h->seq,
			     (unsigned long long)log.rec[i - 1]->seq);
		if (h->version != (h->type == VIGIL_LOG_CHECKPOINT ?
				   VIGIL_CHECKPOINT_VERSION : 1))
			FAIL("record %llu has version %u", (unsigned long long)h->seq,
			     h->version);
		if (h->type == VIGIL_LOG_BASE && h->size == sizeof(*base))
			base = (const void *)h;
		if (h->type == VIGIL_LOG_KEY && h->size == sizeof(*key))
			key = (const void *)h;
	}
	if (!base) {
		FAIL("no BASE record");
		return 1;
	}
	if (base->first_kept_seq > log.rec[0]->seq &&
	    base->first_kept_seq != 1)
		NOTE("base first_kept_seq %llu after the first record read",
		     (unsigned long long)base->first_kept_seq);
	if (log.rec[0]->seq > base->first_kept_seq)
		FAIL("log starts at %llu, after the base's first_kept_seq %llu",
		     (unsigned long long)log.rec[0]->seq,
		     (unsigned long long)base->first_kept_seq);

	/* key */
	if (!no_tpm && (info.tpm_flags & VIGIL_TPM_KEY)) {
		uint8_t name[34];

		if (!key) {
			if (base->first_kept_seq == 1)
				FAIL("TPM key exists but no KEY record");
		} else {
			key_name(key, name);
			if (memcmp(name, key->name, 34))
				FAIL("KEY record name does not match its public key");
			if (memcmp(key->x, info.key_x, 32) || memcmp(key->y, info.key_y, 32))
				FAIL("KEY record differs from GET_INFO's key");
			if (key->pcr != info.pcr_config || key->curve != VIGIL_ECC_NIST_P256 ||
			    key->sig_alg != VIGIL_ALG_ECDSA)
				FAIL("KEY record pcr/curve/alg %u/%u/%u", key->pcr,
				     key->curve, key->sig_alg);
		}
	}

	/* PCR replay in every bank */
	if (!no_tpm && !skip_pcr) {
		if (base->nr_banks != info.nr_banks)
			FAIL("BASE has %u banks, GET_INFO %u", base->nr_banks,
			     info.nr_banks);
		for (int b = 0; b < tpm.nr && b < base->nr_banks; b++) {
			struct pcr_replay cfg = {}, ev = {};
			uint16_t alg = base->bank[b].alg;

			cfg.size = ev.size = vt_alg_size(alg);
			memcpy(cfg.cur, base->bank[b].config, cfg.size);
			memcpy(ev.cur, base->bank[b].events, ev.size);
			cfg.matched = !memcmp(cfg.cur, tpm.config[b], cfg.size);
			ev.matched = !memcmp(ev.cur, tpm.events[b], ev.size);
			for (i = 0; i < log.nrec; i++) {
				const struct vigil_rec_hdr *h = log.rec[i];
				uint32_t pcr = VIGIL_PCR_NONE;

				if (h->seq < base->first_kept_seq)
					continue;
				if (h->type == VIGIL_LOG_MEASURE)
					pcr = ((const struct vigil_log_measure *)h)->pcr;
				else if (h->type == VIGIL_LOG_KEY)
					pcr = ((const struct vigil_log_key *)h)->pcr;
				else if (h->type == VIGIL_LOG_CHECKPOINT &&
					 ((const struct vigil_log_checkpoint *)h)->anchor == VIGIL_ANCHOR_PCR)
					pcr = info.pcr_events;
				if (pcr == info.pcr_config)
					replay_step(&cfg, alg, h, h->size, tpm.config[b]);
				else if (pcr == info.pcr_events)
					replay_step(&ev, alg, h, h->size, tpm.events[b]);
			}
			if (!cfg.matched)
				FAIL("bank 0x%04x: pcr_config replay (%d records) does not reach the TPM value",
				     alg, cfg.steps);
			else if (cfg.matched_at != cfg.steps)
				FAIL("bank 0x%04x: pcr_config matched after %d of %d records",
				     alg, cfg.matched_at, cfg.steps);
			if (!ev.matched)
				FAIL("bank 0x%04x: pcr_events replay (%d records) does not reach the TPM value",
				     alg, ev.steps);
			NOTE("bank 0x%04x: pcr_config %d records, pcr_events matched after %d of %d",
			     alg, cfg.steps, ev.matched_at, ev.steps);
		}
	}

	/* measurements of the module's identity and parameters */
	for (i = 0; i < log.nrec; i++) {
		const struct vigil_log_measure *m = (const void *)log.rec[i];
		uint8_t d[32];

		if (m->hdr.type != VIGIL_LOG_MEASURE ||
		    (m->kind != VIGIL_MEASURE_MODULE && m->kind != VIGIL_MEASURE_PARAMS))
			continue;
		if (strnlen(m->name, sizeof(m->name)) == sizeof(m->name)) {
			FAIL("MEASURE %llu name not terminated", (unsigned long long)m->hdr.seq);
			continue;
		}
		vt_sha256(m->name, strlen(m->name), NULL, 0, d);
		if (memcmp(d, m->digest, 32))
			FAIL("MEASURE %llu digest is not SHA-256 of '%s'",
			     (unsigned long long)m->hdr.seq, m->name);
		if (m->kind == VIGIL_MEASURE_PARAMS) {
			char want[VIGIL_NAME_LEN];

			snprintf(want, sizeof(want), "c=%u e=%u a=%s ms=%u n=%u hb=%u r=%d cap=%llu",
				 info.pcr_config, info.pcr_events,
				 info.anchor == VIGIL_ANCHOR_IMA ? "ima" : "pcr",
				 info.checkpoint_ms, info.checkpoint_events,
				 info.heartbeat_ms, !!(info.tpm_flags & VIGIL_TPM_REQUIRED),
				 (unsigned long long)info.log_max_bytes);
			if (strcmp(want, m->name))
				FAIL("PARAMS measurement '%s', GET_INFO says '%s'", m->name, want);
		}
	}

	/* events: unique seqs */
	evseqs = calloc(log.nrec + 1, sizeof(*evseqs));
	for (i = 0; i < log.nrec; i++) {
		const struct vigil_log_event *le = (const void *)log.rec[i];

		if (le->hdr.type != VIGIL_LOG_EVENT)
			continue;
		if (le->hdr.size != sizeof(*le) || le->ev.hdr.type != VIGIL_EV_USER ||
		    le->ev.hdr.size != sizeof(le->ev) ||
		    !(le->ev.hdr.flags & VIGIL_REC_F_COMMITTED))
			FAIL("malformed LOG_EVENT %llu", (unsigned long long)le->hdr.seq);
		evseqs[nev++] = le->ev.hdr.seq;
		if (le->ev.hdr.seq > max_ev)
			max_ev = le->ev.hdr.seq;
	}
	{
		/* the log copies appear in chain order: strictly increasing */
		for (i = 1; i < nev; i++)
			if (evseqs[i] <= evseqs[i - 1])
				FAIL("event seq %llu after %llu (lost order or duplicate)",
				     (unsigned long long)evseqs[i],
				     (unsigned long long)evseqs[i - 1]);
		if (chain_complete && nev && (evseqs[0] != 1 || evseqs[nev - 1] != nev))
			FAIL("events are not exactly 1..%zu (first %llu, last %llu)", nev,
			     (unsigned long long)evseqs[0],
			     (unsigned long long)evseqs[nev - 1]);
	}

	/* checkpoints, signatures, chain */
	{
		static const char label[] = "vigil-chain-v1";
		/* heads[n] = chain value after event n (events are in seq order) */
		uint8_t (*heads)[32] = calloc(max_ev + 1, 32);
		uint64_t chained = 0;

		vt_sha256(label, 14, info.instance_id, VIGIL_ID_LEN, heads[0]);
		for (i = 0; chain_complete && i < log.nrec; i++) {
			const struct vigil_log_event *le = (const void *)log.rec[i];

			if (le->hdr.type != VIGIL_LOG_EVENT || le->ev.hdr.seq != chained + 1)
				continue;
			vt_sha256(heads[chained], 32, &le->ev, le->ev.hdr.size,
				  heads[chained + 1]);
			chained++;
		}
		memcpy(chain, heads[chained], 32);
		if (chain_complete && info.next_seq == chained + 1 &&
		    memcmp(chain, info.chain_head, 32))
			FAIL("recomputed chain head differs from GET_INFO's");
		for (i = 0; i < log.nrec; i++) {
			const struct vigil_log_checkpoint *cp = (const void *)log.rec[i];
			const struct vigil_log_signature *sig = NULL;
			uint8_t d[32];

			if (cp->hdr.type != VIGIL_LOG_CHECKPOINT)
				continue;
			ncp++;
			vt_sha256(cp, sizeof(*cp), NULL, 0, d);
			if (memcmp(cp->instance_id, info.instance_id, VIGIL_ID_LEN))
				FAIL("checkpoint %llu: foreign instance id",
				     (unsigned long long)cp->hdr.seq);
			if (cp->last_seq + 1 < cp->first_seq)
				FAIL("checkpoint %llu: first %llu > last %llu + 1",
				     (unsigned long long)cp->hdr.seq,
				     (unsigned long long)cp->first_seq,
				     (unsigned long long)cp->last_seq);
			if (prev_cp) {
				uint8_t pd[32];

				vt_sha256(prev_cp, sizeof(*prev_cp), NULL, 0, pd);
				if (memcmp(pd, cp->prev_digest, 32))
					FAIL("checkpoint %llu: prev_digest does not chain",
					     (unsigned long long)cp->hdr.seq);
				if (cp->first_seq != prev_cp->last_seq + 1)
					FAIL("checkpoint %llu: first_seq %llu, previous last %llu",
					     (unsigned long long)cp->hdr.seq,
					     (unsigned long long)cp->first_seq,
					     (unsigned long long)prev_cp->last_seq);
				if (cp->drops_total < prev_cp->drops_total ||
				    cp->busy_total < prev_cp->busy_total)
					FAIL("checkpoint %llu: counters went down",
					     (unsigned long long)cp->hdr.seq);
			} else if (base->first_kept_seq == 1) {
				if (memcmp(cp->prev_digest, zero, 32) || cp->first_seq != 1)
					FAIL("first checkpoint: prev_digest not zero or first_seq %llu",
					     (unsigned long long)cp->first_seq);
			}
			prev_cp = cp;
			if (chain_complete) {
				if (chained < cp->last_seq)
					FAIL("checkpoint %llu covers up to %llu, log has events up to %llu",
					     (unsigned long long)cp->hdr.seq,
					     (unsigned long long)cp->last_seq,
					     (unsigned long long)chained);
				else if (memcmp(heads[cp->last_seq], cp->chain_head, 32))
					FAIL("checkpoint %llu: chain head differs from the recomputed chain",
					     (unsigned long long)cp->hdr.seq);
			}
			for (size_t j = i + 1; j < log.nrec; j++) {
				const struct vigil_log_signature *s = (const void *)log.rec[j];

				if (s->hdr.type == VIGIL_LOG_SIGNATURE &&
				    s->checkpoint_seq == cp->hdr.seq) {
					sig = s;
					break;
				}
			}
			if (!sig) {
				if (i + 1 < log.nrec)
					FAIL("checkpoint %llu has no SIGNATURE record",
					     (unsigned long long)cp->hdr.seq);
				continue;
			}
			if (memcmp(sig->digest, d, 32))
				FAIL("signature %llu: digest is not SHA-256 of checkpoint %llu",
				     (unsigned long long)sig->hdr.seq,
				     (unsigned long long)cp->hdr.seq);
			if (expect_status >= 0 && (int)sig->status != expect_status)
				FAIL("signature %llu: status %u, expected %d",
				     (unsigned long long)sig->hdr.seq, sig->status,
				     expect_status);
			if (sig->status != VIGIL_SIG_OK) {
				nunsigned++;
				if (expect_signed)
					FAIL("checkpoint %llu unsigned: status %u error %d",
					     (unsigned long long)cp->hdr.seq, sig->status,
					     sig->error);
				continue;
			}
			nsigned++;
			{
				const uint8_t *x = key ? key->x : info.key_x;
				const uint8_t *y = key ? key->y : info.key_y;
				uint8_t flipped[32];

				if (vt_ecdsa_verify(x, y, d, sig->r, sig->s) != 1)
					FAIL("checkpoint %llu: ECDSA signature does not verify",
					     (unsigned long long)cp->hdr.seq);
				memcpy(flipped, d, 32);
				flipped[(cp->hdr.seq * 7) % 32] ^= 1 << (cp->hdr.seq % 8);
				if (vt_ecdsa_verify(x, y, flipped, sig->r, sig->s) != 0)
					FAIL("checkpoint %llu: signature verifies over a flipped digest",
					     (unsigned long long)cp->hdr.seq);
			}
		}
		free(heads);
	}
	if ((int)ncp < min_cps)
		FAIL("%zu checkpoints, expected at least %d", ncp, min_cps);

	printf("%s: %zu records (seq %llu-%llu), %zu checkpoints (%zu signed, %zu unsigned), %zu events (max seq %llu), %u banks\n",
	       failures ? "replay FAILED" : "replay ok", log.nrec,
	       (unsigned long long)log.rec[0]->seq,
	       (unsigned long long)log.rec[log.nrec - 1]->seq, ncp, nsigned,
	       nunsigned, nev, (unsigned long long)max_ev, info.nr_banks);
	free(evseqs);
	vt_log_free(&log);
	return failures ? 1 : 0;
}
