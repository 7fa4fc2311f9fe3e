"""The review page shows each best run's figures (issue 18): the PNG a best run's cell displayed is in
the page as a data URI, byte-identical; a run that is best on nothing brings none; nothing a run's
outputs hold (HTML, a run name with markup, bytes that claim to be a PNG) is ever rendered as markup."""

from __future__ import annotations

import base64
import io
import re
import sqlite3
from pathlib import Path

import chromium
import pytest
from click.testing import CliRunner

from nbexp.cli import main

pytestmark = pytest.mark.browser  # one test opens the page in chromium

EVIL_NAME = '<img src=x onerror="window.__pwned=1">'
EVIL_HTML = "<script>window.__pwned=1</script><b>bold</b>"


def png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


SHOW = (
    "from IPython.display import display, HTML, Image\ndisplay(Image(data={image!r}))\n"
    "import nbexp\nnbexp.log(acc={acc})"
)


@pytest.fixture
def review(cell, ledger_path, tmp_path):
    """Three runs that each showed their own figure; the second has the best acc and a hostile name
    and also displayed HTML with a script. Returns ``(page text, figures by run, run ids)``."""
    figures = [png((200, 0, 0)), png((0, 160, 0)), png((0, 0, 220))]
    cell("%nbexp track first --sample-hz 0")
    cell(SHOW.format(image=figures[0], acc=0.70))
    cell("%nbexp new second")
    cell(SHOW.format(image=figures[1], acc=0.91) + f"\ndisplay(HTML({EVIL_HTML!r}))")
    cell("%nbexp new third")
    cell(SHOW.format(image=figures[2], acc=0.80))
    cell("%nbexp stop")
    with sqlite3.connect(ledger_path) as conn:
        ids = [r for (r,) in conn.execute("SELECT id FROM runs ORDER BY start_time")]
        conn.execute("UPDATE runs SET name = ? WHERE id = ?", (EVIL_NAME, ids[1]))  # as a bundle may bring it
    conn.close()
    page = tmp_path / "review.html"
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "review", "--sprint", "today", "--html", str(page)])
    assert res.exit_code == 0, res.output
    return page, figures, ids


def data_uris(text: str) -> list[bytes]:
    """The PNGs embedded in the page's body (plotly.js in the head holds one of its own)."""
    text = text.split("</head>", 1)[1]
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_the_best_runs_figure_is_in_the_review_page(review):
    page, figures, ids = review
    text = page.read_text(encoding="utf-8")
    assert "Figures of the best runs" in text
    assert data_uris(text) == [figures[1]]  # the best run's figure, byte-identical; none of the others
    body = text.split("</head>", 1)[1]
    assert EVIL_NAME not in body and "<b>bold</b>" not in body and "window.__pwned=1</script>" not in body
    assert html_escaped(EVIL_NAME) in body  # the name is there, as text


def html_escaped(s: str) -> str:
    import html

    return html.escape(s)


def test_a_blob_that_is_not_what_it_says_is_left_out(cell, ledger_path, tmp_path):
    """An edited ledger (or an imported bundle) whose image/png blob holds HTML: not in the page at all."""
    cell("%nbexp track --sample-hz 0")
    cell(SHOW.format(image=png((1, 2, 3)), acc=0.5))
    cell("%nbexp stop")
    with sqlite3.connect(ledger_path) as conn:
        conn.execute("UPDATE blobs SET data = ? WHERE mime = 'image/png'", (b"<svg onload=alert(1)>",))
    conn.close()
    page = tmp_path / "review.html"
    res = CliRunner().invoke(main, ["--ledger", str(ledger_path), "review", "--sprint", "today", "--html", str(page)])
    assert res.exit_code == 0, res.output
    body = page.read_text(encoding="utf-8").split("</head>", 1)[1]  # the head: plotly.js
    assert "onload=alert" not in body and "data:image" not in body
    assert "PHN2ZyBvbmxvYWQ" not in body  # nor its base64


def test_the_review_page_shows_the_figure_in_chromium(review, tmp_path):
    page, figures, ids = review
    chromium.skip_unless_installed()
    with chromium.headless() as b:
        pg = b.new_page()
        problems: list[str] = []
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.on("dialog", lambda d: (problems.append(d.message), d.dismiss()))
        pg.goto(page.as_uri())
        img = pg.locator(f'.nbexp-run-figures[data-run="{ids[1]}"] img')
        pg.wait_for_function("n => n.complete && n.naturalWidth === 40", arg=img.element_handle(), timeout=30_000)
        assert pg.locator(".nbexp-run-figures img").count() == 1
        assert EVIL_NAME in pg.locator("h3", has_text="best acc").inner_text()  # shown as written
        pg.wait_for_timeout(300)
        assert pg.evaluate("typeof window.__pwned") == "undefined" and not problems
        img.scroll_into_view_if_needed()
        shots = Path(__import__("os").environ.get("NBEXP_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(shots / "review-figures.png"))
