#!/usr/bin/env python3
"""jstool.py - helpers for scripts/bench-js.sh (adapted from the shared peer scripts' summarize.py).

Usage:
  jstool.py parse FILE
      "RATE P50_US P99_US" from a `nats bench` v0.5.0 output (the aggregated line when there are
      several clients); NA for what is missing.
  jstool.py json-leader < stream-info.json       cluster.leader of `nats stream info --json`, or -
  jstool.py raft-leader < cluster-status.json    leader_id of Flotilla's /cluster/status, or -
  jstool.py strace-count FILE
      "fsync=N fdatasync=N sync_file_range=N total=N" from an `strace -c` summary file.
  jstool.py stream-state < stream-info.json     "MESSAGES LAST_SEQ" of `nats stream info --json`, or "- -"
  jstool.py consumer-check LAST_SEQ ACKED < consumer-info.json
      "LEADER STATE DETAIL" for a consumer after a run that should have read the stream up to
      LAST_SEQ (ACKED=1: and acknowledged all of it): STATE is ok, acks-behind (everything was
      delivered once but the ack floor has not reached LAST_SEQ yet) or wrong (delivered short,
      redeliveries, or acks pending after all were sent); DETAIL lists the counters (no spaces).
  jstool.py median RESULTS.tsv TARGET LOCALITY SCENARIO
      The median msgs/s of the counted rows of that target, placement and scenario, or NA.
  jstool.py table RESULTS.tsv FLOTILLA NATS_DEFAULT NATS_ALWAYS
      Markdown: throughput table (median, min - max per target; ratios of the medians) and the
      latency table of the synchronous publishes. Rows whose msgs_per_s is not a number (FAIL) or
      whose note is not "ok" (e.g. the stream leader moved during the run) are not counted.
  jstool.py interp RESULTS.tsv FLOTILLA NATS_DEFAULT NATS_ALWAYS [FSYNC.tsv]
      A bullet list that states the measured publish ratios (and, with FSYNC.tsv, the sync calls
      per message) in words.
  jstool.py cinterp RESULTS.tsv FLOTILLA NATS_DEFAULT NATS_ALWAYS
      The same for the consumer scenarios, plus where the consumers' leaders were.
  jstool.py fsync-table FSYNC.tsv
      Markdown table of the fsync probe (-F).
  jstool.py logwindow START END FILE...
      The warn/error/panic lines of Flotilla's JSON logs whose "ts" lies within START - 2 s and
      END + 2 s (RFC 3339 UTC, e.g. 2026-11-29T03:29:26.534Z), prefixed by the file name.
"""
import csv
import json
import os
import re
import statistics
import sys
from collections import OrderedDict

SCENARIOS = OrderedDict(
    [
        ("js.pub.sync", "`js pub sync`, 1 client"),
        ("js.pub.async", "`js pub async --batch 500`, 1 client"),
        ("js.pub.async.4clients", "`js pub async --batch 500`, 4 clients"),
        ("js.consume", "`js consume --batch 500`, 1 client"),
        ("js.consume.4clients", "`js consume --batch 500`, 4 clients"),
        ("js.fetch", "`js fetch --batch 500`, 1 client"),
        ("js.ordered", "`js ordered`, 1 client"),
    ]
)
# scenarios whose nats bench latencies are worth a table. Not js fetch: nats bench times only the
# Fetch call, which returns before the messages arrive.


