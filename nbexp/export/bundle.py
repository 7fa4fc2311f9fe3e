"""The bundle exporter: ``nbexp export bundle`` and ``nbexp import``, over the ledger's bundle
engine (:mod:`nbexp.ledger.bundle`, which owns every read and write of the files). This module
hands it what lives outside the ledger: nbexp's version for the manifest, and capture's rule for a
cell's code hash, which every imported code row must match."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .. import __version__
from ..ledger.bundle import BundleError, checksum, open_bundle
from ..ledger.bundle import export_bundle as _export
from ..ledger.bundle import import_bundle as _import
from ..textfmt import count

__all__ = ["BundleError", "checksum", "cli", "export_bundle", "import_bundle", "open_bundle"]


def _code_hash(source: str) -> str:
    from ..capture.code import prepare

    return prepare(source)[0]


def export_bundle(source: sqlite3.Connection, run_ids: list[str], path: str | Path, overwrite: bool = False) -> dict:
    """See :func:`nbexp.ledger.bundle.export_bundle`."""
    return _export(source, run_ids, path, overwrite, version=__version__)


def import_bundle(path: str | Path, ledger: str | Path | None = None, dry_run: bool = False) -> dict[str, Any]:
    """See :func:`nbexp.ledger.bundle.import_bundle`."""
    return _import(path, ledger, dry_run, code_hash=_code_hash)


def cli():
    """The ``nbexp export bundle`` command (registered through the ``nbexp.exporters`` entry points)."""
    import click

    from .select import select_options, selected_runs

    @click.command("bundle")
    @click.argument("file", type=click.Path(dir_okay=False))
    @select_options
    @click.option("--force", is_flag=True, help="replace FILE if it exists")
    @click.pass_context
    def bundle_cmd(ctx, file, runs, sprint, all_runs, force):
        """Write runs to one portable bundle FILE (a self-describing SQLite file with checksums)."""
        from ..ledger import connect as open_ledger
        from ..ledger.queries import Reader

        with Reader(ctx.obj["ledger"]) as r:
            ids = selected_runs(r, runs, sprint, all_runs)
            src = open_ledger(r.path)
        try:
            info = export_bundle(src, ids, file, overwrite=force)
        finally:
            src.close()
        click.echo(
            f"wrote {info['path']}: {count(info['runs'], 'run')}, {info['points']:,} points, {info['bytes']:,} bytes"
        )

    return bundle_cmd
