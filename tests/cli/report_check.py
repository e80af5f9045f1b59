#!/usr/bin/python3
"""Checks a report written by `nabla report`, statically and in a real browser.

Static: the file is UTF-8, parses as HTML with every element closed in order, refers to
nothing outside itself (no http:, https:, protocol-relative or file references, no @import),
has the expected charts (<svg class="chart" data-chart=ID>), series (<g class="series"
data-color=...>) and parallel-coordinate lines (<path class="trial-line">) per chart, one
<script> (nabla's; --scripts), and no line of more than --max-points points.

Browser (unless --static-only): headless Chromium loads the file and takes a screenshot; the
check fails on any console message (an error, an uncaught exception, a failed load), and
counts the pixels of each colour of nabla's palettes in the screenshot. A colour counts as
drawn when it covers more pixels than the legend swatches in that colour could (the legends
stay visible even when nothing is plotted) plus a margin; the colours drawn must be exactly
those the series declare. The bottom of the screenshot must be blank: the window held the
whole page.

Exit 0 when every check passes; else 1, with one line per failure.
usage: report_check.py REPORT.html [--charts N] [--count ID=N]... [--series ID=N]...
                       [--lines ID=N]... [--colors N] [--max-points N] [--static-only] [--height H]
"""
import argparse
import html.parser
import os
import re
import subprocess
import sys
import tempfile

# nabla's palettes (src/cli/report/report_svg.c), written out here so that a change there must be
# made here too: the series palette, then the class colours of decision regions.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#393b79", "#bcbd22", "#17becf",
           "#c0392b", "#2e4fa3", "#1e8449", "#b7950b", "#6c3483", "#0e6655", "#a04000", "#283747"]
# Pixels a legend swatch can cover: a 26x2 line, a marker of radius 3.5.
LEGEND_LINE_PX = 60
LEGEND_MARK_PX = 50
# Beyond the legends, a colour must cover this many pixels to count as a drawn series.
SERIES_MIN_PX = 250

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
EXTERNAL = re.compile(r"(https?:|ftp:|file:|src\s*=\s*[\"']//|href\s*=\s*[\"']//|@import)",
                      re.IGNORECASE)


class Report(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.errors = []
        self.stack = []
        self.charts = []          # [id, [series colours], [points per line]]
        self.scripts = 0
        self.legend = {}          # colour -> estimated swatch pixels
        self.in_legend = 0        # depth inside a legend entry
        self.in_series = 0

    def attrs_of(self, attrs):
        a = dict(attrs)
        for name, value in attrs:
            if value and EXTERNAL.search(f'{name}="{value}"'):
                self.errors.append(f"external reference: {name}={value!r}")
        return a

    def element(self, tag, a, closed):
        cls = (a.get("class") or "").split()
        if tag == "svg" and "chart" in cls:
            self.charts.append([a.get("data-chart"), [], [], 0])
        if tag == "path" and "trial-line" in cls and self.charts:
            self.charts[-1][3] += 1
        if tag == "script":
            self.scripts += 1
        if tag == "g" and ("legend-item" in cls or "legend-entry" in cls):
            self.in_legend = len(self.stack) + 1
        elif self.in_legend and tag in ("line", "circle", "path", "rect"):
            fill = a.get("fill")
            color = a.get("stroke") if tag == "line" or fill in (None, "#fff") else fill
            if color:
                px = LEGEND_LINE_PX if tag == "line" else LEGEND_MARK_PX
                self.legend[color] = self.legend.get(color, 0) + px
        if tag == "g" and "series" in cls:
            if not self.charts:
                self.errors.append("a series outside any chart")
            else:
                self.charts[-1][1].append(a.get("data-color"))
            self.in_series = len(self.stack) + 1
        elif self.in_series and tag == "path" and a.get("d") and a.get("fill") == "none":
            self.charts[-1][2].append(len(re.findall(r"[ML]", a["d"])))

    def handle_starttag(self, tag, attrs):
        a = self.attrs_of(attrs)
        self.element(tag, a, False)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.element(tag, self.attrs_of(attrs), True)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>"
                               f" at line {self.getpos()[0]}")
            return
        self.stack.pop()
        if self.in_legend and len(self.stack) < self.in_legend:
            self.in_legend = 0
        if self.in_series and len(self.stack) < self.in_series:
            self.in_series = 0

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("style", "script") and EXTERNAL.search(data):
            self.errors.append(f"external reference in <{self.stack[-1]}>")


