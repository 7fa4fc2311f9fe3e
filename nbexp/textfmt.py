"""Plain-text formatting shared by the CLI, the magics and the reports."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from typing import Any


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


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


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
