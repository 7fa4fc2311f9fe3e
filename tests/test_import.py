"""`import nbexp` and `%load_ext nbexp` stay light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "numpy", "torch", "sklearn", "plotly", "mlflow", "sqlite_utils", "ipywidgets")


def test_import_pulls_no_heavy_library():
    code = "import sys, nbexp\nprint(' '.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_load_ext_and_track_pull_no_heavy_library(tmp_path):
    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\n"
        f"sh.run_cell('%load_ext nbexp'); sh.run_cell('%nbexp track --ledger {tmp_path}/l.sqlite')\n"
        "sh.run_cell('x = 1'); sh.run_cell('%nbexp stop')\n"
        f"print('HEAVY:' + ' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    env = {"IPYTHONDIR": str(tmp_path / "ipy"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert "nbexp: stopped; 1 run and 1 cell in" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:"
