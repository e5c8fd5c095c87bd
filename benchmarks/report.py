"""Presentation for the peer benchmark: progress lines, the tables, metadata and the chart.

The chart is a PNG through matplotlib when it is importable, else an SVG written here by
hand, so the benchmark adds no required dependency.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import subprocess
import sys
import time
from html import escape
from pathlib import Path
from typing import Any

OURS = "treadle"
REFERENCE = "bare-loop"  # the ceiling, drawn apart from the peers


def _color(name: str) -> str:
    return {OURS: "#d62728", REFERENCE: "#999999"}.get(name, "#4c72b0")
Medians = dict[str, dict[str, dict[str, Any]]]


def progress_line(entry: dict[str, Any]) -> str:
    where = f"round {entry['round'] + 1} {entry['load']:<10} {entry['server']:<17}"
    if "error" in entry:
        return f"{where} FAILED: {entry['error']}"
    line = (f"{where} {entry['rps']:>9,.0f} req/s  p50 {_ms(entry['p50_ms']):>7} ms  "
            f"p99 {_ms(entry['p99_ms']):>8} ms  errors {entry['errors']}  "
            f"timeouts {entry['timeouts']}  rss {entry['peak_rss_mib']:.1f} MiB  "
            f"cpu {_us(entry.get('cpu_us_per_req'))} us/req")
    if "idle" in entry:
        idle = entry["idle"]
        line += (f"  idle: served {idle['served_connections']}/{idle['connections']}, "
                 f"answered {idle['answered']}/{idle['sent']}")
    return line


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def metadata(args: argparse.Namespace, started: float, loads: dict[str, str],
             pure_python: dict[str, bool]) -> dict[str, Any]:
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "wrk": wrk_version.splitlines()[0] if wrk_version else "unknown",
        "duration_s": args.duration,
        "rounds": args.rounds,
        "threads": args.threads,
        "workers": getattr(args, "workers", 1),
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "loads": {name: loads[name] for name in args.loads},
        "servers": [name for name in pure_python if name in args.servers],
        "pure_python": pure_python,
        "versions": {name: _version(name) for name in pure_python if name != OURS},
    }


def _ordered(medians: Medians, meta: dict[str, Any]) -> list[tuple[str, list[str]]]:
    order = meta["servers"]
    return [(load, [s for s in order if s in medians[load]])
            for load in meta["loads"] if load in medians]


def _ratio(value: float | None, ours: float | None) -> str:
    if not ours or value is None:
        return "-"
    return f"{value / ours:.2f}x"


def tables(medians: Medians, meta: dict[str, Any]) -> str:
    """One text table per load: medians, and each server's figures relative to ours."""
    lines = [f"median of {meta['rounds']} rounds, {meta['duration_s']:g} s each; "
             f"{meta['threads']} threads, {meta.get('workers', 1)} worker process(es); "
             f"servers on cpu {meta['server_cpu']}, wrk on cpu {meta['client_cpu']}; "
             f"{meta['cpu']}"]
    for load, servers in _ordered(medians, meta):
        rows = medians[load]
        ours = rows.get(OURS)
        lines += ["", f"{load}: {meta['loads'][load]}",
                  f"  {'server':<17} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>9} {'errors':>7} "
                  f"{'timeouts':>8} {'RSS MiB':>8} {'CPU us/req':>10} {'req/s/ours':>10} "
                  f"{'p99/ours':>9}"
                  + ("  idle served  answered/sent" if "idle" in rows[servers[0]] else "")]
        for name in servers:
            row = rows[name]
            line = (f"  {name:<17} {row['rps']:>9,.0f} {_ms(row['p50_ms']):>8} "
                    f"{_ms(row['p99_ms']):>9} {row['errors']:>7g} {row['timeouts']:>8g} "
                    f"{row['peak_rss_mib']:>8.1f} {_us(row.get('cpu_us_per_req')):>10} "
                    f"{_ratio(row['rps'], ours['rps'] if ours else None):>10} "
                    f"{_ratio(row['p99_ms'], ours['p99_ms'] if ours else None):>9}")
            if "idle" in row:
                idle = row["idle"]
                line += (f"  {idle['served_connections']:>5g}/{idle['connections']:g}"
                         f"  {idle['answered']:g}/{idle['sent']:g}")
            lines.append(line)
    return "\n".join(lines)


def _label(row: dict[str, Any]) -> str:
    p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.1f}"
    text = f"{row['rps']:,.0f} req/s · p99 {p99} ms · {row['peak_rss_mib']:.0f} MiB"
    if row["errors"] or row["timeouts"]:
        text += f" · {row['errors']:g} err · {row['timeouts']:g} t/o"
    return text


def chart(medians: Medians, meta: dict[str, Any], base: Path) -> Path:
    """Write the chart next to `base` (adding .png or .svg) and return its path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        path = base.with_suffix(".svg")
        path.write_text(svg_chart(medians, meta))
        return path
    panels = _ordered(medians, meta)
    figure, axes = pyplot.subplots(len(panels), 1, squeeze=False,
                                   figsize=(10, 1.0 + sum(0.4 * len(s) + 0.6 for _, s in panels)))
    for axis, (load, servers) in zip(axes[:, 0], panels, strict=True):
        rows = medians[load]
        values = [rows[name]["rps"] for name in servers]
        colors = [_color(name) for name in servers]
        axis.barh(servers, values, color=colors)
        axis.invert_yaxis()
        axis.set_title(f"{load}: {meta['loads'][load]}", loc="left", fontsize=10)
        axis.set_xlim(0, max(values) * 1.9 if values and max(values) else 1)
        for y, name in enumerate(servers):
            axis.text(values[y], y, "  " + _label(rows[name]), va="center", fontsize=8)
    axes[-1, 0].set_xlabel("requests per second (median)")
    figure.tight_layout()
    path = base.with_suffix(".png")
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def svg_chart(medians: Medians, meta: dict[str, Any]) -> str:
    """Horizontal bars of requests/s, one panel per load, each scaled to its fastest server."""
    width, name_w, bar_w, row_h, gap = 980, 110, 440, 20, 34
    parts: list[str] = []
    y = 40
    for load, servers in _ordered(medians, meta):
        rows = medians[load]
        top = max((rows[name]["rps"] for name in servers), default=0.0) or 1.0
        parts.append(f'<text x="10" y="{y}" font-weight="bold">'
                     f"{escape(load)}: {escape(meta['loads'][load])}</text>")
        y += 8
        for name in servers:
            row = rows[name]
            length = max(1.0, bar_w * row["rps"] / top)
            color = _color(name)
            parts.append(f'<text x="10" y="{y + 14}">{escape(name)}</text>'
                         f'<rect x="{name_w}" y="{y + 3}" width="{length:.1f}" '
                         f'height="{row_h - 6}" fill="{color}"/>'
                         f'<text x="{name_w + length + 6:.1f}" y="{y + 14}" font-size="11">'
                         f"{escape(_label(row))}</text>")
            y += row_h
        y += gap
    title = (f"treadle and its peers: median of {meta['rounds']} rounds × "
             f"{meta['duration_s']:g} s, {meta['threads']} threads, one core each "
             f"({escape(meta['started'])})")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
            f'font-family="sans-serif" font-size="12">'
            f'<rect width="100%" height="100%" fill="white"/>'
            f'<text x="10" y="20" font-size="14">{title}</text>' + "".join(parts) + "</svg>\n")
