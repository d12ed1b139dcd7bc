"""Numbers for the dashboard's small spaces: SI prefixes both ways (n, µ, m as well as k, M, G).

`fsd_core.units.si` covers the large prefixes the CLI prints; a cost per query or a layer's
milliseconds need the small ones, and a chart axis needs one scale for all its ticks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from fsd_core.units import si

#: (factor, prefix), largest first.
PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def scale(values: Iterable[float]) -> tuple[float, str]:
    """The factor and prefix that bring the largest magnitude of `values` into [1, 1000)."""
    largest = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if largest == 0:
        return 1.0, ""
    for factor, prefix in PREFIXES:
        if largest >= factor:
            return factor, prefix
    return PREFIXES[-1]


def prefixed(value: float, unit: str) -> str:
    """3 significant digits with an SI prefix, small ones included: 3.274e-05, '$' -> '32.7 µ$'."""
    if value == 0:
        return f"0 {unit}"
    factor, prefix = scale([value])
    return f"{value / factor:.3g} {prefix}{unit}"


def usd(value: float | None) -> str:
    """Dollars: '$2.35' from a cent up, else with a prefix ('32.7 µ$'); None is 'n/a'."""
    if value is None:
        return "n/a"
    if abs(value) >= 0.01:
        return f"${value:,.2f}"
    return prefixed(value, "$")


def seconds(value: float) -> str:
    """'1.13 s', '12.3 ms', '450 µs'."""
    return f"{value:.3g} s" if abs(value) >= 1 or value == 0 else prefixed(value, "s")


def count(value: float) -> str:
    """A whole number with thousands separators."""
    return f"{value:,.0f}"


__all__ = ["PREFIXES", "count", "prefixed", "scale", "seconds", "si", "usd"]
