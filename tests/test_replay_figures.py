"""Replay compares figures (issue 18): ``nbexp replay --execute`` says whether the replay showed the
same figures as the original, byte for byte, and for a figure that differs how much (a pixel-diff
summary); a figure the replay did not show is named. Real kernels, the real CLI."""

from __future__ import annotations

import pytest
from test_replay import cli, execute

from nbexp.analysis.replay import compare_figures, pixel_diff
from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.kernel

PLOT = [
    "%load_ext nbexp\n%nbexp track plotted",
    "SCALE = 1.0\nSHOW_HIST = True",
    "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
    "import matplotlib.pyplot as plt\nimport numpy as np\n"
    "x = np.linspace(0, 6, 50)\nfig, ax = plt.subplots(figsize=(3, 2))\nax.plot(x, np.sin(SCALE * x))\nplt.show()",
    "if SHOW_HIST:\n    plt.figure(figsize=(2, 2))\n"
    "    plt.hist(np.random.default_rng(0).normal(size=200))\n    plt.show()",
]


@pytest.fixture
def env(nbexp_home, tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return tmp_path


def test_replay_says_which_figures_differ(env, ledger_path):
    execute(PLOT, env)
    with Reader(ledger_path) as r:
        original = r.list_runs()[0]["id"]
    same = cli("replay", original, "--execute", "-o", str(env / "same.ipynb"), cwd=env)
    assert same.returncode == 0, same.stderr
    assert "figures: 2 same" in same.stdout

    changed = cli("replay", original, "--execute", "--param", "SCALE=2.0", "--param", "SHOW_HIST=False", cwd=env)
    assert changed.returncode == 0, changed.stderr
    lines = changed.stdout.splitlines()
    assert "  figures: 1 differ, 1 missing in the replay" in lines, changed.stdout
    # the sine plot's cell: changed pixels counted; the histogram's: not shown at all
    [differ] = [ln for ln in lines if "PNG: differs:" in ln]
    [missing] = [ln for ln in lines if "not shown by the replay" in ln]
    assert differ.startswith("    figure 1 of cell [") and "% of pixels changed" in differ, differ
    assert missing.startswith("    figure 1 of cell [") and missing != differ

    with Reader(ledger_path) as r:
        runs = r.list_runs()
        first, second = (r.run(x["id"]) for x in reversed(runs[:2]))  # the two replays, oldest first
        figs = compare_figures(r, r.run(original), first)
        assert [f["status"] for f in figs] == ["same", "same"]
        assert {f["mime"] for f in figs} == {"image/png"}
        sine, hist = compare_figures(r, r.run(original), second)
        assert sine["status"] == "differs" and sine["detail"].endswith("/255)")
        assert hist["status"] == "missing" and hist["replay_cell"] is not None and hist["cell"] > sine["cell"]


def test_pixel_diff_counts_changed_pixels():
    import io

    from PIL import Image

    def png(pixels):
        img = Image.new("RGB", (10, 10), (0, 0, 0))
        for xy in pixels:
            img.putpixel(xy, (255, 255, 255))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    assert pixel_diff(png([]), png([(0, 0), (1, 1)])) == "2% of pixels changed (mean 5.1/255)"
    assert pixel_diff(png([]), png([])) == "same pixels (the files differ only in metadata)"
    small = io.BytesIO()
    Image.new("RGB", (4, 5)).save(small, format="PNG")
    assert pixel_diff(png([]), small.getvalue()) == "size 10x10 -> 4x5"
    assert pixel_diff(b"not an image", png([])) is None
