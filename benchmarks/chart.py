#!/usr/bin/env python3
"""A PNG bar chart from `synapse bench --json` files (synapse-bench/1 lines,
Synapse's and PyTorch's): top, ms per step for each workload - Synapse and
PyTorch, CPU and GPU side by side, log scale; bottom, the ratio PyTorch ms /
Synapse ms per device (above 1: Synapse is faster). Rows that did not verify
or did not run are left out; a workload run at a reduced size on the CPU is
marked with * under its name.

    benchmarks/chart.py RESULTS.jsonl [MORE.jsonl ...] [-o bench.png] [--title TEXT]

Needs matplotlib (pip install matplotlib).
"""
import argparse
import json
import math
import sys

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as e:
    print(f"chart.py: matplotlib is not installed ({e}): pip install matplotlib", file=sys.stderr)
    sys.exit(3)

SERIES = [("synapse", "cpu", "Synapse CPU", "#1f77b4"), ("pytorch", "cpu", "PyTorch CPU", "#aec7e8"),
          ("synapse", "cuda", "Synapse GPU", "#d62728"), ("pytorch", "cuda", "PyTorch GPU", "#ff9896")]


def load(paths):
    rows, order = {}, []
    for p in paths:
        for line in open(p):
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("schema") != "synapse-bench/1":
                continue
            dev = "cpu" if r["device"] == "cpu" else "cuda"
            if r["workload"] not in order:
                order.append(r["workload"])
            if r.get("status") == "ok" and r.get("median_ms"):
                rows[(r["workload"], r["impl"], dev)] = r
    return rows, order


def machine_line(rows):
    cpu = gpu = date = None
    for (w, impl, dev), r in rows.items():
        m = r.get("machine") or {}
        if impl == "synapse":
            cpu = cpu or f"{(m.get('cpu') or '?').split(',')[0]}, {m.get('cores')} CPUs, {m.get('threads')} threads"
            date = date or (m.get("date") or "")[:10]
            if dev == "cuda" and m.get("gpu"):
                gpu = gpu or m["gpu"].split(",")[0]
    return f"{date} - CPU: {cpu}" + (f" - GPU: {gpu}" if gpu else " - no GPU rows")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("-o", "--out", default="bench.png")
    ap.add_argument("--title", default="Synapse vs PyTorch: ms per step (lower is better)")
    args = ap.parse_args()
    rows, order = load(args.files)
    series = [s for s in SERIES if any((w, s[0], s[1]) in rows for w in order)]
    work = [w for w in order if any((w, s[0], s[1]) in rows for s in series)]
    if not work:
        print("chart.py: no verified results in " + ", ".join(args.files), file=sys.stderr)
        return 1
    labels = [w + ("*" if (rows.get((w, "synapse", "cpu")) or {}).get("reduced") else "") for w in work]

    fig, (ax, axr) = plt.subplots(2, 1, figsize=(max(10, 1.1 * len(work) + 3), 9), height_ratios=[3, 2],
                                  sharex=True, constrained_layout=True)
    width = 0.8 / len(series)
    for k, (impl, dev, name, color) in enumerate(series):
        xs, ys = [], []
        for i, w in enumerate(work):
            r = rows.get((w, impl, dev))
            if r:
                xs.append(i + (k - (len(series) - 1) / 2) * width)
                ys.append(r["median_ms"])
        for i, w in enumerate(work):
            if (w, impl, dev) not in rows:
                ax.annotate("n/a", (i + (k - (len(series) - 1) / 2) * width, 0.02), xycoords=("data", "axes fraction"),
                            ha="center", fontsize=7, rotation=90)
        bars = ax.bar(xs, ys, width, label=name, color=color, edgecolor="black", linewidth=0.4)
        for b, y in zip(bars, ys):
            txt = f"{y:.3g}" if y < 1000 else f"{y / 1000:.2g}s"
            ax.annotate(txt, (b.get_x() + b.get_width() / 2, y), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.set_yscale("log")
    ax.set_ylabel("ms per step (median, log scale)")
    ax.set_title(args.title + "\n" + machine_line(rows), fontsize=11)
    ax.legend(ncol=len(series), fontsize=9, loc="upper left")
    ax.grid(axis="y", which="both", alpha=0.25)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi * 8)  # room for the value labels

    devs = [d for d in ("cpu", "cuda") if any((w, "synapse", d) in rows and (w, "pytorch", d) in rows for w in work)]
    rw = 0.8 / max(1, len(devs))
    for k, dev in enumerate(devs):
        xs, ys = [], []
        for i, w in enumerate(work):
            s, p = rows.get((w, "synapse", dev)), rows.get((w, "pytorch", dev))
            x = i + (k - (len(devs) - 1) / 2) * rw
            if s and p:
                xs.append(x)
                ys.append(p["median_ms"] / s["median_ms"])
            else:
                axr.annotate("n/a", (x, 1.0), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7)
        color = "#1f77b4" if dev == "cpu" else "#d62728"
        # bars grow from 1 (parity) up or down
        bars = axr.bar(xs, [y - 1 for y in ys], rw, bottom=1.0, color=color, edgecolor="black", linewidth=0.4,
                       label=f"{'CPU' if dev == 'cpu' else 'GPU'}: PyTorch ms / Synapse ms")
        for b, y in zip(bars, ys):
            axr.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), xytext=(0, 2 if y >= 1 else -2),
                         textcoords="offset points", ha="center", va="bottom" if y >= 1 else "top", fontsize=7)
    axr.axhline(1.0, color="black", linewidth=0.8)
    axr.set_yscale("log", base=2)
    axr.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axr.set_ylabel("ratio (> 1: Synapse faster)")
    if devs:
        axr.legend(fontsize=9, loc="upper left")
        lo, hi = axr.get_ylim()
        span = max(abs(math.log2(lo)), abs(math.log2(hi)), 1) + 0.5
        axr.set_ylim(2 ** -span, 2 ** span)
    else:
        axr.text(0.5, 0.5, "no PyTorch rows: no ratios", transform=axr.transAxes, ha="center")
    axr.grid(axis="y", which="both", alpha=0.25)
    axr.set_xticks(range(len(work)))
    axr.set_xticklabels(labels, rotation=30, ha="right")
    if any(l.endswith("*") for l in labels):
        axr.set_xlabel("* smaller batch on the CPU (see each row's note)", fontsize=9)
    fig.savefig(args.out, dpi=120)
    print(f"chart.py: wrote {args.out} ({len(work)} workloads, {len(series)} series)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
