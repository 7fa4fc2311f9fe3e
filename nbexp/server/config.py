"""Settings of the server extension, as a traitlets Configurable (``c.NbexpApp.ledger``)."""

from __future__ import annotations

from pathlib import Path

from traitlets import Int, Unicode
from traitlets.config import Configurable


class NbexpApp(Configurable):
    """nbexp's server-side settings."""

    ledger = Unicode(
        "",
        config=True,
        help="Ledger file the API reads; empty for the default ($NBEXP_LEDGER, "
        "$NBEXP_HOME/ledger.sqlite or ~/.nbexp/ledger.sqlite).",
    )
    max_page = Int(1000, config=True, help="Largest page of runs one request may ask for.")

    def ledger_path(self) -> Path:
        from ..ledger import resolve_path

        return resolve_path(self.ledger or None)
