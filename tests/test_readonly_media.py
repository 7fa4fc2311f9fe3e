"""A ledger on read-only media (a mounted archive, a read-only share): readers still read it.

The folder is made read-only by a read-only bind mount in a private mount namespace
(``unshare -m``), the one way to deny writes to root, who runs the tests: root passes
every permission check, so a chmod 0555 folder would not show the failure.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest


def read_only(folder, *argv) -> subprocess.CompletedProcess:
    """Run ``argv`` with ``folder`` mounted read-only over itself, seen by that process alone."""
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(folder), *argv],
        capture_output=True,
        text=True,
    )


@pytest.fixture
def media(tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    if shutil.which("unshare") is None or read_only(folder, "true").returncode != 0:
        pytest.skip("needs unshare and mount (root with CAP_SYS_ADMIN) to make a read-only folder")
    return folder


def test_ls_reads_a_ledger_in_a_read_only_folder(cell, ledger_path, media):
    cell("%nbexp track first")
    cell("LR = 0.1\nacc = 0.5")
    cell("%nbexp new second")
    cell("%nbexp stop")
    copy = media / "ledger.sqlite"
    with closing(sqlite3.connect(ledger_path)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)  # a WAL ledger, as nbexp writes it, without -wal or -shm
    assert copy.read_bytes()[18:20] == b"\x02\x02"  # the header's WAL mode
    res = read_only(media, sys.executable, "-m", "nbexp.cli", "--ledger", str(copy), "ls", "--json")
    assert res.returncode == 0, res.stderr
    assert [r["name"] for r in json.loads(res.stdout)] == ["second", "first"]
    assert sorted(p.name for p in media.iterdir()) == ["ledger.sqlite"]  # nothing written beside it
