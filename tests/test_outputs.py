"""What a run's cells showed, kept with the run (issue 18): figures, tables, the last value's repr and
the tail of stdout, stored once per content hash under a per-run budget, scrubbed of secrets, carried by
bundles, read back through the Reader, the REST API and the CLI; ``nbexp.log_artifact`` for files."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import subprocess
import sys

import pytest

import nbexp
from nbexp.errors import InvalidArgument
from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.slow  # real shells and displays, the CLI as a process, bundles

NBEXP = [sys.executable, "-m", "nbexp.cli"]
SECRET = "sk-proj-Zq8vW2mXyT4uB7nK1pL0rS5dF3gH6jQa"  # tests/test_secrets.py's "openai" shape


def png(color=(200, 30, 30), size=(8, 8)) -> bytes:
    """A real PNG file's bytes (PIL), one colour per figure."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def noise(seed: int, side: int = 11) -> bytes:
    """A PNG of random pixels: incompressible, so its size is known (442 bytes at 11x11)."""
    import random

    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3)).save(buf, format="PNG")
    return buf.getvalue()


def shown(reader, run="latest") -> list[tuple[str, str, bytes]]:
    """``(kind, mime, content)`` of every output of a run, in order."""
    r = reader()
    return [(o["kind"], o["mime"], r.blob(o["hash"])["data"]) for c in r.outputs(r.resolve(run)) for o in c["outputs"]]


def test_a_figure_and_a_table_are_kept_byte_identical(cell, reader):
    image = png()
    cell("%nbexp track --sample-hz 0")
    cell(f"from IPython.display import display, HTML, Image\nfigure = Image(data={image!r})")
    cell("display(figure)\ndisplay(HTML('<table><tr><th>lr</th></tr><tr><td>0.1</td></tr></table>'))\n'done'")
    outputs = shown(reader)
    displays = [(mime, data) for kind, mime, data in outputs if kind == "display"]
    assert displays == [
        ("image/png", image),
        ("text/html", b"<table><tr><th>lr</th></tr><tr><td>0.1</td></tr></table>"),
    ]
    assert ("result", "text/plain", b"'done'") in outputs  # the last expression's repr
    r = reader()
    [cell_outputs] = [c for c in r.outputs(r.resolve("latest")) if c["outputs"][0]["kind"] == "display"]
    assert cell_outputs["execution_count"] is not None
    assert [o["size"] for o in cell_outputs["outputs"][:2]] == [len(image), len(displays[1][1])]


def test_stdout_keeps_only_its_tail(cell, reader):
    cell("%nbexp track --sample-hz 0")
    cell("for i in range(10_000):\n    print(f'line {i:05d} ' + 'x' * 4)")  # 160 KB printed
    [(kind, mime, text)] = [o for o in shown(reader) if o[0] == "stdout"]
    assert mime == "text/plain"
    assert 19 * 1024 < len(text) <= 20 * 1024
    assert text.endswith(b"line 09999 xxxx\n")
    assert text.startswith(b"line ") and b"line 00000" not in text  # from a line start, the head gone


def test_secrets_are_scrubbed_from_printed_and_displayed_text(cell, reader, ledger_path):
    cell("%nbexp track --sample-hz 0")
    cell(f'API_KEY = "{SECRET}"')
    cell(
        "from IPython.display import display, HTML\n"
        "print('calling with', API_KEY)\ndisplay(HTML(f'<td>{API_KEY}</td>'))"
    )
    cell("API_KEY")
    outputs = shown(reader)
    assert {kind for kind, _, _ in outputs} == {"stdout", "display", "result"}
    for _kind, _mime, data in outputs:
        assert SECRET.encode() not in data
        assert b"[REDACTED]" in data
    with sqlite3.connect(ledger_path) as conn:
        assert not conn.execute("SELECT count(*) FROM blobs WHERE instr(data, ?) > 0", (SECRET.encode(),)).fetchone()[0]


def test_the_same_image_shown_twice_is_stored_once(cell, reader, ledger_path):
    image = png((10, 120, 240))
    cell("%nbexp track --sample-hz 0")
    cell(f"from IPython.display import display, Image\nfigure = Image(data={image!r})")
    cell("display(figure)")
    cell("display(figure)")
    digest = hashlib.sha256(image).hexdigest()
    assert [kind for kind, mime, data in shown(reader) if data == image] == ["display", "display"]
    with sqlite3.connect(ledger_path) as conn:
        assert conn.execute("SELECT count(*) FROM blobs WHERE hash = ?", (digest,)).fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM cell_outputs WHERE hash = ?", (digest,)).fetchone()[0] == 2


