"""A snapshot (server/metrics.py) as text: Prometheus exposition format 0.0.4, or OpenMetrics
1.0 when the scraper's Accept header asks for application/openmetrics-text.

The two differ little for what we export: OpenMetrics names a counter family without its
`_total` suffix in HELP/TYPE and ends with `# EOF`. Histogram buckets are cumulative here
(a snapshot keeps them per bucket so that workers add up).
"""

from __future__ import annotations

from .metrics import BUCKET_LABELS, FAMILIES, Family, Snapshot

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def wants_openmetrics(accept: str) -> bool:
    """Whether an Accept header asks for OpenMetrics (Prometheus lists it first when it can),
    not refused with q=0."""
    for item in accept.split(","):
        kind, *params = item.split(";")
        if kind.strip().lower() != "application/openmetrics-text":
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q" and value.strip() in ("0", "0.0", "0.00", "0.000"):
                return False
        return True
    return False


def render(snapshot: Snapshot, openmetrics: bool) -> bytes:
    lines: list[str] = []
    for family in FAMILIES:
        samples = _samples(family, snapshot)
        if not samples:
            continue
        name = family.name
        if openmetrics and family.kind == "counter":
            name = name[: -len("_total")]
        lines.append(f"# HELP {name} {family.help}")
        lines.append(f"# TYPE {name} {family.kind}")
        lines.extend(samples)
    if openmetrics:
        lines.append("# EOF")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _samples(family: Family, snapshot: Snapshot) -> list[str]:
    if family.kind == "histogram":
        return _histogram(family, snapshot)
    return [f"{family.name}{_labels(family.labels, values)} {_number(value)}"
            for (series, values), value in sorted(snapshot.items()) if series == family.name]


def _histogram(family: Family, snapshot: Snapshot) -> list[str]:
    name = family.name
    if (name + "_count", ()) not in snapshot:
        return []
    lines = []
    cumulative = 0.0
    for label in BUCKET_LABELS:
        cumulative += snapshot.get((name + "_bucket", (label,)), 0.0)
        lines.append(f'{name}_bucket{{le="{label}"}} {_number(cumulative)}')
    lines.append(f"{name}_count {_number(cumulative)}")
    lines.append(f"{name}_sum {_number(snapshot.get((name + '_sum', ()), 0.0))}")
    return lines


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{name}="{_escape(value)}"'
                     for name, value in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 2**53 else repr(value)
