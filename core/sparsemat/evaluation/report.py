"""Aggregate per-frame metric dictionaries and print them as Markdown tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from sparsemat.evaluation.metrics import UNITS


def mean_rows(rows: Sequence[Mapping[str, object]], group_by: Sequence[str] = ()) -> list[dict[str, object]]:
    """Average the numeric fields of ``rows`` per group of ``group_by`` keys (first-seen group order).

    Non-numeric fields other than the group keys are dropped; each output row gets ``n`` (rows averaged).
    """
    groups: dict[tuple[object, ...], list[Mapping[str, object]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in group_by), []).append(r)
    out: list[dict[str, object]] = []
    for key, members in groups.items():
        row: dict[str, object] = dict(zip(group_by, key, strict=True))
        names = [k for k in members[0] if k not in group_by]
        for name in names:
            vals: list[float] = []
            for m in members:
                v = m.get(name)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    vals.append(float(v))
            if vals:
                row[name] = sum(vals) / len(vals)
        row["n"] = len(members)
        out.append(row)
    return out


def _header(name: str) -> str:
    base = name[:-4] if name.endswith("_unk") else name
    unit = UNITS.get(base)
    label = f"{base} (unk)" if name.endswith("_unk") else base
    return f"{label} {unit}" if unit else label


def format_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None,
                 digits: int = 3) -> str:
    """A Markdown table of ``rows``; ``columns`` default to the keys of the first row. Metric headers carry
    their reporting unit (e.g. ``mad (unk) x1e3``); floats are printed with ``digits`` decimals."""
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(rows[0])

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(_header(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