def size_bytes(z):
    m = re.match(r"^([0-9]+)(B|KB|KiB|MB|MiB)$", z or "")
    if not m:
        return 0
    return int(m.group(1)) * {"B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 2**20}[m.group(2)]


def size_label(z):
    """128B -> 128 B, 1KiB -> 1 KiB"""
    m = re.match(r"^([0-9]+)(.*)$", z)
    return f"{m.group(1)} {m.group(2)}" if m else z


def scen_label(s):
    """The label of a scenario id; js.pub.async@1KiB is js.pub.async's label with its size."""
    base, _, size = s.partition("@")
    label = SCENARIOS.get(base, base)
    return f"{label}, {size_label(size)} messages" if size else label


def scen_items(*dicts):
    """(id, label) of the scenarios in the keys (target, locality, scenario) of the dicts, in the
    order of SCENARIOS and then by size."""
    names = {k[2] for d in dicts for k in d}
    order = list(SCENARIOS)

    def key(s):
        base, _, size = s.partition("@")
        return (order.index(base) if base in order else len(order), size_bytes(size) if size else 128)

    return [(s, scen_label(s)) for s in sorted(names, key=key)]


LATENCY = OrderedDict([("js.pub.sync", ("`js pub sync` latency per message", "median of the runs' P50 / P99"))])
LOCALITIES = OrderedDict([("local", "leader-local"), ("remote", "leader-remote")])


def num(x):
    try:
        return float(str(x).replace(",", ""))
    except (TypeError, ValueError):
        return None


def fmt(x, unit=""):
    if x is None:
        return "-"
    return f"{x:,.0f}{unit}"


def cmd_parse(path):
    try:
        text = open(path, errors="replace").read()
    except OSError:
        print("NA NA NA")
        return 0
    rate = p50 = p99 = None
    m = re.findall(r"aggregated stats: ([0-9,]+) msgs/sec", text)
    if not m:
        m = re.findall(r" stats: ([0-9,]+) msgs/sec", text)
    if m:
        rate = m[-1].replace(",", "")
    # single client: "... P50: 1,772.69us ~ ..."; aggregated: "... | P50 174,893.83us | ..."
    for key in ("P50", "P99"):
        vals = re.findall(key + r":? ([0-9.,]+)us", text)
        if vals:
            v = vals[-1].replace(",", "")
            if key == "P50":
                p50 = v
            else:
                p99 = v
    print(rate or "NA", p50 or "NA", p99 or "NA")
    return 0


def read_json_stdin():
    try:
        return json.load(sys.stdin)
    except ValueError:
        return None


def cmd_json_leader():
    d = read_json_stdin()
    leader = None
    if isinstance(d, dict):
        leader = (d.get("cluster") or {}).get("leader")
    print(leader or "-")
    return 0


def cmd_raft_leader():
    d = read_json_stdin()
    leader = d.get("leader_id") if isinstance(d, dict) else None
    print(leader or "-")
    return 0


def cmd_strace_count(path):
    counts = {"fsync": 0, "fdatasync": 0, "sync_file_range": 0}
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        f = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall"
        if len(f) >= 5 and f[-1] in counts and f[3].isdigit():
            counts[f[-1]] = int(f[3])
    total = sum(counts.values())
    print(" ".join(f"{k}={v}" for k, v in counts.items()) + f" total={total}")
    return 0


def load(path):
    rates, p50s, p99s, bad = {}, {}, {}, {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["target"], row["locality"], row["scenario"])
            r = num(row["msgs_per_s"])
            if r is None or row.get("note", "ok") != "ok":
                bad.setdefault(key, []).append(row.get("note") or row["msgs_per_s"])
                continue
            rates.setdefault(key, []).append(r)
            for k, store in (("p50_us", p50s), ("p99_us", p99s)):
                v = num(row.get(k))
                if v is not None:
                    store.setdefault(key, []).append(v)
    return rates, p50s, p99s, bad


def med(xs):
    return statistics.median(xs) if xs else None


def cmd_table(path, targets):
    rates, p50s, p99s, bad = load(path)
    keys = set(rates) | set(bad)
    runs_max = max((len(v) + len(bad.get(k, [])) for k, v in rates.items()), default=0)
    f, d, a = targets

    def cell(key):
        xs = rates.get(key, [])
        nb = len(bad.get(key, []))
        if not xs:
            return "failed" if nb else "-"
        s = f"**{fmt(med(xs))}** ({fmt(min(xs))} - {fmt(max(xs))})"
        if nb:
            s += f" [{len(xs)} of {len(xs) + nb} runs]"
        return s

    def ratio(k1, k2):
        m1, m2 = med(rates.get(k1, [])), med(rates.get(k2, []))
        return f"**{m1 / m2:.2f}**" if m1 and m2 else "-"

    leaders = "stream + consumer leader" if any(not k[2].startswith("js.pub") for k in keys) else "stream leader"
    repl = os.environ.get("BENCH_REPLICAS", "3")
    hdr = [f"scenario (128 B unless noted, R{repl}, file)", leaders, f"{f} msgs/s", f"{d} msgs/s", f"{a} msgs/s",
           f"{f} / {d}", f"{f} / {a}"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join(["---", "---", "--:", "--:", "--:", "--:", "--:"]) + "|")
    for s, sname in scen_items(rates, bad):
        for loc, lname in LOCALITIES.items():
            if not any(k[1] == loc and k[2] == s for k in keys):
                continue
            kf, kd, ka = (f, loc, s), (d, loc, s), (a, loc, s)
            print("| " + " | ".join([sname, lname, cell(kf), cell(kd), cell(ka), ratio(kf, kd), ratio(kf, ka)]) + " |")
    print()
    print(f"Medians of up to {runs_max} runs, min - max in brackets.")
    print()
    # latency of the synchronous publisher: one request/ack round trip per message
    tables = []
    for s, (title, rowname) in LATENCY.items():
        if not any(k[2] == s for k in keys):
            continue
        lines = ["| " + " | ".join([title, leaders] + [f"{t} p50 / p99 us" for t in targets]) + " |",
                 "|" + "|".join(["---", "---", "--:", "--:", "--:"]) + "|"]
        for loc, lname in LOCALITIES.items():
            if not any(k[1] == loc and k[2] == s for k in keys):
                continue
            cells = [f"{fmt(med(p50s.get((t, loc, s), [])))} / {fmt(med(p99s.get((t, loc, s), [])))}" for t in targets]
            lines.append("| " + " | ".join([rowname, lname] + cells) + " |")
        tables.append("\n".join(lines))
    print("\n\n".join(tables))
    return 0


def summary(rates, p50s, targets, per):
    """One paragraph: where the first target stands against the like-for-like third one."""
    f, d, a = targets
    rows = []
    for s, sname in scen_items(rates):
        for loc, lname in LOCALITIES.items():
            mf, md, ma = (med(rates.get((t, loc, s), [])) for t in targets)
            if mf and ma:
                rows.append((mf / ma, mf / md if md else None, sname, lname))
    if not rows:
        return ""
    lo, hi = min(rows), max(rows)
    text = (f"Against {a}, the like-for-like durability setting, {f} reaches {lo[0]:.2f} to {hi[0]:.2f} of its "
            f"throughput: least with {lo[2]} ({lo[3]}), most with {hi[2]} ({hi[3]}).")
    pf, pa = med(p50s.get((f, "local", "js.pub.sync"), [])), med(p50s.get((a, "local", "js.pub.sync"), []))
    if pf and pa:
        text += (f" A single synchronous publisher waits for every acknowledgement, so its rate is the inverse of "
                 f"the per-message latency: median P50 {fmt(pf)} us on {f} against {fmt(pa)} us on {a} (leader-local).")
    sf, sa = per.get((f, "js pub sync")), per.get((a, "js pub sync"))
    if sf and sa:
        text += (f" In the fsync probe, {f}'s nodes made {sf[0] / 3:.1f} fsync or fdatasync calls each per synchronous "
                 f"publish, {a}'s {sa[0] / 3:.1f}")
        af, aa = per.get((f, "js pub async")), per.get((a, "js pub async"))
        if af and aa and af[1] and aa[1]:
            text += (f"; with async batches the calls are shared (group commit): {af[1]:.0f} messages per call "
                     f"on {f}, {aa[1]:.0f} on {a}")
        text += "."
    ds = [r[1] for r in rows if r[1]]
    if ds:
        faster = all(r[1] < r[0] for r in rows if r[1])  # nats-default beat nats-always everywhere
        text += (f" {d}, which acknowledges before its data reaches the disk, is "
                 f"{'faster still' if faster else 'the other reference'}: {f} / {d} is {min(ds):.2f} to {max(ds):.2f}.")
    return text


def ratio_bullets(rates, bad, targets):
    """Per placement: each scenario's median on the first target and its ratios to the other two."""
    f, d, a = targets
    out = []
    for loc, lname in LOCALITIES.items():
        parts = []
        for s, sname in scen_items(rates, bad):
            mf, md, ma = (med(rates.get((t, loc, s), [])) for t in targets)
            if mf is None and not bad.get((f, loc, s)):
                continue
            if mf is None:
                parts.append(f"{sname}: {f} failed every run")
                continue
            r = []
            if md:
                r.append(f"{mf / md:.2f}x {d}")
            if ma:
                r.append(f"{mf / ma:.2f}x {a}")
            parts.append(f"{sname}: {fmt(mf)} msgs/s = " + ", ".join(r))
        if parts:
            out.append(f"- {lname}: " + "; ".join(parts) + ".")
    return out


def p50_bullets(p50s, targets, scen, what):
    out = []
    for loc, lname in LOCALITIES.items():
        ps = [med(p50s.get((t, loc, scen), [])) for t in targets]
        if all(p is not None for p in ps):
            out.append(f"- {what}, {lname}: " + ", ".join(f"{t} {fmt(p)} us" for t, p in zip(targets, ps)) + ".")
    return out


def follower_bullets(rates, targets, who="the stream leader"):
    """What a follower costs: leader-remote / leader-local of each target."""
    out = []
    for s, sname in scen_items(rates):
        cells = []
        for t in targets:
            ml, mr = med(rates.get((t, "local", s), [])), med(rates.get((t, "remote", s), []))
            if ml and mr:
                cells.append(f"{t} {mr / ml:.2f}")
        if len(cells) == len(targets):
            out.append(f"- Connected to a follower instead of {who}, {sname} keeps this share of its "
                       "leader-local rate: " + ", ".join(cells) + ".")
    return out


def cmd_interp(path, targets, fsync_path=None):
    rates, p50s, _, bad = load(path)
    per = {}
    if fsync_path:
        try:
            frows = list(csv.DictReader(open(fsync_path, newline=""), delimiter="\t"))
        except OSError:
            frows = []
        for r in frows:
            # fsync + fdatasync, the calls that make data durable; a snapshot's sync_file_range
            # write-out has its own column in the table and is not counted here.
            n = num(r["msgs"])
            tot = (num(r["fsync"]) or 0) + (num(r["fdatasync"]) or 0)
            if n:
                per[(r["target"], r["mode"])] = (tot / n, n / tot if tot else None)
    out = []
    head = summary(rates, p50s, targets, per)
    if head:
        out += [head, ""]
    out += ratio_bullets(rates, bad, targets)
    out += p50_bullets(p50s, targets, "js.pub.sync", "`js pub sync` median P50 per message")
    out += follower_bullets(rates, targets)
    if per:
        cells = [f"{t} {per[(t, 'js pub sync')][0]:.1f} ({per[(t, 'js pub sync')][0] / 3:.1f} per node)"
                 for t in targets if (t, "js pub sync") in per]
        if cells:
            out.append("- fsync + fdatasync calls per `js pub sync` message, all three nodes together: " + ", ".join(cells) + ".")
        for mode in ("js pub async", "js pub async --clients 4"):
            cells = [f"{t} {per[(t, mode)][1]:.1f}" for t in targets if (t, mode) in per and per[(t, mode)][1]]
            if cells:
                out.append(f"- Messages per fsync or fdatasync call with `{mode}` (group commit; all nodes' calls "
                           "together): " + ", ".join(cells) + ".")
    nbad = sum(len(v) for k, v in bad.items())
    if nbad:
        out.append(f"- {nbad} run(s) were not counted (failed, or the stream leader was not where it "
                   "should be); see the list below the table.")
    print("\n".join(out))
    return 0


def cmd_cinterp(path, targets):
    """The consumer scenarios in words: ratio ranges, per-placement ratios, where the consumers lived."""
    rates, p50s, _, bad = load(path)
    f, d, a = targets
    out = []
    rows = []
    for s, sname in scen_items(rates):
        for loc, lname in LOCALITIES.items():
            mf, md, ma = (med(rates.get((t, loc, s), [])) for t in targets)
            if mf and md and ma:
                rows.append((mf / ma, mf / md, sname, lname))
    if rows:
        lo, hi = min(rows), max(rows)
        ds = [r[1] for r in rows]
        out += [f"{f} reads at {lo[0]:.2f} to {hi[0]:.2f} times the rate of {a} (least with {lo[2]}, {lo[3]}; "
                f"most with {hi[2]}, {hi[3]}) and at {min(ds):.2f} to {max(ds):.2f} times the rate of {d}.", ""]
    out += ratio_bullets(rates, bad, targets)
    out += follower_bullets(rates, targets, "the stream and consumer leader")
    # where each target's ordered consumer lived (nats-server picks one of the stream's servers for it)
    with open(path, newline="") as fh:
        raw = list(csv.DictReader(fh, delimiter="\t"))
    parts = []
    for loc, lname in LOCALITIES.items():
        cells = []
        for t in targets:
            rs = [r for r in raw if r["target"] == t and r["locality"] == loc and r["scenario"] == "js.ordered"
                  and num(r["msgs_per_s"]) is not None]
            if rs:
                here = sum(1 for r in rs if r.get("consumer_leader") == r["client_server"])
                cells.append(f"{t} {here} of {len(rs)}")
        if cells:
            parts.append(f"{lname}: " + ", ".join(cells))
    if parts:
        out.append("- Runs of `js ordered` whose consumer lived on the server the client was connected to "
                   "(nats-server picks one of the stream's servers for it): " + "; ".join(parts) + ".")
    flagged = [r for r in raw if r.get("check", "ok") not in ("ok", "-", "")]
    if flagged:
        out.append(f"- {len(flagged)} run(s) left the consumer in an unexpected state afterwards; see the list below.")
    nbad = sum(len(v) for k, v in bad.items())
    if nbad:
        out.append(f"- {nbad} run(s) were not counted (failed, or a leader was not where it should be); "
                   "see the list below the table.")
    print("\n".join(out))
    return 0


def cmd_median(path, target, loc, scen):
    rates, _, _, _ = load(path)
    m = med(rates.get((target, loc, scen), []))
    print(f"{m:.0f}" if m else "NA")
    return 0


def cmd_stream_state():
    d = read_json_stdin()
    st = (d.get("state") or {}) if isinstance(d, dict) else {}
    msgs, last = st.get("messages"), st.get("last_seq")
    print(f"{msgs if msgs is not None else '-'} {last if last is not None else '-'}")
    return 0


def cmd_consumer_check(last, acked):
    d = read_json_stdin()
    if not isinstance(d, dict) or "delivered" not in d:
        print("- wrong no-consumer-info")
        return 0
    leader = (d.get("cluster") or {}).get("leader") or "-"
    dl = (d.get("delivered") or {}).get("stream_seq", 0)
    af = (d.get("ack_floor") or {}).get("stream_seq", 0)
    red, pend = d.get("num_redelivered", 0), d.get("num_ack_pending", 0)
    detail = f"delivered_stream_seq={dl}/{last},ack_floor_stream_seq={af},num_ack_pending={pend},num_redelivered={red}"
    if dl != last or red:
        state = "wrong"
    elif acked and (af != last or pend):
        state = "acks-behind"
    else:
        state = "ok"
    print(leader, state, detail)
    return 0


def cmd_fsync_table(path):
    rows = list(csv.DictReader(open(path, newline=""), delimiter="\t"))
    if not rows:
        return 0
    hdr = ["target", "probe (leader-local)", "msgs", "fsync", "fdatasync", "sync_file_range",
           "msgs per sync call (all 3 nodes)", "msgs/s under strace"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join(["---", "---"] + ["--:"] * 6) + "|")
    for r in rows:
        print("| " + " | ".join([r["target"], r["mode"], r["msgs"], r["fsync"], r["fdatasync"],
                                 r["sync_file_range"], r["msgs_per_sync"], r["rate_under_strace"]]) + " |")
    return 0


def parse_ts(x):
    from datetime import datetime, timezone

    try:
        return datetime.strptime(x.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        try:
            return datetime.strptime(x.rstrip("Z")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            return None


def cmd_logwindow(start, end, files):
    t0, t1 = parse_ts(start), parse_ts(end)
    if t0 is None or t1 is None:
        return 2
    for path in files:
        name = path.rsplit("/", 1)[-1]
        try:
            lines = open(path, errors="replace").read().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                d = json.loads(line)
            except ValueError:
                if "panic" in line or "fatal" in line.lower():
                    print(f"{name}: {line}")
                continue
            if not isinstance(d, dict) or str(d.get("level", "")).lower() not in ("warn", "error", "dpanic", "panic", "fatal"):
                continue
            ts = parse_ts(str(d.get("ts", "")))
            if ts is not None and t0 - 2 <= ts <= t1 + 2:
                print(f"{name}: {line}")
    return 0


def main(argv):
    if len(argv) == 3 and argv[1] == "parse":
        return cmd_parse(argv[2])
    if len(argv) == 2 and argv[1] == "json-leader":
        return cmd_json_leader()
    if len(argv) == 2 and argv[1] == "raft-leader":
        return cmd_raft_leader()
    if len(argv) == 2 and argv[1] == "stream-state":
        return cmd_stream_state()
    if len(argv) == 4 and argv[1] == "consumer-check" and argv[2].isdigit():
        return cmd_consumer_check(int(argv[2]), argv[3] == "1")
    if len(argv) == 3 and argv[1] == "strace-count":
        return cmd_strace_count(argv[2])
    if len(argv) == 6 and argv[1] == "median":
        return cmd_median(*argv[2:6])
    if len(argv) == 6 and argv[1] == "table":
        return cmd_table(argv[2], argv[3:6])
    if len(argv) in (6, 7) and argv[1] == "interp":
        return cmd_interp(argv[2], argv[3:6], argv[6] if len(argv) == 7 else None)
    if len(argv) == 6 and argv[1] == "cinterp":
        return cmd_cinterp(argv[2], argv[3:6])
    if len(argv) >= 5 and argv[1] == "logwindow":
        return cmd_logwindow(argv[2], argv[3], argv[4:])
    if len(argv) == 3 and argv[1] == "fsync-table":
        return cmd_fsync_table(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
