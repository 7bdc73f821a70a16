#!/usr/bin/env python3
"""benchtool.py - helpers for scripts/bench-core.sh (adapted from the shared peer scripts' summarize.py).

Usage:
  benchtool.py sub SUBJECT < monitoring.json
      Finds the server-side subscription(s) on SUBJECT in a monitoring document (Flotilla's
      /debug/vars or nats-server's /subsz?subs=1) and prints "COUNT DELIVERED".
  benchtool.py field NAME < monitoring.json
      Prints a top-level numeric field (e.g. slow_consumers), or NA.
  benchtool.py table A_LABEL B_LABEL results.tsv
      Markdown table: per message size, scenario and metric, median/min/max msgs/s (or, for
      request/reply, also the P50 latency) of target A and B and the ratio of the medians A/B.
      Rows whose msgs_per_s is not a number count as failures, not zeros.
  benchtool.py median results.tsv TARGET SCENARIO SIZE ROLE
      The median msgs/s of those rows (NA when none counted).
  benchtool.py splice FILE START_MARKER END_MARKER < section.md
      Replaces the text between the two marker lines of FILE with stdin (markers are kept);
      appends markers and section at the end when FILE has no markers yet.
"""
import csv
import json
import statistics
import sys
from collections import OrderedDict

SCENARIOS = OrderedDict(
    [
        ("pubsub1", "1 pub -> 1 sub"),
        ("pubsub4", "4 pub -> 1 sub"),
        ("pubonly", "1 pub, no sub"),
        ("reqrep", "request/reply"),
    ]
)
# role -> (metric, results column); "req" rows give two metrics
METRICS = OrderedDict(
    [
        ("pub", [("publisher msgs/s", "msgs_per_s")]),
        ("sub", [("subscriber msgs/s", "msgs_per_s")]),
        ("req", [("requests/s (one at a time)", "msgs_per_s"), ("P50 latency us (lower is better)", "p50_us")]),
    ]
)


def walk(x):
    if isinstance(x, dict):
        yield x
        for v in x.values():
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)


def cmd_sub(subject):
    try:
        doc = json.load(sys.stdin)
    except ValueError:
        print("0 0")
        return 0
    count = delivered = 0
    for d in walk(doc):
        if d.get("subject") == subject and ("sid" in d):
            count += 1
            v = d.get("delivered", d.get("msgs", 0))
            delivered += int(v) if isinstance(v, (int, float)) else 0
    print(count, delivered)
    return 0


def cmd_field(name):
    try:
        doc = json.load(sys.stdin)
    except ValueError:
        print("NA")
        return 0
    v = doc.get(name) if isinstance(doc, dict) else None
    if v is None and isinstance(doc, dict) and isinstance(doc.get("transport"), dict):
        v = doc["transport"].get(name)
    print(v if isinstance(v, (int, float)) else "NA")
    return 0


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def fmt(x):
    return "-" if x is None else f"{x:,.0f}"


def load(path):
    """{(target, scenario, size, role, column): [values]}, {(target, scenario, size, role): failed runs}, sizes"""
    vals, fails, sizes = {}, {}, []
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            size = row.get("size") or "128B"
            if size not in sizes:
                sizes.append(size)
            key = (row["target"], row["scenario"], size, row["role"])
            if num(row["msgs_per_s"]) is None:
                fails[key] = fails.get(key, 0) + 1
                continue
            for col in ("msgs_per_s", "p50_us"):
                v = num(row.get(col))
                if v is not None:
                    vals.setdefault(key + (col,), []).append(v)
    return vals, fails, sizes


def cmd_median(path, target, scen, size, role):
    vals, _, _ = load(path)
    xs = vals.get((target, scen, size, role, "msgs_per_s"), [])
    print(f"{statistics.median(xs):.0f}" if xs else "NA")
    return 0


def cmd_table(a, b, path):
    vals, fails, sizes = load(path)

    def cell(t, s, z, r, col):
        xs = vals.get((t, s, z, r, col), [])
        n_fail = fails.get((t, s, z, r), 0)
        med = statistics.median(xs) if xs else None
        span = f"{fmt(min(xs))} - {fmt(max(xs))}" if xs else "-"
        runs = f"{len(xs)}" + (f" (+{n_fail} failed)" if n_fail else "")
        return med, [fmt(med), span, runs]

    hdr = ["scenario", "size", "metric", f"{a} median", f"{a} min - max", f"{a} runs",
           f"{b} median", f"{b} min - max", f"{b} runs", f"{a} / {b}"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join(["---", "---", "---", "--:", "--:", "--:", "--:", "--:", "--:", "--:"]) + "|")
    seen = {k[1:4] for k in vals} | {k[1:4] for k in fails}
    for z in sizes:
        for s, sname in SCENARIOS.items():
            for r, metrics in METRICS.items():
                if (s, z, r) not in seen:
                    continue
                for mname, col in metrics:
                    ma, ca = cell(a, s, z, r, col)
                    mb, cb = cell(b, s, z, r, col)
                    ratio = f"**{ma / mb:.2f}**" if ma and mb else "-"
                    print("| " + " | ".join([sname, z.replace("B", " B").replace("Ki B", " KiB"), mname] + ca + cb + [ratio]) + " |")
    return 0


def cmd_splice(path, start, end):
    new = sys.stdin.read()
    if not new.endswith("\n"):
        new += "\n"
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    lines = text.splitlines(keepends=True)
    si = next((i for i, l in enumerate(lines) if l.strip() == start), None)
    ei = next((i for i, l in enumerate(lines) if l.strip() == end and si is not None and i > si), None)
    if si is None or ei is None:
        if text and not text.endswith("\n"):
            text += "\n"
        out = text + ("\n" if text else "") + start + "\n" + new + end + "\n"
    else:
        out = "".join(lines[: si + 1]) + new + "".join(lines[ei:])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(out)
    import os

    os.replace(tmp, path)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "sub":
        return cmd_sub(argv[2])
    if len(argv) >= 3 and argv[1] == "field":
        return cmd_field(argv[2])
    if len(argv) == 7 and argv[1] == "median":
        return cmd_median(*argv[2:7])
    if len(argv) >= 5 and argv[1] == "table":
        return cmd_table(argv[2], argv[3], argv[4])
    if len(argv) >= 5 and argv[1] == "splice":
        return cmd_splice(argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
