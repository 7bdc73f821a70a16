#!/usr/bin/env python3
"""plot.py - dependency-free SVG line charts for scripts/bench-scale.sh (Python 3 standard library).

Usage:
  plot.py OUT.svg TITLE XLABEL YLABEL [--logx] [--logy] [--xfmt int|bytes|num] [--ymin0] [--pair]
          [--hline VALUE:LABEL]... < data.tsv

data.tsv: a header row, then one row per x value. The first column is x, every further column
is one series (its header is the legend label). Cells that are not numbers (NA, FAIL, -) leave a
gap. --logx puts x on a log2 scale with a tick at every x of the data (e.g. client counts,
message sizes); otherwise x is linear with rounded ticks. --xfmt bytes labels x ticks as sizes
(16 B, 1 KiB, 1 MiB). --ymin0 starts the y axis at 0 (default: at 0 unless the data are all far
above it). --logy puts y on a log10 scale (ticks at 1, 2, 5 x powers of ten). --pair: the second
half of the series is drawn dashed in the colours of the first half (e.g. RSS and anon per node).
--hline draws a dashed horizontal reference line (e.g. 80% of a first value).
"""
import math
import sys
from html import escape

W, H = 720, 400
ML, MR, MT, MB = 80, 170, 40, 56  # margins: the legend sits to the right of the plot
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def num(x):
    try:
        v = float(str(x).replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def nice_step(span, n=6):
    if span <= 0:
        return 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt_num(v):
    a = abs(v)
    if a >= 1e6 and v == int(v) and a % 1e5 == 0:
        return f"{v / 1e6:g}M"
    if a >= 1e4 and v == int(v) and a % 1e3 == 0:
        return f"{v / 1e3:g}k"
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:g}"


