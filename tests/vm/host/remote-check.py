#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Holds the host verifier's verdict stream against the phases the guest
marked (tests/vm/host/remote.sh) and prints one VMTEST CHECK line per
remote verdict the "remote" scenario expects, with the time it took.

  marks.txt       "<unix time> <phase>" lines, stamped on the host
  verdicts.jsonl  vigil-verifier serve's stdout (verdict, refused,
                  overdue, attested events)
"""
import argparse
import json
import sys


def check(name, ok, detail):
    ok = bool(ok)
    detail = " ".join(str(detail).split())[:300]
    print(f"VMTEST: CHECK {name} {'PASS' if ok else 'FAIL'} {detail}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deadline", type=int, required=True)
    ap.add_argument("marks")
    ap.add_argument("verdicts")
    ap.add_argument("stderr")
    a = ap.parse_args()

    marks = {}
    order = []
    with open(a.marks) as f:
        for line in f:
            t, _, name = line.strip().partition(" ")
            if name and name not in marks:
                marks[name] = int(t)
                order.append(name)
    events = []
    bad_lines = 0
    with open(a.verdicts) as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except ValueError:
                bad_lines += 1

    def window(start, end):
        t0 = marks.get(start)
        if t0 is None:
            return None
        nxt = order[order.index(start) + 1:] if start in order else []
        t1 = marks.get(end) if end else None
        if t1 is None and nxt:
            t1 = marks[nxt[0]]
        # Both ends inclusive: the guest marks the next phase as soon as it
        # sees this phase's verdict, often within the same second.
        return [e for e in events if t0 <= e.get("time_unix", 0) and (t1 is None or e["time_unix"] <= t1)], t0

    def verdicts(evs, trusted):
        return [e for e in evs if e.get("event") == "verdict" and e.get("trusted") is trusted]

    ok = True
    with open(a.stderr) as f:
        err_tail = " | ".join(f.read().strip().splitlines()[-3:])
    ok &= check("remote-verdict-stream", bad_lines == 0 and len(events) > 0,
                f"{len(events)} JSON lines from the host verifier, {bad_lines} malformed; stderr: {err_tail}")

    expected = ["verifier-start", "pcr-reset", "kill-vigild", "vigild-restart", "producer-detach",
                "reload", "end"]
    missing = [m for m in expected if m not in marks]
    ok &= check("remote-phases", not missing,
                f"phases marked: {' '.join(order)}" + (f"; missing: {' '.join(missing)}" if missing else ""))

    def phase(name, start, end, test):
        w = window(start, end)
        if w is None:
            return check(name, False, f"phase {start} never started")
        evs, t0 = w
        passed, detail = test(evs, t0)
        return check(name, passed, detail)

    def trusted_only(evs, t0):
        good, badv = verdicts(evs, True), verdicts(evs, False)
        over = [e for e in evs if e.get("event") == "overdue"]
        return (len(good) >= 1 and not badv and not over,
                f"{len(good)} trusted, {len(badv)} untrusted, {len(over)} overdue"
                + (f"; first untrusted: {badv[0].get('reasons')}" if badv else ""))

    def first_after(evs, t0, pred, what):
        hit = next((e for e in evs if pred(e)), None)
        if hit is None:
            kinds = sorted({e.get("event") for e in evs})
            last = [(e.get("time_unix", 0) - t0, e.get("event")) for e in events[-3:]]
            return False, f"no {what} (events seen: {kinds}; untrusted reasons: " \
                          f"{[e.get('reasons') for e in verdicts(evs, False)][:2]}; " \
                          f"marks {marks}; last events (s after the phase) {last})"
        return True, f"{what} {hit['time_unix'] - t0} s after the phase began: " \
                     f"{json.dumps({k: hit[k] for k in hit if k in ('reasons', 'last_trusted_unix', 'overdue_for_s', 'deadline_s')})}"

    ok &= phase("remote-trusted", "verifier-start", "pcr-reset", trusted_only)
    ok &= phase("remote-pcr-reset-harmless", "pcr-reset", "kill-vigild", trusted_only)

    def overdue_in_time(evs, t0):
        passed, detail = first_after(evs, t0, lambda e: e.get("event") == "overdue", "overdue")
        hit = next((e for e in evs if e.get("event") == "overdue"), None)
        bound = a.deadline + 20
        if hit and hit["time_unix"] - t0 > bound:
            return False, detail + f" (later than the stated {bound} s)"
        return passed, detail + f" (deadline {a.deadline} s, bound {bound} s)"
    ok &= phase("remote-kill-vigild-overdue", "kill-vigild", "vigild-restart", overdue_in_time)
    # A restarted collector seals the same producer set again (a reseal,
    # the liveness counts carried across it) and reads what was kept while
    # it was dead: trusted again, never untrusted on the way.
    def trusted_again(evs, t0):
        passed, detail = first_after(evs, t0, lambda e: e.get("event") == "verdict" and e["trusted"],
                                     "trusted")
        # Only while its window is open (loading the programs takes seconds
        # under TCG) may a round end undecided, with that reason alone.
        first_good = next((e for e in evs if e.get("event") == "verdict" and e["trusted"]), None)
        until = first_good["time_unix"] if first_good else float("inf")
        badv = [e for e in verdicts(evs, False) if e["time_unix"] <= until]
        other = [e for e in badv
                 if not all("window is open at the newest checkpoint" in r for r in e.get("reasons", []))]
        if other:
            return False, detail + f"; untrusted on the way: {other[0].get('reasons')}"
        return passed, detail + f" ({len(badv)} rounds ended inside the collector's producer window)"
    ok &= phase("remote-vigild-restart-trusted", "vigild-restart", "producer-detach", trusted_again)
    ok &= phase("remote-producer-detach-untrusted", "producer-detach", "reload",
                lambda evs, t0: first_after(
                    evs, t0, lambda e: e.get("event") == "verdict" and not e["trusted"] and
                    any("producer_silent" in r for r in e.get("reasons", [])),
                    "untrusted (producer_silent)"))
    ok &= phase("remote-reload-untrusted", "reload", "end",
                lambda evs, t0: first_after(
                    evs, t0, lambda e: e.get("event") == "verdict" and not e["trusted"] and
                    any("never verified" in r for r in e.get("reasons", [])),
                    "untrusted (old instance's tail never verified)"))
    # The CHECK lines carry the outcome; a non-zero exit means this script
    # could not judge (vm-test then fails the boot).
    return 0


if __name__ == "__main__":
    sys.exit(main())
