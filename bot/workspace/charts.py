"""Charts for the 报表 page, drawn on the server as SVG (no script, no network, no library).

Every label is escaped; the page shows them as ``<img>`` so nothing in them can run.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape

W, H = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 30, 46
COLORS = ("#1677ff", "#fa8c16", "#52c41a", "#eb2f96", "#722ed1", "#13c2c2")
FONT = 'font-family="Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif"'

Series = Tuple[str, Sequence[Optional[float]]]


def _frame(title: str, body: List[str], legend: Sequence[str], colors: Sequence[str]) -> str:
    keys = []
    x = LEFT
    for name, color in zip(legend, colors):
        keys.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{color}"/>'
                    f'<text x="{x + 14}" y="{H - 5}" font-size="11">{escape(name)}</text>')
        x += 24 + 12 * len(name)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" {FONT}>'
            f'<rect width="{W}" height="{H}" fill="#fff"/>'
            f'<text x="{LEFT}" y="18" font-size="14" font-weight="600">{escape(title)}</text>'
            + "".join(body) + "".join(keys) + "</svg>")


def _axes(top: float, labels: Sequence[str], unit: str) -> List[str]:
    plot_h, plot_w = H - TOP - BOTTOM, W - LEFT - RIGHT
    out = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - RIGHT}" y2="{TOP + plot_h}" stroke="#999"/>']
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                   f'{_num(value)}{escape(unit)}</text>')
    step = max(1, len(labels) // 10)
    for i, label in enumerate(labels):
        if i % step:
            continue
        x = LEFT + plot_w * (i + 0.5) / max(1, len(labels))
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" font-size="10" '
                   f'text-anchor="middle">{escape(label)}</text>')
    return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _top(values: Sequence[float]) -> float:
    peak = max([v for v in values if v is not None] + [0])
    return peak if peak > 0 else 1


def bars(title: str, labels: Sequence[str], series: Sequence[Series], *, stacked: bool = True,
         unit: str = "") -> str:
    """Bars per label; several series side by side, or stacked."""
    plot_h, plot_w = H - TOP - BOTTOM, W - LEFT - RIGHT
    totals = ([sum(v or 0 for v in col) for col in zip(*[s[1] for s in series])] if stacked
              else [v or 0 for s in series for v in s[1]])
    top = _top(totals)
    body = _axes(top, labels, unit)
    slot = plot_w / max(1, len(labels))
    width = slot * 0.7 / (1 if stacked else max(1, len(series)))
    for i in range(len(labels)):
        base = 0.0
        for k, (name, values) in enumerate(series):
            value = values[i] or 0
            h = plot_h * value / top
            x = LEFT + slot * i + slot * 0.15 + (0 if stacked else k * width)
            y = TOP + plot_h - h - (plot_h * base / top if stacked else 0)
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                        f'fill="{COLORS[k % len(COLORS)]}"><title>{escape(labels[i])} '
                        f'{escape(name)}: {_num(value)}</title></rect>')
            if stacked:
                base += value
    return _frame(title, body, [s[0] for s in series], COLORS)


def lines(title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "",
          top: Optional[float] = None) -> str:
    """A line per series; a missing value (None) breaks the line."""
    plot_h, plot_w = H - TOP - BOTTOM, W - LEFT - RIGHT
    top = top or _top([v for s in series for v in s[1]])
    body = _axes(top, labels, unit)
    for k, (name, values) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        points = []
        for i, value in enumerate(values):
            if value is None:
                continue
            x = LEFT + plot_w * (i + 0.5) / max(1, len(labels))
            y = TOP + plot_h - plot_h * min(value, top) / top
            points.append((x, y))
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>'
                        f'{escape(labels[i])} {escape(name)}: {_num(value)}{escape(unit)}</title></circle>')
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    return _frame(title, body, [s[0] for s in series], COLORS)


CHARTS = ("conversations", "first_response", "sla", "csat", "return_calls")


def chart(name: str, summary: dict) -> str:
    """One of :data:`CHARTS` for a summary of :func:`bot.support.metrics.summary`."""
    days = summary["by_day"]
    labels = [d["day"][5:] for d in days]
    if name == "conversations":
        return bars("会话量（按天）", labels, [
            ("机器人解决", [d["bot_resolved"] for d in days]),
            ("转人工", [d["handed_off"] for d in days]),
            ("其他（72小时内再次咨询）",
             [d["conversations"] - d["bot_resolved"] - d["handed_off"] for d in days])])
    if name == "first_response":
        minutes = lambda v: None if v is None else round(v / 60, 1)  # noqa: E731
        return lines("人工首次响应（分钟，服务时间内）", labels, [
            ("P50", [minutes(d["first_response_p50_s"]) for d in days]),
            ("P90", [minutes(d["first_response_p90_s"]) for d in days])], unit="m")
    if name == "sla":
        pct = lambda v: None if v is None else round(v * 100, 1)  # noqa: E731
        return lines("SLA 达成率（%）", labels, [
            ("首次响应", [pct(d["sla_attainment"]["first_response"]) for d in days]),
            ("解决", [pct(d["sla_attainment"]["resolution"]) for d in days])], unit="%", top=100)
    if name == "csat":
        counts = summary["csat_counts"]
        return bars("满意度分布（1–5 分）", [f"{s}分" for s in "12345"],
                    [("评价数", [counts[s] for s in "12345"])])
    if name == "return_calls":
        calls = summary["return_calls"]
        return bars("回访", ["待回访", "已完成", "无法联系"],
                    [("回访数", [calls["due"], calls["done"], calls["unreachable"]])])
    raise KeyError(name)
