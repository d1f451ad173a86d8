"""The table every benchmark prints: what was measured, the target, and a baseline measured in
the same run on the same machine, with the ratio between them."""

from __future__ import annotations

from collections.abc import Sequence

Row = tuple[str, str, str, str, float | None]  # name, measured, target, baseline, x baseline


def print_table(rows: Sequence[Row]) -> None:
    """Print rows under a header, columns aligned."""
    width = max(len(r[0]) for r in rows)
    columns = [max(14, *(len(r[i]) for r in rows)) for i in (1, 2, 3)]
    header = ("measured", "target", "baseline")
    print()
    print(
        f"{'benchmark':<{width}}  "
        + "  ".join(f"{h:>{w}}" for h, w in zip(header, columns, strict=True))
        + "  x baseline"
    )
    for name, value, target, base, ratio in rows:
        cells = "  ".join(f"{c:>{w}}" for c, w in zip((value, target, base), columns, strict=True))
        shown = f"{ratio:10.1f}" if ratio is not None else ""
        print(f"{name:<{width}}  {cells}  {shown}")
