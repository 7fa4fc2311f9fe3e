"""The notebook's own modules a run trained with (issue 15, a user trial: "local modules edited on disk").

A notebook keeps its helpers in ``train_utils.py`` beside it and imports them; between two runs the file is edited
on disk, nothing in the notebook changes. Run in real kernels started in the notebook's folder, driven like
JupyterLab (cell ids) and like nbclient (none), then read with the real CLI: the second run's diff and explanation
show the module's edit, and the replay of the first run imports the version it trained with and reproduces its
accuracy. A file edited but not reloaded is not what the kernel runs: the run keeps the version the kernel runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import types

import pytest
from jupyter_client.manager import KernelManager
from test_kernel import kernel_env  # noqa: F401  (fixture)

from nbexp.ledger.queries import Reader

pytestmark = pytest.mark.kernel

UTILS = (
    "from sklearn.linear_model import LogisticRegression\n"
    "\n"
    "def load(X):\n"
    "    return X[:, :10]\n"
    "\n"
    "def build_model(C):\n"
    "    return LogisticRegression(C=C, max_iter=3000)\n"
)
EDITED = UTILS.replace("X[:, :10]", "X[:, :3]")
DATA = "from sklearn.datasets import load_breast_cancer\nX, y = load_breast_cancer(return_X_y=True)"
FIT = "model = build_model(C=1.0)\nmodel.fit(load(X), y)"
EVAL = "acc = model.score(load(X), y)\nprint('accuracy', acc)"


class Kernel:
    """A kernel started in the notebook's folder; cells sent with a JupyterLab cell id when ``ids``."""

    def __init__(self, env, cwd, ids):
        self.ids = ids
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, key, code):
        msg = self.kc.session.msg(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": False},
            metadata={"cellId": key} if self.ids else {},
        )
        self.kc.shell_channel.send(msg)
        out = []
        while True:
            m = self.kc.get_iopub_msg(timeout=120)
            if m["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            elif m["msg_type"] == "error":
                raise AssertionError(f"{key}: {m['content']['ename']}: {m['content']['evalue']}")
            elif m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return "".join(out)

    def shutdown(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


@pytest.fixture
def notebook(kernel_env, tmp_path):  # noqa: F811
    started = []

    def start(ids):
        k = Kernel(kernel_env, tmp_path, ids)
        started.append(k)
        return k

    yield start
    for k in started:
        if k.km.is_alive():
            k.shutdown()


def cli(*args, cwd):
    res = subprocess.run(
        [sys.executable, "-m", "nbexp.cli", *args], capture_output=True, text=True, cwd=cwd, env=dict(os.environ)
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def write(path, text):
    """Write a module; its modification time moves on (autoreload compares file times)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    while path.stat().st_mtime_ns <= before:
        time.sleep(0.05)
        path.write_text(text)


def modules_of(reader, run_id):
    return {a["name"]: a["sha256"] for a in reader.artifacts(run_id) if a["name"].startswith("@modules/")}


def train_and_evaluate(k):
    """The notebook's data, training and evaluation cells, run in turn: what the evaluation printed."""
    k.run("data", DATA)
    k.run("fit", FIT)
    return k.run("eval", EVAL)


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_an_edit_of_a_module_beside_the_notebook_shows_in_diff_explain_and_replay(notebook, tmp_path, ledger_path):
    utils = tmp_path / "train_utils.py"
    write(utils, UTILS)
    k = notebook(ids=True)
    k.run("track", "%load_ext nbexp\n%nbexp track mod")
    k.run("imports", "%load_ext autoreload\n%autoreload 2\nfrom train_utils import build_model, load")
    first = train_and_evaluate(k)
    write(utils, EDITED)
    k.run("fit", FIT)
    second = k.run("eval", EVAL)
    k.shutdown()
    assert first != second  # autoreload loaded the edit: the model saw 3 columns

    with Reader(ledger_path) as r:
        runs = {x["name"]: x for x in r.list_runs()}
        a, b = runs["mod"], runs["mod #2"]
        # each run keeps the module as it trained with it, and nothing of the environment or of nbexp
        assert modules_of(r, a["id"]) == {"@modules/train_utils.py": sha(UTILS)}
        assert modules_of(r, b["id"]) == {"@modules/train_utils.py": sha(EDITED)}
    diff = cli("diff", a["id"], b["id"], cwd=tmp_path).stdout
    assert "(none: same params)" in diff and "(same code)" in diff
    modules = diff.split("modules (the notebook's own files the runs trained with)")[1]
    assert "-    return X[:, :10]" in modules and "+    return X[:, :3]" in modules
    explain = cli("explain", b["id"], "--vs", a["id"], cwd=tmp_path).stdout
    assert "first cause: module train_utils.py changed (+1/-1 lines): return X[:, :3]" in explain

    # the replay of the first run imports the version it trained with: the same accuracy, though the file changed
    res = cli("replay", a["id"], "--execute", "-o", str(tmp_path / "replay.ipynb"), cwd=tmp_path)
    assert "train_utils.py changed: the replay imports the version it trained with" in res.stderr
    assert "params: no change" in res.stdout
    with Reader(ledger_path) as r:
        replay = next(x for x in r.list_runs() if x["replay_of"] == a["id"])
        assert replay["metrics"]["acc"]["last"] == a["metrics"]["acc"]["last"]
        assert modules_of(r, replay["id"]) == {"@modules/train_utils.py": sha(UTILS)}
        # where the module is, as in the run it replays: not the replay's folder of kept copies
        assert [a["path"] for a in r.artifacts(replay["id"]) if a["name"].startswith("@modules/")] == ["train_utils.py"]
    assert utils.read_text() == EDITED  # the user's file is left as it is


def test_a_module_edited_without_a_reload_keeps_the_version_the_kernel_runs(notebook, tmp_path, ledger_path):
    utils = tmp_path / "train_utils.py"
    write(utils, UTILS)
    k = notebook(ids=False)  # nbclient, papermill: no cell ids
    k.run("imports", "import importlib\nimport train_utils\nfrom train_utils import build_model, load")
    k.run("track", "%load_ext nbexp\n%nbexp track plain")  # imported before tracking: kept all the same
    first = train_and_evaluate(k)
    write(utils, EDITED)
    warned = k.run("fit", FIT)  # no autoreload: the kernel still runs the module it imported
    assert first == k.run("eval", EVAL)
    assert "train_utils.py changed on disk after it was imported" in warned
    reload = "train_utils = importlib.reload(train_utils)\nfrom train_utils import build_model, load"
    k.run("reload", reload)
    write(utils, UTILS.replace("X[:, :10]", "X[:, :5]"))  # edited again after the reload, not reloaded
    k.run("fit", FIT)
    second = k.run("eval", EVAL)
    assert first != second
    write(utils, "def load(X):\n    return X[:, :")  # saved half-edited: the reload fails, the kernel runs EDITED
    k.run("reload", "try:\n    " + reload.replace("\n", "\n    ") + "\nexcept SyntaxError:\n    pass")
    k.run("fit", FIT)
    assert k.run("eval", EVAL) == second
    k.shutdown()

    with Reader(ledger_path) as r:
        runs = {x["name"]: x for x in r.list_runs()}
        assert modules_of(r, runs["plain"]["id"]) == {"@modules/train_utils.py": sha(UTILS)}
        assert modules_of(r, runs["plain #2"]["id"]) == {"@modules/train_utils.py": sha(UTILS)}
        # the version the reload loaded, not the file edited after it nor the one that failed to load
        assert modules_of(r, runs["plain #3"]["id"]) == {"@modules/train_utils.py": sha(EDITED)}
        assert modules_of(r, runs["plain #4"]["id"]) == {"@modules/train_utils.py": sha(EDITED)}


def test_autoreload_turned_on_after_an_edit_loads_nothing(notebook, tmp_path, ledger_path):
    """``%autoreload 2`` enabled after the file was edited: autoreload's first look takes the file's time as loaded
    and reloads nothing, so the kernel runs the imported version, and so does the run (a review)."""
    utils = tmp_path / "train_utils.py"
    write(utils, UTILS)
    k = notebook(ids=True)
    k.run("track", "%load_ext nbexp\n%nbexp track late")
    k.run("imports", "from train_utils import build_model, load")
    first = train_and_evaluate(k)
    write(utils, EDITED)
    k.run("auto", "%load_ext autoreload\n%autoreload 2")
    warned = k.run("fit", FIT)
    assert k.run("eval", EVAL) == first  # autoreload reloaded nothing
    assert "train_utils.py changed on disk after it was imported" in warned
    k.shutdown()
    with Reader(ledger_path) as r:
        assert modules_of(r, r.list_runs()[0]["id"]) == {"@modules/train_utils.py": sha(UTILS)}


def test_a_replay_imports_the_kept_package_before_the_notebooks_own_path(notebook, tmp_path, ledger_path):
    """The helpers in a package under ``src/`` the notebook puts first on ``sys.path``, imported before tracking;
    one of its modules edited after the run: the replay (from another folder too) still imports the kept versions,
    the package's ``__init__`` with them, and reproduces the accuracy (a review and a user trial: the notebook's own
    ``sys.path.insert(0, 'src')`` ran after the replay's and brought the edited file back)."""
    pkg = tmp_path / "src" / "helpers"
    pkg.mkdir(parents=True)
    write(pkg / "__init__.py", "")
    write(pkg / "features.py", "def load(X):\n    return X[:, :10]\n")
    write(pkg / "models.py", UTILS.replace("def load(X):\n    return X[:, :10]\n", "from .features import load\n"))
    k = notebook(ids=True)
    k.run("path", "import sys\nsys.path.insert(0, 'src')\nfrom helpers.models import build_model, load")
    k.run("track", "%load_ext nbexp\n%nbexp track pkg")
    train_and_evaluate(k)
    k.shutdown()
    write(pkg / "features.py", "def load(X):\n    return X[:, :3]\n")
    with Reader(ledger_path) as r:
        run = r.list_runs()[0]
        assert set(modules_of(r, run["id"])) == {
            "@modules/helpers/__init__.py",
            "@modules/helpers/features.py",
            "@modules/helpers/models.py",
        }
    for out in (tmp_path / "replay.ipynb", tmp_path / "elsewhere" / "replay.ipynb"):
        res = cli("replay", run["id"], "--execute", "-o", str(out), cwd=tmp_path)
        assert "params: no change" in res.stdout, res.stdout + res.stderr
        assert "other modules than the original" not in res.stderr
        note = "helpers/features.py changed" if out.parent == tmp_path else "helpers/features.py is not there"
        assert note in res.stderr, res.stderr  # the folder the replay runs in has the edited file, or none
        with Reader(ledger_path) as r:
            replay = r.list_runs()[0]
            assert replay["replay_of"] == run["id"]
            assert replay["metrics"]["acc"]["last"] == run["metrics"]["acc"]["last"]


def test_only_the_folders_modules_the_notebook_reaches_are_kept(tmp_path, monkeypatch):
    """In-process (an IPython inside a test runner or an app has modules of its own under the folder): a module
    imported before the session is kept once the namespace reaches it, with the helper it imports; one nothing
    reaches, the environment's and nbexp's are not; one imported afterwards is kept as it was imported."""
    from nbexp.capture.modules import LocalModules

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "lm_helper.py").write_text("def scale(x):\n    return 2 * x\n")
    (tmp_path / "lm_top.py").write_text("import lm_helper\nclass Net:\n    pass\n")
    (tmp_path / "lm_runner.py").write_text("RUNNER = 1\n")
    (tmp_path / "lm_later.py").write_text("LATER = 1\n")
    import lm_runner  # noqa: F401
    import lm_top

    warnings = []
    kept = LocalModules(str(tmp_path), lambda cause, msg: warnings.append(msg))
    assert kept.current({"x": 1}) == {}
    net = lm_top.Net()
    assert sorted(kept.current({"net": net})) == ["@modules/lm_helper.py", "@modules/lm_top.py"]
    (tmp_path / "lm_space").mkdir()  # a namespace package (no __init__.py): its modules are the notebook's
    (tmp_path / "lm_space" / "part.py").write_text("P = 1\n")
    import lm_later  # noqa: F401
    import lm_space.part  # noqa: F401

    kept.notice()
    (tmp_path / "lm_later.py").write_text("LATER = 2  # edited, not reloaded\n")
    modules = kept.current({"net": net})
    assert sorted(modules) == [
        "@modules/lm_helper.py",
        "@modules/lm_later.py",
        "@modules/lm_space/part.py",
        "@modules/lm_top.py",
    ]
    assert modules["@modules/lm_later.py"].data == b"LATER = 1\n"
    assert len(warnings) == 1 and "lm_later.py changed on disk after it was imported" in warnings[0]
    # a module an installed package generates outside it (torch.compile's kernels in /tmp) is that package's
    generated = types.ModuleType("json.lm_generated")
    generated.__file__ = str(tmp_path / "c3fa9.py")
    (tmp_path / "c3fa9.py").write_text("X = 1\n")
    sys.modules["json.lm_generated"] = generated
    kept.notice()
    assert "@modules/json/lm_generated.py" not in kept.current({"net": net})
    for name in ("lm_helper", "lm_top", "lm_runner", "lm_later", "lm_space", "lm_space.part", "json.lm_generated"):
        sys.modules.pop(name, None)


def test_packages_pip_installed_into_a_folder_on_the_path_are_not_the_notebooks(tmp_path, monkeypatch):
    """``pip install --target site`` with ``site`` on ``PYTHONPATH`` (a shared folder of packages, a kernel whose
    IPython is installed so): its packages are the environment's, not the notebook's own modules (on the device
    machine every IPython and ipykernel module was kept, and the notebook's own past the 50th were not). A folder of
    the notebook's own code beside it still counts."""
    from nbexp.capture.modules import LocalModules

    site, src = tmp_path / "site", tmp_path / "src"
    (site / "lm_installed" / "sub").mkdir(parents=True)
    (site / "lm_installed" / "__init__.py").write_text("A = 1\n")
    (site / "lm_installed" / "sub" / "__init__.py").write_text("from . import deep\n")
    (site / "lm_installed" / "sub" / "deep.py").write_text("D = 1\n")
    (site / "lm_single.py").write_text("S = 1\n")
    (site / "lm_installed-1.0.dist-info").mkdir()
    (site / "lm_installed-1.0.dist-info" / "METADATA").write_text("Name: lm_installed\n")
    src.mkdir()
    (src / "lm_mine.py").write_text("M = 1\n")
    # `pip install --target .` beside the notebook: its own modules there still count (a review)
    (tmp_path / "lm_beside.py").write_text("B = 1\n")
    (tmp_path / "requests-2.32.0.dist-info").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.syspath_prepend(str(tmp_path))
    kept = LocalModules(str(tmp_path), lambda cause, msg: None)
    names = ("lm_installed", "lm_installed.sub", "lm_installed.sub.deep", "lm_single", "lm_mine", "lm_beside")
    try:
        import lm_beside  # noqa: F401
        import lm_installed.sub.deep  # noqa: F401
        import lm_mine  # noqa: F401
        import lm_single  # noqa: F401

        kept.notice()
        assert sorted(kept.current({})) == ["@modules/lm_beside.py", "@modules/lm_mine.py"]
    finally:
        for name in names:
            sys.modules.pop(name, None)


def test_a_served_module_runs_the_kept_bytes_at_its_own_path(tmp_path, monkeypatch):
    """In-process, what a replay's first cell does (``serve``): the kept bytes run as the module at its path in the
    notebook's folder (``__file__`` and the data beside it as in the run, not the replay's folder), ahead of the
    folder's edited file; a folder of kept modules without a package on disk is a namespace package."""
    from nbexp.analysis.replay import kept_modules, serve

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "cols.txt").write_text("7")
    kept_src = b"from pathlib import Path\nN = int((Path(__file__).parent / 'cols.txt').read_text())\nV = 'kept'\n"
    (tmp_path / "lm_served.py").write_text("V = 'edited'\n")
    modules = {
        "lm_served.py": {"path": "lm_served.py", "sha256": sha(kept_src.decode()), "data": kept_src},
        "lm_ns/inner.py": {"path": "elsewhere/lm_ns/inner.py", "sha256": sha("W = 2\n"), "data": b"W = 2\n"},
    }
    folder, differ, skipped = kept_modules(modules, tmp_path, "replay")
    assert differ == ["lm_ns/inner.py is not there", "lm_served.py changed"] and skipped == []
    before = list(sys.meta_path)
    try:
        serve(str(folder))
        import lm_ns.inner
        import lm_served

        assert (lm_served.V, lm_served.N) == ("kept", 7)
        assert lm_served.__file__ == str(tmp_path / "lm_served.py")
        assert lm_ns.inner.W == 2
    finally:
        sys.meta_path[:] = before
        for name in ("lm_served", "lm_ns", "lm_ns.inner"):
            sys.modules.pop(name, None)


def test_a_replays_worker_processes_import_the_kept_module(notebook, tmp_path, ledger_path):
    """A search with ``n_jobs=2`` over a pipeline whose transformer comes from ``est.py`` beside the notebook, the
    file edited after the run: the replay's joblib workers (loky: new processes, no finder) import the kept version
    too, so the cross-validated score is the run's (a user trial: the workers imported the edited file, the kernel's
    refit the kept one, and the replay mixed the two)."""
    est = (
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "K = 10\n"
        "class Sel(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, X, y=None):\n"
        "        return self\n"
        "    def transform(self, X):\n"
        "        return X[:, :K]\n"
    )
    write(tmp_path / "est.py", est)
    k = notebook(ids=True)
    k.run("track", "%load_ext nbexp\n%nbexp track workers")
    k.run("imports", "from est import Sel\nfrom sklearn.pipeline import make_pipeline\n" + DATA)
    k.run(
        "search",
        "from sklearn.linear_model import LogisticRegression\nfrom sklearn.model_selection import GridSearchCV\n"
        "grid = GridSearchCV(make_pipeline(Sel(), LogisticRegression(max_iter=3000)),\n"
        "                    {'logisticregression__C': [0.1, 1.0]}, cv=3, n_jobs=2)\n"
        "grid.fit(X, y)\nprint('best_cv_score', grid.best_score_)",
    )
    k.shutdown()
    write(tmp_path / "est.py", est.replace("K = 10", "K = 2"))
    res = cli("replay", "latest", "--execute", "-o", str(tmp_path / "replay.ipynb"), cwd=tmp_path)
    assert "est.py changed: the replay imports" in res.stderr
    with Reader(ledger_path) as r:
        replay, run = r.list_runs()[:2]
        assert replay["replay_of"] == run["id"]
        assert replay["metrics"]["best_score"]["last"] == run["metrics"]["best_score"]["last"]
