"""Exporters: move runs out of the ledger. Found through the ``nbexp.exporters`` entry-point
group, so another package can add one; the built-in ones register the same way."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any


def exporters() -> dict[str, Any]:
    """Exporter name -> its entry point (``.load()`` gives the callable), from the ``nbexp.exporters`` group."""
    found = {}
    for ep in entry_points(group="nbexp.exporters"):
        found[ep.name] = ep
    return found
