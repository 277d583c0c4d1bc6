"""Units of rule thresholds: durations in ns, us, µs, ms, s; counts are plain numbers.

Durations in the analyses' JSON are microseconds (floats), so every duration threshold is
converted to microseconds before it is compared.
"""

from __future__ import annotations

import math

DURATION_UNITS: dict[str, float] = {
    "ns": 1e-3,
    "us": 1.0,
    "µs": 1.0,  # U+00B5 MICRO SIGN
    "μs": 1.0,  # U+03BC GREEK SMALL LETTER MU, what many keyboards type
    "ms": 1e3,
    "s": 1e6,
}
"""Microseconds per unit."""

UNIT_NAMES = "ns, us, µs, ms, s"


def to_microseconds(value: float, unit: str) -> float:
    """``value`` in ``unit`` as microseconds; ``unit`` must be a key of ``DURATION_UNITS``."""
    return value * DURATION_UNITS[unit]


def format_duration(us: float) -> str:
    """Microseconds, readable and exact enough to compare with a threshold: 850 ns, 4.21 ms."""
    if math.isnan(us):
        return "n/a"
    size = abs(us)
    if size == 0:
        return "0 s"
    if size < 1:
        return f"{_trim(us * 1e3)} ns"
    if size < 1e3:
        return f"{_trim(us)} µs"
    if size < 1e6:
        return f"{_trim(us / 1e3)} ms"
    return f"{_trim(us / 1e6)} s"


def format_number(value: float) -> str:
    """A count or plain number without a useless ``.0``."""
    if float(value).is_integer():
        return str(int(value))
    return _trim(value)


def _trim(x: float) -> str:
    """Three significant decimals at most, trailing zeros dropped: 4.2, 12.345, 850."""
    text = f"{x:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
