#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Summarise the raw lines of several benchmark runs as one table.

    bench/table.py TARGETS [LINES...]     (LINES: files; standard input if none)

Reads the "bench: <name> n=<n>[ d=<d>][ <extra>] ns_per_op=<x> checksum=<hex>
[<field>=<n> ...]" lines of vmres-bench and vmres-demo --bench (other lines are ignored). The k-th
line of a workload belongs to run k. For each workload it prints the lowest
and the median ns_per_op over the runs, its target from TARGETS (bench/targets,
format described there and in bench/WORKLOADS.md), whether the target is met,
the spread (slowest run / fastest run) and whether the checksums are right.

Met: "yes" when the lowest and the median both meet the target, "lowest" when
only the lowest does (a noisy host), "no" when neither. A ratio target ("2x
<key>") is judged on the ratios of the two lines within each run.

Exit status: 0, or 1 if a checksum is wrong or differs between runs.
"""
import statistics
import sys


def parse_line(line):
    """(key, ns_per_op, checksum, {field: value}) of a result line, or None.
    Fields after the checksum ("mem_bytes=<n>") are measurements, not key."""
    words = line.split()
    if len(words) < 4 or words[0] != "bench:":
        return None
    at = next((i for i, w in enumerate(words) if w.startswith("ns_per_op=")), None)
    if at is None or at + 1 >= len(words) or not words[at + 1].startswith("checksum="):
        return None
    fields = {}
    for w in words[at + 2:]:
        name, sep, value = w.partition("=")
        try:
            fields[name] = float(value) if sep else None
        except ValueError:
            return None
    key = " ".join(words[1:at])
    return (key, float(words[at].split("=", 1)[1]), words[at + 1].split("=", 1)[1],
            fields)


def parse_targets(path):
    """{key: [target, ...]} and {key: checksum}, in file order."""
    targets, checksums = {}, {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split("|")]
            if len(fields) != 3:
                sys.exit(f"{path}:{number}: expected 'key | target | checksum'")
            key, target, checksum = fields
            key = " ".join(key.split())
            targets.setdefault(key, [])
            if target != "-":
                targets[key].append(parse_target(path, number, target))
            if checksum != "-":
                checksums[key] = checksum
    return targets, checksums


def parse_target(path, number, text):
    """("abs", bound, None), ("ratio", factor, reference key) or ("field", bound,
    field name) for "<field> N": the field after the checksum at most N."""
    words = text.split()
    try:
        if len(words) == 1:
            return ("abs", float(words[0]), None)
        if len(words) == 2 and words[0].endswith("_bytes"):
            return ("field", float(words[1]), words[0])
        if words[0].endswith("x"):
            return ("ratio", float(words[0][:-1]), " ".join(words[1:]))
    except ValueError:
        pass
    sys.exit(f"{path}:{number}: bad target '{text}'")


def low_median(values):
    """Lowest and median; the median of an even count is the lower middle."""
    s = sorted(values)
    return s[0], s[(len(s) - 1) // 2]


def fmt(x):
    if x >= 1000:
        return f"{x:.0f}"
    if x >= 100:
        return f"{x:.1f}"
    return f"{x:.2f}"


def short_ref(key, ref):
    """The reference key without what it shares with key ("2x n=10000")."""
    same = set(key.split())
    rest = [w for w in ref.split() if w not in same]
    return " ".join(rest) if rest else ref


def verdict(low, median, bound):
    if median <= bound:
        return "yes"
    return "lowest" if low <= bound else "no"


def judge(key, runs, target, results, fields):
    """(target text, met text) of one target for the key's runs."""
    kind, bound, ref = target
    if kind == "field":
        values = [f[ref] for f in fields.get(key, []) if f.get(ref) is not None]
        text = f"{ref} <= {bound:.0f}"
        if not values:
            return text, "no data"
        low, median = low_median(values)
        return text, f"{verdict(low, median, bound)} ({median:.0f})"
    if kind == "abs":
        low, median = low_median(runs)
        return f"<= {bound:g}", verdict(low, median, bound)
    other = results.get(ref, [])
    pairs = [(a, b) for a, b in zip(runs, other) if b > 0]
    text = f"<= {bound:g}x {short_ref(key, ref)}"
    if not pairs:
        return text, "no data"
    low, median = low_median([a / b for a, b in pairs])
    return text, f"{verdict(low, median, bound)} ({low:.2f}x/{median:.2f}x)"


def checksum_state(key, sums, checksums):
    expected = checksums.get(key)
    if expected == "varies":
        return "varies", True
    if len(set(sums)) != 1:
        return "DIFFERS", False
    if expected is None:
        return "same", True
    if sums[0] != expected:
        return f"WRONG (not {expected})", False
    return "ok", True


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    targets, checksums = parse_targets(argv[1])
    results, sums, fields, order = {}, {}, {}, []
    files = [open(p, encoding="utf-8") for p in argv[2:]] or [sys.stdin]
    for f in files:
        for line in f:
            parsed = parse_line(line)
            if not parsed:
                continue
            key, ns, checksum, extra = parsed
            if key not in results:
                order.append(key)
            results.setdefault(key, []).append(ns)
            fields.setdefault(key, []).append(extra)
            sums.setdefault(key, []).append(checksum)

    header = ("workload", "size", "runs", "lowest", "median", "target", "met",
              "spread", "checksum")
    rows, good = [], True
    for key in order + [k for k in targets if k not in results]:
        name, _, size = key.partition(" ")
        runs = results.get(key)
        if not runs:
            if targets.get(key):
                rows.append((name, size, "0", "-", "-", "", "not run", "-", "-"))
            continue
        low, median = low_median(runs)
        spread = f"{max(runs) / low:.2f}x" if low > 0 else "-"
        state, ok = checksum_state(key, sums[key], checksums)
        good = good and ok
        judged = [judge(key, runs, t, results, fields) for t in targets.get(key, [])]
        target = "; ".join(t for t, _ in judged) or "-"
        met = "; ".join(m for _, m in judged) or "-"
        rows.append((name, size, str(len(runs)), fmt(low), fmt(median), target, met,
                     spread, state))

    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    right = {2, 3, 4, 7}
    for r in [header] + rows:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells).rstrip())
        if r is header:
            print("  ".join("-" * w for w in widths))
    print("ns per operation; lowest and median over the runs; spread = slowest / "
          "fastest run;\nmet: yes = lowest and median, lowest = only the lowest "
          "(noise), no = neither.")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
