#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Replay a TCG Canonical Event Log in its JSON form (CEL-JSON) into PCR values.

An independent check of `vigilctl export-cel`: Python standard library only
(json, hashlib), no code shared with vigil's C++ side. It replays every
record, in recnum order, as a TPM would: pcr[P][bank] = H(pcr[P][bank] ||
digest), and prints the resulting value of every PCR and bank.

Checked on the way (any failure: exit 3):
  - the document is an array of records with recnum 0, 1, 2, ... (a dropped
    or reordered record shows), each with an integer "pcr" 0..23, "digests"
    [{"hashAlg", "digest"}] with known algorithms and digest-sized hex, and
    "content_type";
  - every record that extends a PCR lists the same banks as the PCR's first;
  - content_type "vigil" (vigil's records): each digest is H_bank(record),
    the record's header says its size and log seq; a "base" record extends
    nothing and gives the PCR's start values (content.pcr_start), before any
    extend of that PCR;
  - content_type "ima_template": the SHA-1 digest is SHA-1 of what IMA
    hashed and every other bank's digest the bank's hash of it (all 0xff for
    a violation); the template data's fields are well formed.
Records of other content types are replayed unverified (counted on stderr).

With --expect PCR:ALG=HEX (repeatable) or --pcrread FILE (the output of
`tpm2_pcrread`), the replayed values are compared: exit 1 on a difference.

Exit codes: 0 replayed (and every expected value matched), 1 a PCR differs
from an expected value, 2 usage error, 3 malformed or inconsistent CEL.
"""

import argparse
import hashlib
import json
import re
import sys

# TPM_ALG_ID and CEL-JSON names of the banks a PC client TPM has.
ALGS = {"sha1": 0x0004, "sha256": 0x000B, "sha384": 0x000C, "sha512": 0x000D}
ALG_BY_ID = {v: k for k, v in ALGS.items()}
SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}
PCR_MAX = 23
LEGACY_NAME_MAX = 256  # IMA_EVENT_NAME_LEN_MAX + 1


class CelError(Exception):
    """The CEL is malformed or contradicts itself."""


def hash_of(alg, data):
    return hashlib.new(alg, data).digest()


def parse_hex(value, what):
    if not isinstance(value, str) or len(value) % 2 or not re.fullmatch(r"[0-9a-fA-F]*", value):
        raise CelError(f"{what}: not a hex string")
    return bytes.fromhex(value)


def alg_name(value, what):
    if isinstance(value, bool):
        raise CelError(f"{what}: hashAlg {value!r}")
    if isinstance(value, int):
        if value not in ALG_BY_ID:
            raise CelError(f"{what}: hashAlg {value:#06x} is not supported")
        return ALG_BY_ID[value]
    if isinstance(value, str) and value.lower() in ALGS:
        return value.lower()
    raise CelError(f"{what}: hashAlg {value!r} is not supported")


def parse_digests(value, what):
    if not isinstance(value, list):
        raise CelError(f"{what}: digests is not an array")
    out = {}
    for i, d in enumerate(value):
        if not isinstance(d, dict):
            raise CelError(f"{what}: digests[{i}] is not an object")
        alg = alg_name(d.get("hashAlg"), f"{what} digests[{i}]")
        digest = parse_hex(d.get("digest"), f"{what} digests[{i}]")
        if len(digest) != SIZES[alg]:
            raise CelError(f"{what}: {alg} digest of {len(digest)} bytes")
        if alg in out:
            raise CelError(f"{what}: two {alg} digests")
        out[alg] = digest
    return out


def check_vigil(rec, what, digests):
    """vigil's own record: the digests are H_bank(record). Returns pcr_start or None."""
    content = rec.get("content")
    if not isinstance(content, dict):
        raise CelError(f"{what}: vigil content is not an object")
    record = parse_hex(content.get("record"), f"{what} content.record")
    if len(record) < 32:
        raise CelError(f"{what}: vigil record of {len(record)} bytes is shorter than its header")
    # struct vigil_rec_hdr: u16 type, u16 version, u32 size, u64 seq, ... (little endian)
    size = int.from_bytes(record[4:8], "little")
    seq = int.from_bytes(record[8:16], "little")
    if size != len(record):
        raise CelError(f"{what}: vigil record header says {size} bytes, it has {len(record)}")
    if content.get("log_seq") != seq:
        raise CelError(f"{what}: log_seq {content.get('log_seq')!r}, the record says {seq}")
    rtype = int.from_bytes(record[0:2], "little")
    want_type = {"base": 0x8006, "measure": 0x8001, "key": 0x8002, "checkpoint": 0x8003}
    if want_type.get(content.get("record_type")) != rtype:
        raise CelError(f"{what}: record_type {content.get('record_type')!r} but the record is "
                       f"of type {rtype:#06x}")
    if content.get("record_type") == "base":
        if digests:
            raise CelError(f"{what}: a base record extends nothing, it lists digests")
        start = parse_digests(content.get("pcr_start"), f"{what} content.pcr_start")
        if not start:
            raise CelError(f"{what}: base record without start values")
        return start
    for alg, digest in digests.items():
        if hash_of(alg, record) != digest:
            raise CelError(f"{what}: {alg} digest is not the hash of the vigil record")
    return None


def ima_hashed(name, data, what):
    """What IMA hashed for an entry of template `name` with template data `data`."""
    if name == "ima":
        # d (20 bytes), u32 strlen(n), n; hashed as d || n padded to 256 bytes.
        if len(data) < 24:
            raise CelError(f"{what}: legacy ima template data of {len(data)} bytes")
        n_len = int.from_bytes(data[20:24], "little")
        if n_len >= LEGACY_NAME_MAX or 24 + n_len != len(data):
            raise CelError(f"{what}: legacy ima event name length {n_len}")
        return (data[:20] + data[24:]).ljust(20 + LEGACY_NAME_MAX, b"\0")
    at = 0
    while at < len(data):  # fields: u32 length (little endian) + bytes
        if len(data) - at < 4:
            raise CelError(f"{what}: template field cut short")
        n = int.from_bytes(data[at:at + 4], "little")
        at += 4 + n
        if at > len(data):
            raise CelError(f"{what}: template field overruns the data")
    return data


def check_ima(rec, what, digests):
    content = rec.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("template_name"), str):
        raise CelError(f"{what}: ima_template content needs template_name and template_data")
    data = parse_hex(content.get("template_data"), f"{what} content.template_data")
    hashed = ima_hashed(content["template_name"], data, what)
    if digests and all(d == b"\xff" * len(d) for d in digests.values()):
        return True  # a violation: IMA extends all ones, the data proves nothing
    for alg, digest in digests.items():
        if hash_of(alg, hashed) != digest:
            raise CelError(f"{what}: {alg} digest is not the hash of the template data")
    return False


