"""Exporters: move runs out of the ledger. Found through the ``nbexp.exporters`` entry-point
group, so another package can add one; the built-in ones register the same way."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Callable


def exporters() -> dict[str, Callable[..., Any]]:
    """Exporter name -> callable, from the ``nbexp.exporters`` entry points."""
    found = {}
    for ep in entry_points(group="nbexp.exporters"):
        found[ep.name] = ep
    return found
