"""Flame graphs of worker-thread stacks as SVG (an icicle graph: root at the
top, width = share of samples), coloured by profiling.py's categories."""

from __future__ import annotations

import collections
import html

from profiling import CATEGORIES, classify, parse_frame

_COLORS = {"redis_wait": "#e4572e", "redis_py": "#f3a712", "decode": "#a8c686",
           "task": "#669bbc", "bookkeeping": "#b8b8d1", "": "#dddddd"}


def render_svg(stacks, path, title, width=1400, row=17, min_px=0.6, running=False):
    """Write an icicle graph of `stacks` (frames merged by function, line
    numbers dropped). Hover a box for its name, samples and share.
    running: the samples are of a running thread (py-spy --gil), so a socket
    function on top is its Python code, coloured as redis-py, not as a wait."""
    total = sum(stacks.values())
    root = {"name": "all", "n": 0, "kids": {}, "cats": collections.Counter()}
    for stack, n in stacks.items():
        cat, _ = classify(stack)
        if running and cat == "redis_wait":
            cat = "redis_py"
        root["n"] += n
        root["cats"][cat] += n
        node = root
        for fr in stack:
            if fr.startswith("process "):  # py-spy --subprocesses adds one per process
                continue
            func, file, _ = parse_frame(fr)
            name = "%s (%s)" % (func, file) if file else func
            kid = node["kids"].get(name)
            if kid is None:
                kid = node["kids"][name] = {"name": name, "n": 0, "kids": {},
                                            "cats": collections.Counter()}
            kid["n"] += n
            kid["cats"][cat] += n  # a box takes the colour of most of its samples
            node = kid
    depth = [0]
    boxes = []

    def walk(node, x, level):
        w = width * node["n"] / total if total else 0
        if w < min_px:
            return
        depth[0] = max(depth[0], level)
        boxes.append((x, level, w, node))
        cx = x
        for kid in sorted(node["kids"].values(), key=lambda k: -k["n"]):
            walk(kid, cx, level + 1)
            cx += width * kid["n"] / total

    walk(root, 0.0, 0)
    top_pad = 40
    legend_h = 22
    height = top_pad + (depth[0] + 1) * row + legend_h + 10
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="monospace" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="6" y="16" font-size="13">%s</text>' % html.escape(title),
           '<text x="6" y="32" fill="#555">%d samples; box width = share of the worker '
           'thread\'s samples; hover for details</text>' % total]
    for x, level, w, node in boxes:
        y = top_pad + level * row
        pct = 100.0 * node["n"] / total
        label = "%s: %d samples, %.2f%%" % (node["name"], node["n"], pct)
        out.append('<g><title>%s</title><rect x="%.2f" y="%d" width="%.2f" height="%d" '
                   'fill="%s" stroke="white" stroke-width="0.5"/>' % (
                       html.escape(label), x, y, w, row - 1,
                       _COLORS.get(node["cats"].most_common(1)[0][0] if node["cats"] else "",
                                   "#ddd")))
        chars = int(w / 6.6)
        if chars >= 4:
            text = node["name"] if len(node["name"]) <= chars else node["name"][:chars - 2] + ".."
            out.append('<text x="%.2f" y="%d">%s</text>' % (x + 2, y + row - 5, html.escape(text)))
        out.append("</g>")
    ly = height - legend_h
    lx = 6
    for key, label in CATEGORIES:
        short = label.split(" (")[0]
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, ly, _COLORS[key]))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 16, ly + 10, html.escape(short)))
        lx += 16 + 7 * len(short) + 18
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