def replay(doc):
    if not isinstance(doc, list):
        raise CelError("a CEL-JSON log is an array of records")
    pcrs = {}       # pcr -> {alg: value}
    banks = {}      # pcr -> set of algs its records list
    stats = {"records": 0, "unverified": 0, "violations": 0}
    for i, rec in enumerate(doc):
        what = f"record {i}"
        if not isinstance(rec, dict):
            raise CelError(f"{what}: not an object")
        recnum = rec.get("recnum")
        if isinstance(recnum, bool) or not isinstance(recnum, int) or recnum != i:
            raise CelError(f"{what}: recnum {recnum!r}, expected {i}: a record is missing or "
                           "out of order")
        what = f"recnum {i}"
        if "nv_index" in rec:
            raise CelError(f"{what}: NV index records are not replayed here")
        pcr = rec.get("pcr")
        if isinstance(pcr, bool) or not isinstance(pcr, int) or not 0 <= pcr <= PCR_MAX:
            raise CelError(f"{what}: pcr {pcr!r}")
        digests = parse_digests(rec.get("digests"), what)
        ctype = rec.get("content_type")
        if not isinstance(ctype, str):
            raise CelError(f"{what}: content_type {ctype!r}")
        start = None
        if ctype == "vigil":
            start = check_vigil(rec, what, digests)
        elif ctype == "ima_template":
            stats["violations"] += check_ima(rec, what, digests)
        else:
            stats["unverified"] += 1
        stats["records"] += 1
        if start is not None:
            if pcr in pcrs:
                raise CelError(f"{what}: start values for PCR {pcr} after it was extended")
            pcrs[pcr] = dict(start)
            banks[pcr] = set(start)
            continue
        if not digests:
            raise CelError(f"{what}: extends PCR {pcr} with no digest")
        if pcr not in banks:
            banks[pcr] = set(digests)
            pcrs.setdefault(pcr, {})
        if set(digests) != banks[pcr]:
            raise CelError(f"{what}: banks {sorted(digests)}, PCR {pcr}'s records list "
                           f"{sorted(banks[pcr])}")
        values = pcrs[pcr]
        for alg, digest in digests.items():
            old = values.get(alg, b"\0" * SIZES[alg])
            values[alg] = hash_of(alg, old + digest)
    return pcrs, stats