def test_the_budget_stops_storing_and_says_so_once(cell, reader, capfd):
    images = [noise(i) for i in range(4)]
    assert all(1048 / 3 < len(x) < 1048 / 2 for x in images)  # two fit in the budget, three do not
    cell("%nbexp track --sample-hz 0 --outputs-budget 0.001")  # 1048 bytes
    cell(f"from IPython.display import display, Image\nimages = {images!r}")
    capfd.readouterr()
    cell("display(Image(data=images[0]))\ndisplay(Image(data=images[1]))")
    cell("display(Image(data=images[2]))")
    cell("display(Image(data=images[3]))")
    err = capfd.readouterr().err
    assert err.count("outputs budget") == 1, err
    assert [data for kind, _mime, data in shown(reader) if kind == "display"] == images[:2]  # up to the budget
    r = reader()
    assert len(r.outputs(r.resolve("latest"))) == 1  # nothing of the later cells
    run = r.run("latest")
    assert [e["cause"] for e in run["events"]].count("outputs-budget") == 1


def test_an_output_that_cannot_be_kept_is_one_warning_and_the_cell_goes_on(cell, reader, capfd):
    cell("%nbexp track --sample-hz 0")
    capfd.readouterr()
    res = cell(
        "from IPython.display import display\n"
        "display({'image/png': 'not base64!!', 'text/plain': 'broken'}, raw=True)\n"
        "display({'text/html': '<b>fine</b>'}, raw=True)\nafter = 1"
    )
    assert res.success and cell("after").result == 1
    err = capfd.readouterr().err
    assert err.count("nbexp: warning: a image/png output not kept") == 1, err
    assert ("display", "text/html", b"<b>fine</b>") in shown(reader)


def test_budget_zero_keeps_no_outputs(cell, reader):
    cell("%nbexp track --sample-hz 0 --outputs-budget 0")
    cell("print('hello')\n42")
    assert shown(reader) == []
    assert cell("%nbexp track --outputs-budget -1").error_in_exec is not None


def test_a_bundle_carries_outputs_and_artifacts(cell, reader, ledger_path, tmp_path):
    from nbexp.export.bundle import export_bundle, import_bundle
    from nbexp.ledger import connect

    image = png((0, 200, 0))
    model = tmp_path / "model.bin"
    model.write_bytes(b"\x00weights\xff" * 100)
    cell("%nbexp track --sample-hz 0")
    cell(f"from IPython.display import display, Image\ndisplay(Image(data={image!r}))\nprint('epoch 1 done')")
    cell(f"import nbexp\nnbexp.log_artifact({str(model)!r})")
    cell("%nbexp stop")
    before = shown(reader)
    with Reader(ledger_path) as r:
        rid = r.resolve("latest")
        artifacts = r.artifacts(rid)
    bundle = tmp_path / "runs.nbexp"
    src = connect(ledger_path)
    try:
        export_bundle(src, [rid], bundle)
    finally:
        src.close()
    other = tmp_path / "other.sqlite"
    assert import_bundle(bundle, other)["runs_added"] == 1
    with Reader(other) as r:
        after = [(o["kind"], o["mime"], r.blob(o["hash"])["data"]) for c in r.outputs(rid) for o in c["outputs"]]
        assert r.artifacts(rid) == artifacts
        assert r.blob(artifacts[0]["sha256"])["data"] == model.read_bytes()
    assert after == before and ("display", "image/png", image) in after


def test_a_bundle_with_a_planted_blob_is_refused(cell, ledger_path, tmp_path):
    """A blob whose bytes are not those of its hash (a figure swapped for something else) is refused."""
    from nbexp.export.bundle import BundleError, checksum, export_bundle, import_bundle
    from nbexp.ledger import connect

    cell("%nbexp track --sample-hz 0")
    cell("print('the real output')")
    cell("%nbexp stop")
    with Reader(ledger_path) as r:
        rid = r.resolve("latest")
    bundle = tmp_path / "runs.nbexp"
    src = connect(ledger_path)
    try:
        export_bundle(src, [rid], bundle)
    finally:
        src.close()
    conn = sqlite3.connect(bundle)
    conn.execute("UPDATE blobs SET data = ?", (b"planted",))
    conn.execute("UPDATE bundle_manifest SET value = ? WHERE key = 'checksum'", (checksum(conn),))
    conn.commit()
    conn.close()
    other = tmp_path / "other.sqlite"
    with pytest.raises(BundleError, match="not the SHA-256 of its data"):
        import_bundle(bundle, other)