def fmt_bytes(v):
    for unit, f in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= f and v % f == 0:
            return f"{int(v // f)} {unit}"
    return f"{v:g} B"


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    out, title, xlabel, ylabel = argv[1:5]
    logx, logy, pair, xfmt, ymin0, hlines = False, False, False, "num", False, []
    rest = argv[5:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a == "--logx":
            logx = True
        elif a == "--logy":
            logy = True
        elif a == "--pair":
            pair = True
        elif a == "--ymin0":
            ymin0 = True
        elif a == "--xfmt":
            i += 1
            xfmt = rest[i]
        elif a == "--hline":
            i += 1
            v, _, lab = rest[i].partition(":")
            if num(v) is not None:
                hlines.append((num(v), lab))
        else:
            print(f"plot.py: unknown option {a}", file=sys.stderr)
            return 2
        i += 1
    rows = [l.rstrip("\n").split("\t") for l in sys.stdin if l.strip()]
    if len(rows) < 2:
        print("plot.py: no data", file=sys.stderr)
        return 1
    names = rows[0][1:]
    xs, series = [], [[] for _ in names]
    for r in rows[1:]:
        x = num(r[0])
        if x is None or (logx and x <= 0):
            continue
        xs.append(x)
        for j in range(len(names)):
            series[j].append(num(r[j + 1]) if j + 1 < len(r) else None)
    ys = [y for s in series for y in s if y is not None] + [v for v, _ in hlines]
    if not xs or not ys:
        print("plot.py: no numbers", file=sys.stderr)
        return 1

    # x scale
    tx = (lambda v: math.log2(v)) if logx else (lambda v: v)
    x0, x1 = min(tx(x) for x in xs), max(tx(x) for x in xs)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    if logx:
        pad = (x1 - x0) * 0.04
        x0, x1 = x0 - pad, x1 + pad
        xticks = sorted(set(xs))
    else:
        st = nice_step(x1 - x0)
        x0 = math.floor(x0 / st) * st
        x1 = math.ceil(x1 / st) * st
        xticks = [x0 + k * st for k in range(int(round((x1 - x0) / st)) + 1)]
    # y scale
    if logy:
        ys = [y for y in ys if y > 0]
        if not ys:
            print("plot.py: no positive numbers for --logy", file=sys.stderr)
            return 1
        series = [[y if y is not None and y > 0 else None for y in s] for s in series]
        hlines = [(v, l) for v, l in hlines if v > 0]
        e0, e1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
        if e0 == e1:
            e1 += 1
        mults = (1, 2, 5) if e1 - e0 <= 4 else (1,)
        yticks = [m * 10**k for k in range(e0, e1 + 1) for m in mults if m * 10**k <= 10**e1]
        y0, y1 = e0, e1
        ty = math.log10
    else:
        lo, hi = min(ys), max(ys)
        if ymin0 or lo >= 0 and lo < 0.5 * hi:
            lo = 0.0
        if hi == lo:
            hi = lo + 1
        st = nice_step(hi - lo)
        y0 = math.floor(lo / st) * st
        y1 = math.ceil(hi * 1.02 / st) * st
        yticks = [y0 + k * st for k in range(int(round((y1 - y0) / st)) + 1)]
        ty = lambda v: v  # noqa: E731
    pw, ph = W - ML - MR, H - MT - MB

    def px(x):
        return ML + (tx(x) - x0) / (x1 - x0) * pw

    def py(y):
        return MT + ph - (ty(y) - y0) / (y1 - y0) * ph

    e = []
    e.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             'font-family="sans-serif" font-size="12">')
    e.append(f'<rect width="{W}" height="{H}" fill="white"/>')
    e.append(f'<text x="{ML + pw / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>')
    # grid and ticks
    for y in yticks:
        e.append(f'<line x1="{ML}" y1="{py(y):.1f}" x2="{ML + pw}" y2="{py(y):.1f}" stroke="#e5e5e5"/>')
        e.append(f'<text x="{ML - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{escape(fmt_num(round(y, 10)))}</text>')
    for x in xticks:
        e.append(f'<line x1="{px(x):.1f}" y1="{MT}" x2="{px(x):.1f}" y2="{MT + ph}" stroke="#f0f0f0"/>')
        lab = fmt_bytes(x) if xfmt == "bytes" else fmt_num(round(x, 10))
        e.append(f'<text x="{px(x):.1f}" y="{MT + ph + 16}" text-anchor="middle">{escape(lab)}</text>')
    e.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    e.append(f'<text x="{ML + pw / 2}" y="{H - 12}" text-anchor="middle">{escape(xlabel)}</text>')
    e.append(f'<text x="18" y="{MT + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {MT + ph / 2})">{escape(ylabel)}</text>')
    # reference lines
    for v, lab in hlines:
        e.append(f'<line x1="{ML}" y1="{py(v):.1f}" x2="{ML + pw}" y2="{py(v):.1f}" stroke="#555" stroke-dasharray="6 4"/>')
        if lab:
            e.append(f'<text x="{ML + 6}" y="{py(v) - 5:.1f}" text-anchor="start" fill="#555">{escape(lab)}</text>')
    # series
    half = len(names) // 2 if pair and len(names) % 2 == 0 else None
    for j, name in enumerate(names):
        c = COLORS[(j - half if half and j >= half else j) % len(COLORS)]
        dash = ' stroke-dasharray="5 3"' if half and j >= half else ""
        seg = []
        segs = []
        for x, y in zip(xs, series[j]):
            if y is None:
                if seg:
                    segs.append(seg)
                seg = []
                continue
            seg.append((px(x), py(y)))
        if seg:
            segs.append(seg)
        for s in segs:
            if len(s) > 1:
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in s)
                e.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
            if len(xs) <= 40:
                for a, b in s:
                    e.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"/>')
        ly = MT + 10 + j * 18
        e.append(f'<line x1="{ML + pw + 12}" y1="{ly}" x2="{ML + pw + 32}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
        e.append(f'<text x="{ML + pw + 38}" y="{ly + 4}">{escape(name)}</text>')
    e.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(e) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
