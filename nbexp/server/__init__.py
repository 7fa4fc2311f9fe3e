"""Jupyter Server extension: the REST API under ``/nbexp/api/`` that the sidebar reads."""

from __future__ import annotations

from typing import Any


def load(serverapp: Any) -> None:
    """Register the handlers on a running Jupyter Server."""
    from .config import NbexpApp
    from .handlers import setup_handlers

    settings = NbexpApp(parent=serverapp, config=serverapp.config)
    setup_handlers(serverapp.web_app, settings)
    serverapp.log.info("nbexp: REST API at /nbexp/api/ on ledger %s", settings.ledger_path())