def test_log_artifact_records_a_file_and_refuses_bad_input(cell, reader, tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"model-v1" * 1000)
    cell("%nbexp track --sample-hz 0")
    info = nbexp.log_artifact(str(model))
    assert info["name"] == "model.pkl" and info["stored"] is True
    nbexp.log_artifact(b"a,b\n1,2\n", name="preds.csv")
    model.write_bytes(b"model-v2")  # overwritten later: the run keeps its own copy
    for bad, arg in (
        (tmp_path / "missing.pkl", "path_or_object"),
        (tmp_path, "path_or_object"),
        (12, "path_or_object"),
        (b"no name", "name"),
    ):
        with pytest.raises(InvalidArgument, match=arg):
            nbexp.log_artifact(bad)
    with pytest.raises(InvalidArgument, match="name"):
        nbexp.log_artifact(str(model), name=3)
    with pytest.raises(InvalidArgument, match=r"name=\.\.\.\): names starting '@modules/' are the run's own"):
        nbexp.log_artifact(b"x = 1", name="@modules/train_utils.py")  # a module the run trained with is nbexp's
    r = reader()
    rid = r.resolve("latest")
    arts = {a["name"]: a for a in r.artifacts(rid)}
    assert set(arts) == {"model.pkl", "preds.csv"}  # nothing from the bad calls
    m = arts["model.pkl"]
    assert m["path"] == str(model) and m["size"] == 8000 and m["stored"]
    assert m["sha256"] == hashlib.sha256(b"model-v1" * 1000).hexdigest()
    assert r.blob(m["sha256"])["data"] == b"model-v1" * 1000
    assert r.blob(arts["preds.csv"]["sha256"])["data"] == b"a,b\n1,2\n" and arts["preds.csv"]["path"] is None


def test_log_artifact_needs_a_tracked_run(nbexp_home, tmp_path):
    from nbexp.errors import NotTracking

    f = tmp_path / "x.txt"
    f.write_text("x")
    with pytest.raises(NotTracking):
        nbexp.log_artifact(str(f))


def test_artifact_paths_are_one_file_each_inside_the_folder_and_a_clean_name_keeps_its_own(tmp_path):
    """What an export and ``nbexp outputs --save`` write: every name its own file, none another's folder, nothing
    outside the folder, and a name that is a clean path keeps it (``x`` stays ``x`` beside ``../../x``)."""
    from nbexp.capture.outputs import artifact_paths

    names = ["../../x", "x", "out", "out/a.csv", "out/a b.csv", "/abs/m.pt", "page.html", "a~b", "a_b/c.csv"]
    paths = artifact_paths(names)
    assert paths["x"] == "x" and paths["out"] == "out" and paths["a_b/c.csv"] == "a_b/c.csv"
    assert paths["page.html"] == "page.html.txt"  # never written as a page to open
    for name, rel in paths.items():  # written in turn, as the exports write them: each one lands, none is lost
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(name)
    written = {str(p.relative_to(tmp_path)): p.read_text() for p in tmp_path.rglob("*") if p.is_file()}
    assert sorted(written.values()) == sorted(names)


