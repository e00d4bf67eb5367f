"""How durations read to people, everywhere in ftui (run history, ETAs, estimates).

format_duration(0.42)   -> '0.42 s'
format_duration(185)    -> '3 min 05 s'
format_duration(3720)   -> '1 h 02 min'
format_duration(400000) -> '4.6 days'
format_duration(None)   -> '-'
"""

from __future__ import annotations

import math

TWO_DAYS = 2 * 86400


def format_duration(seconds: float | None) -> str:
    """A duration in the largest units that keep it readable; '-' when unknown."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "-"
    if seconds < 1:
        return f"{seconds:.2g} s" if seconds else "0 s"
    if seconds >= TWO_DAYS:
        return f"{seconds / 86400:.1f} days"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
