"""Bar plot of drain rates from benchmarks/results/latest.json.

Run by benchmarks/run.py with the harness venv's python (matplotlib):
    python plot.py results/latest.json results/drain.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(src, dst):
    with open(src) as f:
        report = json.load(f)
    peers = [(pid, p) for pid, p in report["peers"].items() if p.get("median")]
    if not peers:
        raise SystemExit("no figures to plot")
    labels = [p["label"] for _, p in peers]
    series = [("drain_1", "1 worker process", "#4C72B0"), ("drain_2", "2 worker processes", "#DD8452")]
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(8, 1.25 * len(peers) + 2), 5.5))
    ymax, ymin = 1, None
    for j, (key, name, color) in enumerate(series):
        xs, hs, lo, hi, hatch = [], [], [], [], []
        for i, (_, p) in enumerate(peers):
            v = p["median"].get(key)
            if v is None:
                continue
            xs.append(i + (j - 0.5) * width)
            hs.append(v)
            lo.append(v - p["min"].get(key, v))
            hi.append(p["max"].get(key, v) - v)
            hatch.append("//" if p.get("partial", {}).get(key) else "")
            ymax = max(ymax, p["max"].get(key, v))
            lowest = p["min"].get(key, v)
            ymin = lowest if ymin is None else min(ymin, lowest)
        bars = ax.bar(xs, hs, width, label=name, color=color, yerr=[lo, hi], capsize=3,
                      error_kw={"elinewidth": 0.8})
        for b, h, v, up in zip(bars, hatch, hs, hi):
            b.set_hatch(h)
            ax.annotate("{:,.0f}".format(v) if v >= 10 else "{:.1f}".format(v),
                        (b.get_x() + b.get_width() / 2, v + up), ha="center", va="bottom",
                        fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_ylim(bottom=(ymin or 1) / 2, top=ymax * 3)
    ax.set_xticks(range(len(peers)))
    ax.set_xticklabels(labels, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("tasks / second (log scale)")
    cfg = report["config"]
    ax.set_title("Drain rate of a pre-filled queue of {:,} no-op tasks, concurrency 1 per process\n"
                 "median of {} run(s), whiskers min-max; hatched = cut off at {:g}s time cap"
                 .format(cfg["tasks"], cfg["repeat"], cfg["phase_timeout"]), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    m = report["machine"]
    fig.text(0.01, 0.01, "%s, %s cores; %s; %s" % (m["cpu_model"], m["cpu_cores"],
                                                  m["redis_server"].split(" sha")[0], report["date"]),
             fontsize=6, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(dst, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