def parse_expect(items):
    out = {}
    for item in items:
        m = re.fullmatch(r"(\d+):(\w+)=(?:0x)?([0-9a-fA-F]+)", item)
        if not m or int(m.group(1)) > PCR_MAX or m.group(2).lower() not in ALGS:
            raise ValueError(f"--expect {item!r}: want PCR:ALG=HEX (e.g. 16:sha256=ab..)")
        out[(int(m.group(1)), m.group(2).lower())] = bytes.fromhex(m.group(3))
    return out


def parse_pcrread(text):
    """tpm2_pcrread's output: '  sha256:' lines, then '    10: 0x<HEX>' lines."""
    out = {}
    alg = None
    for line in text.splitlines():
        m = re.fullmatch(r"\s*(\w+):\s*", line)
        if m:
            alg = m.group(1).lower()
            continue
        m = re.fullmatch(r"\s*(\d+)\s*:\s*0x([0-9a-fA-F]+)\s*", line)
        if m and alg in ALGS:
            out[(int(m.group(1)), alg)] = bytes.fromhex(m.group(2))
        elif line.strip():
            raise ValueError(f"not tpm2_pcrread output: {line.strip()[:60]!r}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cel", help="CEL-JSON file ('-' for stdin)")
    ap.add_argument("--expect", action="append", default=[], metavar="PCR:ALG=HEX",
                    help="an expected PCR value (repeatable)")
    ap.add_argument("--pcrread", metavar="FILE", help="expected values: tpm2_pcrread's output")
    ap.add_argument("--json", action="store_true", help="print {pcr: {alg: hex}} as JSON")
    args = ap.parse_args()
    try:
        expected = parse_expect(args.expect)
        if args.pcrread:
            with open(args.pcrread, encoding="utf-8") as f:
                expected.update(parse_pcrread(f.read()))
    except (OSError, ValueError) as e:
        print(f"cel_replay: {e}", file=sys.stderr)
        return 2
    try:
        if args.cel == "-":
            doc = json.load(sys.stdin)
        else:
            with open(args.cel, encoding="utf-8") as f:
                doc = json.load(f)
    except OSError as e:
        print(f"cel_replay: {e}", file=sys.stderr)
        return 2
    except (ValueError, RecursionError) as e:
        print(f"cel_replay: not JSON: {e}", file=sys.stderr)
        return 3
    try:
        pcrs, stats = replay(doc)
    except CelError as e:
        print(f"cel_replay: {e}", file=sys.stderr)
        return 3

    order = list(ALGS)
    if args.json:
        print(json.dumps({str(p): {a: pcrs[p][a].hex() for a in order if a in pcrs[p]}
                          for p in sorted(pcrs)}, indent=2))
    else:
        for p in sorted(pcrs):
            for a in order:
                if a in pcrs[p]:
                    print(f"pcr {p} {a} {pcrs[p][a].hex()}")
    print(f"cel_replay: {stats['records']} records, {stats['unverified']} of unknown content "
          f"types replayed unverified, {stats['violations']} IMA violations", file=sys.stderr)
    bad = 0
    for (p, a), want in sorted(expected.items()):
        got = pcrs.get(p, {}).get(a)
        if got != want:
            bad += 1
            print(f"cel_replay: MISMATCH PCR {p} {a}: CEL replays to "
                  f"{got.hex() if got else 'nothing'}, expected {want.hex()}", file=sys.stderr)
    if expected:
        print(f"cel_replay: {len(expected) - bad} of {len(expected)} expected PCR values match",
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
