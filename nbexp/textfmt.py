"""Plain-text formatting shared by the CLI, the magics and the reports."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Callable, Collection
from contextvars import ContextVar
from typing import Any

ELLIPSIS = "…"
GAP = "  "  # between table columns
# The most characters a line of :func:`table` may take, None for no limit: the CLI sets it from the
# terminal for the command it runs (nbexp/cli.py); the magics and reports leave it unset.
WIDTH: ContextVar[int | None] = ContextVar("nbexp_table_width", default=None)


def fmt(value: Any) -> str:
    """One table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M") if ts else "-"


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is one: "1 run", "3 runs", "1,204 runs"."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


FLOOR = 10  # a cut column keeps this many characters while others can go: a run's name still tells it apart


def _fit(widths: list[int], limit: int, fixed: Collection[int], drop: Collection[int] | None = None) -> list[int]:
    """Column widths that fit ``limit``. Columns go first, in ``drop``'s order (default: from the right;
    never the ``fixed`` ones, the run ids), while even the kept ones cut to :data:`FLOOR` characters would
    not fit; then the widest kept column shrinks first, one character at a time, down to its floor; only if
    that is not enough, below it (never below one character). A dropped column's width is 0."""
    widths = list(widths)
    floors = [w if j in fixed else min(w, FLOOR) for j, w in enumerate(widths)]

    def excess(ws: list[int]) -> int:
        shown = [w for w in ws if w]
        return sum(shown) + len(GAP) * (len(shown) - 1) - limit

    order = [j for j in (drop if drop is not None else range(len(widths) - 1, -1, -1)) if j not in fixed]
    for j in order:
        if excess([f if w else 0 for f, w in zip(floors, widths)]) <= 0 or len([w for w in widths if w]) <= 1:
            break
        widths[j] = 0
    for floor in (floors, [1] * len(widths)):
        over = excess(widths)
        while over > 0:
            shrinkable = [j for j, w in enumerate(widths) if w and j not in fixed and w > floor[j]]
            if not shrinkable:
                break
            j = max(shrinkable, key=lambda j: widths[j])
            widths[j] -= 1
            over -= 1
    return widths


def table(
    headers: list[str],
    rows: list[list[Any]],
    width: int | None = None,
    fixed: Collection[int] = (),
    style: Callable[[int, int, str], str] | None = None,
    drop: Collection[int] | None = None,
) -> str:
    """Rows under headers, columns padded, one line per row (newlines in a cell become spaces).

    Args:
        width: the most characters a line may take (default :data:`WIDTH`'s value; None: no limit).
            Cells are cut with an ellipsis, the widest columns first; nothing wraps.
        fixed: indexes of columns never cut (run ids).
        drop: the order in which columns are left out when even cut they do not fit (default: from the right).
        style: called with (row index, column index, the cell's text after any cut) for each non-empty
            body cell; returns the text to print (colours): padding is added after it, by the text's width.
    """
    cells = [[fmt(c).replace("\n", " ") for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    limit = WIDTH.get() if width is None else width
    if limit:
        widths = _fit(widths, limit, fixed, drop)

    def line(values: list[str], i: int | None) -> str:
        out = []
        for j, (v, w) in enumerate(zip(values, widths)):
            if not w:
                continue
            text = clip(v, w)
            shown = style(i, j, text) if style is not None and i is not None and text else text
            out.append(shown + " " * (w - len(text)))
        return GAP.join(out).rstrip()

    return "\n".join([line(headers, None)] + [line(r, i) for i, r in enumerate(cells)])


def duration(run: dict) -> str:
    if not run["end_time"]:
        return "-"
    s = run["end_time"] - run["start_time"]
    return f"{s:.1f}s" if s < 60 else f"{s / 60:.1f}m" if s < 3600 else f"{s / 3600:.1f}h"


def storable_text(text: str) -> str:
    """``text`` as SQLite can store it: lone surrogates (file names from ``os.listdir`` that
    are not UTF-8) become backslash escapes such as ``\\udce9``; other text is returned as is."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def html_table(header: list[str], rows: list[list[Any]], label: str | None = None) -> str:
    """An HTML table of already-fetched values, every header and cell escaped (names are data)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    aria = f' aria-label="{html.escape(label)}"' if label else ""
    return f"<table{aria}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN as null and infinities as ``"inf"`` / ``"-inf"``: strict JSON (CLI, REST)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
