"""A small line chart of a region's quarantine rate per local day, drawn server-side as inline SVG.

No charting script and nothing fetched: the page stays readable with JavaScript off and under a strict
Content-Security-Policy. Days sit on a true time axis (a gap in the data is a gap in the line's spacing), the
scale is a round number, and the region's warn and error thresholds (from its config) are marked so that a
steward sees at once which days crossed them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

WIDTH, HEIGHT = 900, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 40, 14, 34
#: Round tops for the rate axis; the smallest that fits the data and the error threshold is used.
SCALE_TOPS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    day: dt.date
    rate: float
    level: str  # ok | warn | error


@dataclass(frozen=True)
class Line:
    y: float
    label: str
    kind: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    right: int
    baseline: float
    points: list[Point]
    thresholds: list[Line]
    gridlines: list[Line]
    x_labels: list[tuple[float, str]]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def quarantine_chart(days: list[tuple[dt.date, float]], *, warn: float, error: float) -> Chart:
    """Coordinates for `days` (local day, rate in 0..1), oldest first; at least one day."""
    highest = max([rate for _, rate in days] + [error])
    top = next((t for t in SCALE_TOPS if t >= highest * 1.05), 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    first, last = days[0][0], days[-1][0]
    span = max((last - first).days, 1)

    def x(day: dt.date) -> float:
        return LEFT + (plot_w * (day - first).days / span if last > first else plot_w / 2)

    def y(rate: float) -> float:
        return TOP + plot_h * (1 - min(rate, top) / top)

    points = [
        Point(x(day), y(rate), day, rate, "error" if rate >= error else "warn" if rate >= warn else "ok")
        for day, rate in days
    ]
    every = max(1, -(-len(points) // 10))  # at most about ten date labels
    x_labels = [(p.x, f"{p.day:%d %b}") for p in points[::every]]
    percent = "{:.0%}" if top >= 0.05 else "{:.1%}"
    grid = [Line(y(top * f), percent.format(top * f), "grid") for f in (0, 0.25, 0.5, 0.75, 1)]
    thresholds = [Line(y(warn), f"warn {warn:.0%}", "warn"), Line(y(error), f"error {error:.0%}", "error")]
    return Chart(WIDTH, HEIGHT, LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, points, thresholds, grid, x_labels)
