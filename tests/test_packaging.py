"""The distributions a user installs: the wheel and sdist built from a clean copy of the repository
(its tracked files plus the lab extension already built in this checkout, as a release has it),
the wheel installed into a fresh environment as pip does it, and the one-line hint an optional
part gives when its library is missing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the distributions; starts the CLI and jupyter as real processes

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "nbexp" / "labextension"
LABEXT_DEST = "share/jupyter/labextensions/nbexp"
INSTALL_JSON = {
    "packageManager": "python",
    "packageName": "nbexp",
    "uninstallInstructions": "Use your Python package manager (pip, conda, etc.) to uninstall the package nbexp",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """``python -m build`` (sdist, then the wheel from that sdist) on a clean copy, where no node,
    npm or jlpm is on the PATH: the prebuilt extension must be enough."""
    if not (BUILT / "static" / "style.js").exists():
        pytest.skip("the lab extension is not built in this checkout (make env builds it)")
    tmp = tmp_path_factory.mktemp("dists")
    src = tmp / "src"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and not path.is_symlink():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name)
    shutil.copytree(BUILT, src / "nbexp" / "labextension")
    no_tools = tmp / "empty-path"
    no_tools.mkdir()
    out = tmp / "dist"
    res = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        env={"PATH": str(no_tools), "HOME": str(tmp)},
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (wheel,) = out.glob("nbexp-*.whl")
    (sdist,) = out.glob("nbexp-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "tmp": tmp}


def test_wheel_ships_the_extension_once_as_shared_data(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = whl.namelist()
        (data,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".data")}
        assert not [n for n in names if n.startswith("nbexp/labextension")]
        for f in BUILT.rglob("*"):
            if f.is_file():
                rel = f.relative_to(BUILT).as_posix()
                assert [n for n in names if n.endswith("/" + rel)] == [f"{data}/data/{LABEXT_DEST}/{rel}"]
        assert json.loads(whl.read(f"{data}/data/{LABEXT_DEST}/install.json")) == INSTALL_JSON
        assert f"{data}/data/etc/jupyter/jupyter_server_config.d/nbexp.json" in names


def test_wheel_metadata_classifiers_license_and_extras(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        (meta_name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(whl.read(meta_name).decode())
        license_text = whl.read(meta_name.replace("METADATA", "licenses/LICENSE")).decode()
    classifiers = meta.get_all("Classifier")
    for c in (
        "Framework :: Jupyter",
        "Framework :: Jupyter :: JupyterLab",
        "Framework :: Jupyter :: JupyterLab :: 4",
        "Framework :: Jupyter :: JupyterLab :: Extensions",
        "Framework :: Jupyter :: JupyterLab :: Extensions :: Prebuilt",
        "Programming Language :: Python :: 3",
    ):
        assert c in classifiers
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert "BSD 3-Clause" in license_text and "nbexp contributors" in license_text
    assert {"mlflow", "wandb", "polars", "spark"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    for lib, extra in (("mlflow", "mlflow"), ("wandb", "wandb"), ("polars", "polars"), ("pyspark", "spark")):
        assert any(r.startswith(lib) and f"extra == '{extra}'" in r for r in requires), (lib, requires)


def test_sdist_holds_sources_and_the_prebuilt_extension_no_binaries(dists):
    with tarfile.open(dists["sdist"]) as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name]
    binary = (".whl", ".so", ".pyd", ".dylib", ".pyc", ".egg", ".sqlite", ".nbexp", ".tar.gz", ".zip")
    assert not [n for n in names if n.endswith(binary)]
    assert not [n for n in names if {"node_modules", "__pycache__", ".venv", ".yarn"} & set(n.split("/"))]
    for needed in ("LICENSE", "install.json", "pyproject.toml", "labextension/src/index.ts"):
        assert needed in names
    # the built extension rides along, so a wheel builds from the sdist without node (as the fixture did)
    assert "nbexp/labextension/static/style.js" in names


def test_installed_wheel_is_listed_once_enabled_with_its_install_info(dists):
    """pip installs the wheel into a fresh environment (its dependencies borrowed from this one
    through a .pth file); there JupyterLab lists nbexp once, enabled, installed by python/nbexp,
    and Jupyter Server finds the server extension the wheel enables."""
    env_dir = dists["tmp"] / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "--no-compile"]
        + ["--prefix", str(env_dir), str(dists["wheel"])],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert (env_dir / LABEXT_DEST / "install.json").is_file()
    assert not (Path(purelib) / "nbexp" / "labextension").exists()

    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "HOME": str(dists["tmp"]),
        "JUPYTER_DATA_DIR": str(dists["tmp"] / "jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(dists["tmp"] / "jupyter-config"),
    }
    where = subprocess.run(
        [python, "-c", "import nbexp; print(nbexp.__file__)"], capture_output=True, text=True, env=env, cwd=env_dir
    )
    assert where.stdout.strip().startswith(purelib), where.stdout + where.stderr

    lab = subprocess.run(
        [python, "-m", "jupyterlab.labextensions", "list"], capture_output=True, text=True, env=env, cwd=env_dir
    )
    out = ANSI.sub("", lab.stdout + lab.stderr)
    assert len(re.findall(r"\bnbexp v", out)) == 1, out
    assert re.search(r"nbexp v[\d.]+\S* enabled\s+OK \(python, nbexp\)", out), out
    assert str(env_dir / "share" / "jupyter" / "labextensions") in out

    server = subprocess.run(
        [python, "-m", "jupyter_server", "extension", "list"], capture_output=True, text=True, env=env, cwd=env_dir
    )
    out = ANSI.sub("", server.stdout + server.stderr)
    assert re.search(r"nbexp\s+enabled", out) and re.search(r"nbexp [\d.]+\S* OK", out), out


def _shim(tmp_path: Path, module: str, raise_line: str) -> Path:
    """A folder that, first on PYTHONPATH, makes ``import MODULE`` raise as stated."""
    (tmp_path / "shim" / module).mkdir(parents=True)
    (tmp_path / "shim" / module / "__init__.py").write_text(raise_line + "\n")
    return tmp_path / "shim"


def _nbexp(tmp_path: Path, shim: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": f"{shim}:{ROOT}",
        "NBEXP_LEDGER": str(tmp_path / "ledger.sqlite"),
    }
    return subprocess.run(
        [sys.executable, "-m", "nbexp.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path
    )


@pytest.mark.parametrize(
    "module, args, message",
    [
        (
            "mlflow",
            ["export", "mlflow", "--all", "--tracking-uri", "http://127.0.0.1:9"],
            'nbexp export mlflow: MLflow is not installed: pip install "nbexp[mlflow]"',
        ),
        (
            "wandb",
            ["export", "wandb", "--all", "--dir", "wb-out"],
            'nbexp export wandb: wandb is not installed: pip install "nbexp[wandb]"',
        ),
    ],
)
def test_missing_library_names_the_extra(tmp_path, module, args, message):
    """Python's own error for an absent module, raised where the library would be: one line naming
    the extra, exit 1, no traceback."""
    shim = _shim(tmp_path, module, f'raise ModuleNotFoundError("No module named {module!r}", name={module!r})')
    res = _nbexp(tmp_path, shim, *args)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"Error: {message}"]
    assert not (tmp_path / "wb-out").exists()


def test_broken_library_says_why_and_names_the_extra(tmp_path):
    """An MLflow that is there but fails to import (one of its own dependencies broken) is not
    called "not installed": its own first line, and the same fix."""
    shim = _shim(tmp_path, "mlflow", "raise ImportError(\"cannot import name 'Engine' from 'sqlalchemy'\")")
    res = _nbexp(tmp_path, shim, "export", "mlflow", "--all", "--tracking-uri", "http://127.0.0.1:9")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "Error: nbexp export mlflow: MLflow does not import (cannot import name 'Engine' from 'sqlalchemy'): "
        'pip install "nbexp[mlflow]"'
    ]