def test_cli_lists_and_saves_outputs(cell, ledger_path, tmp_path):
    image = png((1, 2, 3))
    cell("%nbexp track --sample-hz 0")
    cell(f"from IPython.display import display, Image, HTML\ndisplay(Image(data={image!r}))\ndisplay(HTML('<b>x</b>'))")
    cell("%nbexp stop")
    env = {"NBEXP_LEDGER": str(ledger_path)}
    import os

    env = dict(os.environ, **env)
    show = subprocess.run(NBEXP + ["show", "latest", "--outputs"], capture_output=True, text=True, env=env)
    assert show.returncode == 0, show.stderr
    assert "image/png" in show.stdout and "text/html" in show.stdout and f"{len(image)}" in show.stdout
    out = tmp_path / "saved"
    save = subprocess.run(NBEXP + ["outputs", "latest", "--save", str(out)], capture_output=True, text=True, env=env)
    assert save.returncode == 0, save.stderr
    files = sorted(p.name for p in out.iterdir())
    pngs = [p for p in files if p.endswith(".png")]
    assert len(pngs) == 1 and (out / pngs[0]).read_bytes() == image
    assert any(p.endswith(".html.txt") for p in files)  # HTML saved as text, never as a page to open
    listed = subprocess.run(NBEXP + ["outputs", "latest", "--json"], capture_output=True, text=True, env=env)
    assert json.loads(listed.stdout)[0]["outputs"][0]["mime"] == "image/png"
    bad = subprocess.run(NBEXP + ["outputs", "nosuchrun"], capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@pytest.fixture
def jp_server_config(ledger_path):
    return {"ServerApp": {"jpserver_extensions": {"nbexp": True}}, "NbexpApp": {"ledger": str(ledger_path)}}


@pytest.mark.server
async def test_rest_lists_outputs_and_serves_blobs_safely(cell, ledger_path, jp_fetch):
    import tornado.httpclient

    image = png((9, 9, 9))
    cell("%nbexp track --sample-hz 0")
    cell(
        "from IPython.display import display, Image, HTML\n"
        f"display(Image(data={image!r}))\ndisplay(HTML('<script>alert(1)</script><table></table>'))"
    )
    cell("%nbexp stop")
    with Reader(ledger_path) as r:
        rid = r.resolve("latest")
    listing = json.loads((await jp_fetch("nbexp", "api", "runs", rid, "outputs")).body)
    outputs = [o for c in listing["cells"] for o in c["outputs"] if o["kind"] == "display"]
    assert [o["mime"] for o in outputs] == ["image/png", "text/html"]
    img = await jp_fetch("nbexp", "api", "blobs", outputs[0]["hash"])
    assert img.body == image and img.headers["Content-Type"] == "image/png"
    assert img.headers["X-Content-Type-Options"] == "nosniff"
    page = await jp_fetch("nbexp", "api", "blobs", outputs[1]["hash"])
    assert page.headers["Content-Type"].startswith("text/plain")  # never rendered as HTML
    assert "sandbox" in page.headers["Content-Security-Policy"]
    assert page.body.startswith(b"<script>")
    for path, code in ((("blobs", "0" * 64), 404), (("blobs", "../etc"), 404), (("runs", "zzzzzz", "outputs"), 400)):
        with pytest.raises(tornado.httpclient.HTTPClientError) as exc:
            await jp_fetch("nbexp", "api", *path)
        assert exc.value.code == code, path


@pytest.mark.kernel
def test_a_matplotlib_figure_in_a_real_kernel_comes_back_byte_identical(nbexp_home, ledger_path, tmp_path, monkeypatch):
    """In ipykernel (its ZMQ display publisher and display hook), the PNG the notebook received and the
    DataFrame table left as a cell's value are what the ledger keeps."""
    import base64
    import os

    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=dict(os.environ))
    kc = km.client()
    kc.start_channels()
    received: list[dict] = []
    try:
        kc.wait_for_ready(timeout=60)

        def run(code):
            def hook(msg):
                if msg["msg_type"] in ("display_data", "execute_result"):
                    received.append(msg["content"]["data"])

            reply = kc.execute_interactive(code, timeout=120, output_hook=hook)
            assert reply["content"]["status"] == "ok", reply["content"]

        run("%load_ext nbexp")
        run("%nbexp track --sample-hz 0")
        run(
            "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2))\nax.plot([3, 1, 2])\n"
            "ax.set_title('loss')\nprint('epoch 3 done')\nplt.show()"
        )
        run("import pandas as pd\npd.DataFrame({'lr': [0.1, 0.3], 'acc': [0.8, 0.9]})")
        run("%nbexp stop")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        km.context.destroy(linger=0)
    sent_png = [base64.b64decode(d["image/png"]) for d in received if "image/png" in d]
    assert len(sent_png) == 1
    with Reader(ledger_path) as r:
        cells = r.outputs(r.resolve("latest"))
        kept = [(o["kind"], o["mime"], r.blob(o["hash"])["data"]) for c in cells for o in c["outputs"]]
    assert ("display", "image/png", sent_png[0]) in kept
    assert ("stdout", "text/plain", b"epoch 3 done\n") in kept
    [table] = [data for kind, mime, data in kept if kind == "result"]
    assert b"<table" in table and b"0.3" in table
