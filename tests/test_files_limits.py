"""Bad input and limits for the files a run wrote (issue 18, "Bad input and limits"): a 5 GB
checkpoint, a file nbexp cannot read when it comes to hash it, a read-only notebook folder. Each is
at most one warning line, the cell unaffected, and the run's record says what was skipped and why.
(The per-run outputs budget: tests/test_outputs.py::test_the_budget_stops_storing_and_says_so_once.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # real shells, a 5 GB sparse file, a process as another user
NBEXP = [sys.executable, "-m", "nbexp.cli"]


def nbexp_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("nbexp:")]


def test_a_5_gb_checkpoint_is_recorded_by_size_with_one_warning(cell, reader, workdir, ledger_path, capfd):
    cell("%nbexp track --sample-hz 0")
    capfd.readouterr()
    # a sparse file: 5 GB long, no disk used; nbexp must not read it
    result = cell("with open('ckpt.bin', 'wb') as f:\n    f.truncate(5 * 2**30)\nprint('saved')")
    assert result.error_in_exec is None
    out, err = capfd.readouterr()
    assert out == "saved\n"
    [line] = nbexp_lines(err)
    assert "ckpt.bin is 5.0 GiB: its size is recorded, not its hash" in line
    r = reader()
    rid = r.resolve("latest")
    [a] = r.artifacts(rid)
    assert (a["name"], a["size"], a["sha256"], a["stored"]) == ("ckpt.bin", 5 * 2**30, "", False)
    cell("%nbexp stop")
    env = dict(os.environ, NBEXP_LEDGER=str(ledger_path))
    show = subprocess.run(NBEXP + ["show", rid], capture_output=True, text=True, env=env)
    assert "warning: ckpt.bin is 5.0 GiB" in show.stdout  # the run's record says what was skipped
    get = subprocess.run(NBEXP + ["get", rid, "ckpt.bin", "-o", "-"], capture_output=True, text=True, env=env)
    assert get.returncode == 1 and "(not hashed)" in get.stderr and get.stdout == ""


# Root reads and writes anything, so the unreadable file and the read-only folder are tested in a shell
# run as nobody (setpriv), which is what a user's kernel meets.
SCRIPT = """\
import json, os, sys
from IPython.core.interactiveshell import InteractiveShell

sh = InteractiveShell.instance()
cells = [
    "%load_ext nbexp",
    "%nbexp track --sample-hz 0",
    "from IPython.display import Image, display\\ndisplay(Image(data=PNG))",
    "import joblib\\njoblib.dump({'w': 1}, 'model.joblib')",  # the notebook folder is read-only
    # written, then made unreadable before nbexp hashes it: as a file gone between the stat and the read
    "with open(OUT + '/preds.csv', 'w') as f:\\n    f.write('a,b')\\nos.chmod(OUT + '/preds.csv', 0)\\ndone = 1",
    "%nbexp stop",
]
sh.user_ns.update(PNG=bytes.fromhex(sys.argv[1]), OUT=sys.argv[2], os=os)
errors = []
for c in cells:
    res = sh.run_cell(c, store_history=True)
    errors.append(type(res.error_in_exec).__name__ if res.error_in_exec else None)
print(json.dumps({"errors": errors, "done": sh.user_ns.get("done")}), file=sys.__stdout__)
"""


@pytest.fixture
def shared():
    """A folder the user nobody can reach (pytest's tmp_path is private to root)."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="nbexp-nobody-")
    os.chmod(folder, 0o755)
    yield __import__("pathlib").Path(folder) / "shared"
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unreadable_file_and_a_read_only_folder_are_one_warning_each(shared, nbexp_home):
    import io

    from PIL import Image

    from nbexp.ledger.queries import Reader

    if os.geteuid() != 0:
        pytest.skip("needs root to run a shell as nobody")
    buf = io.BytesIO()
    Image.new("RGB", (6, 6), (9, 99, 199)).save(buf, format="PNG")
    png = buf.getvalue()
    for d in ("home", "ipython", "out"):
        (shared / d).mkdir(parents=True)
    nb = shared / "nb"
    nb.mkdir()
    for d in (shared, *shared.iterdir()):
        d.chmod(0o777)
    nb.chmod(0o555)  # the notebook folder: read-only for the kernel's user
    script = shared / "run.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(
        os.environ,
        NBEXP_HOME=str(shared / "home"),
        IPYTHONDIR=str(shared / "ipython"),
        HOME=str(shared / "home"),
        PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    )
    env.pop("NBEXP_LEDGER", None)
    res = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, str(script)]
        + [png.hex(), str(shared / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=nb,
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout.strip().splitlines()[-1])
    # the save into the read-only folder is the user's error, as without nbexp; the other cells go on
    assert got["errors"] == [None, None, None, "PermissionError", None, None] and got["done"] == 1
    lines = nbexp_lines(res.stderr)
    assert len([ln for ln in lines if "preds.csv" in ln]) == 1, lines
    assert "preds.csv not recorded (PermissionError" in next(ln for ln in lines if "preds.csv" in ln)
    assert not [ln for ln in lines if "model.joblib" in ln or "Traceback" in ln], lines
    assert "Traceback" not in res.stderr.replace("PermissionError", "") or "joblib" in res.stderr
    with Reader(shared / "home" / "ledger.sqlite") as r:
        run = r.run("latest")
        assert r.artifacts(run["id"]) == []  # neither file: one was never written, one could not be read
        kept = [o["mime"] for c in r.outputs(run["id"]) for o in c["outputs"]]
        assert "image/png" in kept  # the figure is kept all the same
        assert any("preds.csv not recorded" in e["message"] for e in run["events"])
    assert sorted(os.listdir(nb)) == []  # nbexp wrote nothing into the notebook's folder


def test_a_path_built_with_plus_is_found(cell, reader, workdir):
    """``OUT + "/preds.csv"`` names the file as surely as ``OUT / "preds.csv"``; a Path has no ``+``."""
    (workdir / "out").mkdir()
    cell("%nbexp track --sample-hz 0")
    cell("OUT = 'out'\nwith open(OUT + '/preds.csv', 'w') as f:\n    f.write('a,b')")
    r = reader()
    assert [a["name"] for a in r.artifacts(r.resolve("latest"))] == ["out/preds.csv"]
