"""Exporters: move runs out of the ledger. Found through the ``nbexp.exporters`` entry-point
group, so another package can add one; the built-in ones register the same way."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable

from ..errors import InvalidArgument


def exporters() -> dict[str, Callable[..., Any]]:
    """Exporter name -> callable, from the ``nbexp.exporters`` entry points."""
    found = {}
    for ep in entry_points(group="nbexp.exporters"):
        found[ep.name] = ep
    return found


def get_exporter(name: str) -> Callable[..., Any]:
    found = exporters()
    if name not in found:
        raise InvalidArgument(f"unknown exporter {name!r}: one of {', '.join(sorted(found)) or 'none installed'}")
    return found[name].load()
