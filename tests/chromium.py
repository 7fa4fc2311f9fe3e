"""Debian's chromium, headless, driven by Playwright: the one way the tests and benches that open a page
outside `jupyter lab` (the HTML review, the report's security checks, bench/bench_server.py's first paint)
launch it, so the executable and its flags are written once.

Imports neither pytest nor Playwright at import time, so a bench can use it (bench files put tests/ on
``sys.path``)::

    if chromium.installed():
        with chromium.headless() as browser:
            page = browser.new_page()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `playwright install` is never run
ARGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # a container's small /dev/shm
]


def installed() -> bool:
    """Whether Debian's chromium is on this machine."""
    return Path(CHROMIUM).exists()


def skip_unless_installed() -> None:
    """In a test: skip it when chromium is missing (`make test` installs it)."""
    if not installed():
        import pytest

        pytest.skip("Debian's chromium is not installed (make test installs it)")


@contextmanager
def headless() -> Iterator[Any]:
    """A headless chromium (a Playwright ``Browser``), closed on the way out even when the block fails."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
