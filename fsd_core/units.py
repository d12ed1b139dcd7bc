"""Numbers for people: SI prefixes and plain aligned tables (the CLI and the TUI share them)."""

from __future__ import annotations

from typing import Any


def si(value: float, unit: str = "") -> str:
    """3 significant digits with an SI prefix: 3.93e+10 -> '39.3 G'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))]
    out = []
    for k, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) if numeric[i] else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").replace("$", "").replace("%", "").replace("x", ""))
        return True
    except ValueError:
        return False
