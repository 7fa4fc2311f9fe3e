"""The W&B export carries what a run showed and the files it kept (issue 18): each figure and the
model a cell saved become files of the offline run, byte-identical, each announced in a files record
(what ``wandb sync`` uploads); names never leave the run's folder; a file too large to have been
copied is listed in the manifest only."""

from __future__ import annotations

import hashlib
import json

import pytest

pytest.importorskip("wandb.sdk.internal.datastore")
from wandb_offline import export_wandb, read_offline, records  # noqa: E402

pytestmark = pytest.mark.slow  # wandb, real shells, the CLI as a process


def files_records(path) -> set[str]:
    """The paths the offline run's files records name (relative to its files folder)."""
    return {f.path for rec in records(path) if rec.WhichOneof("record_type") == "files" for f in rec.files.files}


def test_figures_and_model_are_files_of_the_wandb_run(cell, ledger_path, tmp_path, workdir, reader):
    nb = workdir
    cell("%nbexp track --sample-hz 0 wb-files")
    cell(
        "import matplotlib\nmatplotlib.use('module://matplotlib_inline.backend_inline')\n"
        "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.title('loss')\nplt.show()"
    )
    cell("import joblib\njoblib.dump({'w': [1.5] * 20}, 'model.joblib')\nopen('report.html', 'w').write('<script>')")
    cell("import nbexp\nnbexp.log_artifact(b'abc', name='../../escape.bin')")
    cell("with open('huge.ckpt', 'wb') as f:\n    f.truncate(11 * 1024 * 1024)")  # over the copy limit
    cell("%nbexp stop")
    r = reader()
    rid = r.resolve("latest")
    [figure] = [r.blob(o["hash"])["data"] for c in r.outputs(rid) for o in c["outputs"] if o["mime"] == "image/png"]
    out = tmp_path / "wb"
    res = export_wandb(ledger_path, out)
    assert res.returncode == 0 and "1 offline runs written" in res.stdout, res.stderr
    [run_dir] = out.glob("wandb/offline-run-*")
    files = run_dir / "files" / "nbexp"
    [png] = files.glob("outputs/*-display.png")
    assert png.read_bytes() == figure
    assert (files / "artifacts" / "model.joblib").read_bytes() == (nb / "model.joblib").read_bytes()
    assert (files / "artifacts" / "report.html.txt").read_text() == "<script>"  # never a page to open
    assert (files / "artifacts" / "escape.bin").read_bytes() == b"abc"  # folded inside the run's folder
    assert not list(out.rglob("escape.bin"))[1:] and not (run_dir / "escape.bin").exists()
    manifest = json.loads((files / "manifest.json").read_text())
    huge = next(a for a in manifest["artifacts"] if a["name"] == "huge.ckpt")
    assert huge["stored"] is False and "file" not in huge and huge["size"] == 11 * 1024 * 1024
    assert not (files / "artifacts" / "huge.ckpt").exists()
    model = next(a for a in manifest["artifacts"] if a["name"] == "model.joblib")
    assert model["sha256"] == hashlib.sha256((nb / "model.joblib").read_bytes()).hexdigest()
    # each one announced to wandb (a files record): `wandb sync` uploads them
    [log] = run_dir.glob("run-*.wandb")
    announced = files_records(log)
    for f in (png, files / "artifacts" / "model.joblib", files / "manifest.json"):
        assert str(f.relative_to(run_dir / "files")) in announced
    assert read_offline(log)["summary"]["nbexp/status"] == "finished"