def static_checks(path, args, failures):
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        failures.append(f"not UTF-8: {e}")
        return None
    if not text.startswith("<!DOCTYPE html>"):
        failures.append("no <!DOCTYPE html>")
    if re.search(r"https?://|src=[\"']//", text):
        failures.append("the text holds an http(s):// or protocol-relative reference")
    p = Report()
    p.feed(text)
    p.close()
    failures.extend(p.errors)
    if p.stack:
        failures.append(f"elements left open: {p.stack}")
    if p.scripts != args.scripts:
        failures.append(f"{p.scripts} <script> elements, expected {args.scripts}")
    if args.charts is not None and len(p.charts) != args.charts:
        failures.append(f"{len(p.charts)} charts, expected {args.charts}: "
                        f"{[c[0] for c in p.charts]}")
    for spec in args.count:
        cid, n = spec.split("=")
        got = sum(1 for c in p.charts if c[0] == cid)
        if got != int(n):
            failures.append(f"{got} charts '{cid}', expected {n}")
    for spec in args.series:
        cid, n = spec.split("=")
        found = [c for c in p.charts if c[0] == cid]
        if not found:
            failures.append(f"no chart '{cid}'")
        for c in found:
            if len(c[1]) != int(n):
                failures.append(f"chart '{cid}': {len(c[1])} series, expected {n}")
    for spec in args.lines:
        cid, n = spec.split("=")
        for c in [c for c in p.charts if c[0] == cid]:
            if c[3] != int(n):
                failures.append(f"chart '{cid}': {c[3]} trial lines, expected {n}")
    for c in p.charts:
        for points in c[2]:
            if points > args.max_points:
                failures.append(f"chart '{c[0]}': a line of {points} points "
                                f"(at most {args.max_points})")
    colors = {col for c in p.charts for col in c[1]}
    unknown = colors - set(PALETTE)
    if unknown:
        failures.append(f"series colours outside the palettes: {sorted(unknown)}")
    if args.colors is not None and len(colors) != args.colors:
        failures.append(f"{len(colors)} series colours, expected {args.colors}: {sorted(colors)}")
    return p, colors


def browser_checks(path, p, colors, args, failures):
    import numpy as np
    from PIL import Image

    chromium = args.chromium
    with tempfile.TemporaryDirectory() as tmp:
        shot = os.path.join(tmp, "shot.png")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", "--disable-background-networking",
               f"--user-data-dir={tmp}/profile", "--enable-logging=stderr", "--v=0",
               f"--window-size={args.width},{args.height}", f"--screenshot={shot}",
               "file://" + os.path.abspath(path)]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, HOME=tmp))
        except (OSError, subprocess.TimeoutExpired) as e:
            failures.append(f"chromium did not run: {e}")
            return
        console = [l for l in r.stderr.splitlines() if ":CONSOLE" in l or "Uncaught" in l]
        for line in console:
            failures.append("console: " + line.split("] ", 1)[-1][:300])
        if not os.path.exists(shot):
            failures.append(f"no screenshot (exit {r.returncode}): {r.stderr[-500:]}")
            return
        a = np.asarray(Image.open(shot).convert("RGB")).astype(np.uint32)
    if a.shape[0] != args.height or a.shape[1] != args.width:
        failures.append(f"screenshot is {a.shape[1]}x{a.shape[0]}, expected "
                        f"{args.width}x{args.height}")
    if not (a[-40:] == 255).all():
        failures.append(f"the page is longer than the window ({args.height} px): "
                        "the bottom of the screenshot is not blank")
    v = (a[:, :, 0] << 16) | (a[:, :, 1] << 8) | a[:, :, 2]
    drawn, report = set(), []
    for c in PALETTE:
        n = int((v == int(c[1:], 16)).sum())
        need = p.legend.get(c, 0) + SERIES_MIN_PX
        if n >= need:
            drawn.add(c)
        if n:
            report.append(f"{c}:{n}/{need}")
    if drawn != colors:
        failures.append(f"colours drawn {sorted(drawn)} != series colours {sorted(colors)} "
                        f"(pixels/needed: {' '.join(report)})")
    print(f"{path}: {len(p.charts)} charts, {sum(len(c[1]) for c in p.charts)} series, "
          f"colours drawn: {' '.join(report)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--charts", type=int)
    ap.add_argument("--count", action="append", default=[], help="ID=N charts with that id")
    ap.add_argument("--series", action="append", default=[], help="ID=N series in each")
    ap.add_argument("--lines", action="append", default=[], help="ID=N trial lines in each")
    ap.add_argument("--colors", type=int, help="distinct series colours")
    ap.add_argument("--max-points", type=int, default=2000)
    ap.add_argument("--scripts", type=int, default=1, help="<script> elements (nabla's one)")
    ap.add_argument("--static-only", action="store_true")
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=4000)
    args = ap.parse_args()
    failures = []
    result = static_checks(args.report, args, failures)
    if result and not args.static_only:
        browser_checks(args.report, result[0], result[1], args, failures)
    for f in failures:
        print(f"{args.report}: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
