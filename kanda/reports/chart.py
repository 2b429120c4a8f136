"""The 30-day trend chart of a report: a small PNG bar chart drawn with Pillow, embedded in the message.

Ten thousand reports are built in one run, so the chart must cost about a millisecond. A matplotlib figure, even
one kept and re-used, takes ~50 ms per `savefig` here; Pillow drawing 30 rectangles into a small palette image
and encoding it with zlib's run-length strategy takes about 1 ms and gives a ~1 KB file.

The image carries no text: its axis labels (the amounts at the top and bottom gridlines, the first, middle and
last dates) are written beside it in the HTML, in the creator's language and locale, where mail clients can read
them aloud and translate them, and where no font has to be shipped for Arabic digits or Swahili month names. For
those labels to be true, the scale is not "whatever the tallest bar is" but a round amount (`axis_range`), which
the renderer writes next to the gridline drawn at exactly that height.

A day without sales is a day of zero, not a missing day: it gets a short grey mark on the zero line, so a quiet
day is visibly a day (and the 30 columns are countable), never a gap that reads like missing data.

It is drawn at twice its display size so that it stays sharp on high-density screens.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Sequence

from PIL import Image, ImageDraw

from kanda.reports.model import TrendPoint

#: Display size in CSS pixels (the HTML sets these); the PNG is `SCALE` times larger.
WIDTH = 560
HEIGHT = 140
SCALE = 2
#: Space above the top gridline and below the bottom one, in CSS pixels (the HTML labels are centred on them).
PAD = 6

#: Palette: background, bar, the report's own day, a negative day (more refunded than sold), the zero line,
#: the gridlines, a day without sales.
_PALETTE = [
    (255, 255, 255),
    (147, 197, 253),
    (29, 78, 216),
    (248, 113, 113),
    (156, 163, 175),
    (229, 231, 235),
    (209, 213, 219),
]
_BACKGROUND, _BAR, _TODAY, _NEGATIVE, _AXIS, _GRID, _ZERO_DAY = range(len(_PALETTE))
#: Height of a zero day's mark above the zero line, in CSS pixels.
ZERO_MARK = 3


def nice_ceiling(value: int, exponent: int) -> int:
    """The smallest round amount >= `value` (minor units) of the form 1, 2 or 5 x 10^k major units.

    Axis labels read "₦300,000", not "₦287,413.25"; for amounts under one major unit the minor unit is the step.
    """
    if value <= 0:
        return 0
    step = 10**exponent if value >= 10**exponent else 1
    while True:
        for factor in (1, 2, 5):
            if factor * step >= value:
                return factor * step
        step *= 10


def axis_range(values: Sequence[int], exponent: int) -> tuple[int, int]:
    """(bottom, top) of the value axis in minor units: round amounts enclosing every day and zero."""
    top = nice_ceiling(max([0, *values]), exponent)
    bottom = -nice_ceiling(-min([0, *values]), exponent)
    if top == bottom:  # thirty quiet days: an axis of one major unit, with every day a mark on the zero line
        top = 10**exponent
    return bottom, top


def trend_png(points: Sequence[TrendPoint], exponent: int = 2) -> bytes:
    """A bar per day (net, in minor units), the last day highlighted, negative days below the zero line.

    Gridlines are drawn at the top and bottom of `axis_range`, the amounts the HTML writes beside them.
    """
    width, height = WIDTH * SCALE, HEIGHT * SCALE
    image = Image.new("P", (width, height), _BACKGROUND)
    image.putpalette([channel for colour in _PALETTE for channel in colour])
    draw = ImageDraw.Draw(image)

    values = [p.net_minor for p in points]
    bottom, top = axis_range(values, exponent)
    pad = PAD * SCALE
    plot = height - 2 * pad

    def y_of(value: int) -> int:
        return pad + round(plot * (top - value) / (top - bottom))

    zero = y_of(0)
    draw.line((0, pad, width, pad), fill=_GRID, width=SCALE)
    draw.line((0, height - pad, width, height - pad), fill=_GRID, width=SCALE)
    if values:
        slot = width / len(values)
        gap = max(1, round(slot * 0.18))
        last = len(values) - 1
        for i, value in enumerate(values):
            x0, x1 = round(i * slot) + gap // 2, round((i + 1) * slot) - (gap - gap // 2) - 1
            if value == 0:
                draw.rectangle((x0, zero - ZERO_MARK * SCALE, x1, zero), fill=_TODAY if i == last else _ZERO_DAY)
                continue
            y = y_of(value)
            colour = _TODAY if i == last else _NEGATIVE if value < 0 else _BAR
            draw.rectangle((x0, min(y, zero), x1, max(y, zero)), fill=colour)
    draw.line((0, zero, width, zero), fill=_AXIS, width=SCALE)

    out = io.BytesIO()
    image.save(out, format="PNG", bits=4, compress_level=6, compress_type=zlib.Z_RLE)
    return out.getvalue()
