"""The notebook's own modules a run trained with (issue 15, a user trial: "local modules edited on disk").

A notebook that keeps its helpers in a file beside it (``from train_utils import build_model``, often under
``%autoreload 2``) trains with that file's code: an edit of it changes what the next run does, though no cell
changed. Each training cell's run keeps, as artifacts named ``@modules/<module path>`` (``@modules/train_utils.py``,
``@modules/pkg/__init__.py``; a name ``nbexp.log_artifact`` refuses and a written file is not given), the source of
every module of the notebook's own code the kernel has imported, so that ``nbexp diff``, the compare view and
``explain`` show an edit of it and ``nbexp replay`` imports the version the run trained with.

The version recorded is the one the kernel runs, not merely the file on disk. A module's source is read in the
capture of the cell that imported it, and again in the capture of a cell after which the module was loaded again:
``importlib.reload`` gives it a new ``__spec__``; IPython's autoreload (which may patch a module's functions in
place, keeping its spec) keeps the file time it last loaded, and a reload counts once that time changed from one
nbexp saw (autoreload's first look stores the time of the file as it is, loading nothing). A reload that failed
(the file does not compile, or autoreload marked it failed) loaded nothing. Where the version cannot be confirmed,
one warning says so: a file edited on disk and not reloaded (the run keeps the version imported), a module
first read after it was imported (before tracking began) whose file no longer matches its compiled ``.pyc``, a
file edited again while the cell that reloaded it ran.

The notebook's own modules: plain modules whose file is a ``.py`` outside the Python environment (its prefixes,
any ``site-packages``, a folder other than the notebook's that pip installed packages into, which holds their
``.dist-info``: ``pip install --target`` on ``PYTHONPATH``; a virtualenv kept in the project folder too) and
outside nbexp: beside the notebook, in a
``src/`` or ``../src`` it put on ``sys.path``. One imported before the session began counts once the notebook's
namespace reaches it, with the packages above it (an IPython inside a test runner or an application has modules of
its own). At most :data:`MAX_MODULES` modules, each kept up to
:data:`MAX_BYTES` (a larger one by its hash and size). Nothing here raises into a cell: a file that cannot be read
is one warning.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sys
import time
import types
from dataclasses import dataclass
from typing import Any, Callable

PREFIX = "@modules/"  # the artifact names of a run's modules
MAX_MODULES = 50  # the notebook's own modules kept per session
MAX_BYTES = 1 << 20  # a module's source larger than this (1 MiB) is kept by its hash and size only
MAX_NAMES = 20_000  # namespace values looked at to find the modules imported before the session
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ARTIFACT = re.compile(r"@modules/([A-Za-z_][A-Za-z0-9_]*/)*[A-Za-z_][A-Za-z0-9_]*\.py")
_TYPE_DICT = type.__dict__["__dict__"]  # a class's own dict, read without its metaclass's __getattribute__


def artifact_name(module: str, is_package: bool) -> str:
    """``@modules/pkg/sub.py`` for module ``pkg.sub``; ``@modules/pkg/__init__.py`` for package ``pkg``."""
    path = module.replace(".", "/")
    return PREFIX + (f"{path}/__init__.py" if is_package else f"{path}.py")


def is_module_artifact(name: str) -> bool:
    """Whether an artifact name is one of a run's modules (and a safe relative path: names only, no ``..``)."""
    return _ARTIFACT.fullmatch(name) is not None


def module_name(path: str) -> str:
    """The module a kept module path stands for: ``pkg/sub.py`` -> ``pkg.sub``, ``pkg/__init__.py`` -> ``pkg``."""
    parts = path[: -len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@dataclass
class _Module:
    name: str
    file: str
    spec: Any  # the module's __spec__ when its source was read: another object once it was loaded again
    mtime_ns: int
    size: int
    digest: str
    data: bytes | None  # None: larger than MAX_BYTES
    auto: float | None = None  # the file time autoreload last loaded, as nbexp last saw it
    warned: int = 0  # the mtime_ns of the file last warned about (edited, not reloaded)
    origin: str = ""  # where the module is (its __file__), when ``file`` is a replay's kept copy of it

    @property
    def path(self) -> str:
        """The module's file as the run records it: where it is, not a replay's kept copy it runs from."""
        return self.origin or self.file


def _excluded_roots() -> tuple[str, ...]:
    """Folders that are not the notebook's own code: the Python environment and nbexp, as resolved and as spelled."""
    roots = set()
    for p in (
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ):
        roots |= {os.path.abspath(p), os.path.realpath(p)}
    return tuple(r.rstrip(os.sep) + os.sep for r in roots)


class LocalModules:
    """The notebook's own modules this kernel imported (``root``: the notebook's folder, where paths are relative
    to), and the version of each it runs."""

    def __init__(self, root: str, warn: Callable[[str, str], None], shell: Any = None) -> None:
        self.shell = shell
        self.root = os.path.realpath(root).rstrip(os.sep) + os.sep
        self.warn = warn
        self._excluded = _excluded_roots()
        self._seen: set[str] = set()  # sys.modules names looked at
        self._outside: set[str] = set()  # top-level modules and packages of the environment (or built in)
        self._inside: set[str] = set()  # top-level ones that are not
        self._installs: dict[str, bool] = {}  # folders on sys.path: whether pip installed packages there
        self._count = len(sys.modules)  # when last looked: the modules imported before are read at the first training
        # modules imported before the session began: kept only once the notebook's namespace reaches them (_reached)
        self._before = set(sys.modules)
        self._earlier: dict[str, tuple[str, str]] = {}  # such modules of the notebook's: name -> (artifact name, file)
        self.modules: dict[str, _Module] = {}  # by artifact name
        self._full = False
        self._walked = False  # every module of sys.modules looked at once (the first training cell)
        self.started = time.time()

    # -- the modules imported ------------------------------------------------------------------------------------
    def notice(self, every: bool = False) -> None:
        """After a cell: read the modules imported since the last look (one length check when it imported none),
        and those of the kept ones that were loaded again; ``every``: look at every name not looked at yet."""
        mods = sys.modules
        count = len(mods)
        if count != self._count or every:
            # a module imported since is at the end (dicts keep insertion order): only those are read on a cell's
            # path; a shrunk sys.modules is read whole
            start = 0 if every or count < self._count or self._count < 0 else self._count
            self._count = count
            try:
                items = list(itertools.islice(mods.items(), start, None))
            except RuntimeError:  # imported from another thread meanwhile: the next look reads them all
                self._count, items = -1, []
            for name, module in items:
                if name not in self._seen:
                    self._seen.add(name)
                    self._look(name, module)
        if self.modules:
            self._reloads()

    def _look(self, name: str, module: Any) -> None:
        top, dot, _ = name.partition(".")
        if dot and top not in self._inside and (top in self._outside or self._installed_top(top)):
            return  # a module of an installed package (torch.compile's generated ones too): its dict not touched
        if type(module) is not types.ModuleType:  # a lazy module or a stand-in: never touch its attributes
            return
        attrs = module.__dict__
        file = attrs.get("__file__")
        if not isinstance(file, str) or not file.endswith(".py") or file.startswith(self._excluded):
            builtin = file is None and attrs.get("__path__") is None  # not a namespace package: those are anyone's
            if not dot and (builtin or isinstance(file, str) and file.startswith(self._excluded)):
                self._outside.add(name)  # built in, or of the environment: so are its submodules
            return
        if not _NAME.fullmatch(name) or name == "__main__":
            return
        path = os.path.realpath(file)
        parts = path.split(os.sep)
        if path.startswith(self._excluded) or "site-packages" in parts or "dist-packages" in parts:
            return
        if self._installed_in(_top_folder(name, file)):
            if not dot:
                self._outside.add(name)
            return
        key = artifact_name(name, os.path.basename(path) == "__init__.py")
        if key in self.modules:
            return
        if name in self._before:
            self._earlier[name] = (key, path)
            return
        self._keep(name, key, path, module, imported=True)

    def _installed_top(self, top: str) -> bool:
        """Whether the top-level package ``top`` is the environment's (or built in); remembered either way."""
        module = sys.modules.get(top)
        if type(module) is not types.ModuleType:
            return False
        file = module.__dict__.get("__file__")
        if file is None and module.__dict__.get("__path__") is not None:  # a namespace package: anyone's
            return False
        parts = file.split(os.sep) if isinstance(file, str) else []
        if (
            not isinstance(file, str)
            or file.startswith(self._excluded)
            or "site-packages" in parts
            or self._installed_in(_top_folder(top, file))
        ):
            self._outside.add(top)
            return True
        self._inside.add(top)
        return False

    def _installed_in(self, folder: str) -> bool:
        """Whether pip installed packages into ``folder`` (it holds a ``.dist-info``: ``pip install --target``, a
        shared folder of packages on ``PYTHONPATH``), the notebook's own folder never (``pip install --target .``
        beside its modules); one listing per folder, remembered."""
        known = self._installs.get(folder)
        if known is None:
            try:
                if os.path.realpath(folder).rstrip(os.sep) + os.sep == self.root:
                    known = False
                else:
                    with os.scandir(folder) as entries:
                        known = any(e.name.endswith(".dist-info") for e in entries)
            except OSError:
                known = False
            self._installs[folder] = known
        return known

    def _keep(self, name: str, key: str, path: str, module: Any, imported: bool) -> None:
        if len(self.modules) >= MAX_MODULES:
            if not self._full:
                self._full = True
                self.warn(
                    "modules:many",
                    f"more than {MAX_MODULES} of the notebook's own modules: {name} and later ones are not kept",
                )
            return
        entry = self._read(name, path, module.__dict__.get("__spec__"))
        if entry is None:
            return
        entry.auto = _loaded_time(self._reloader(), name)
        if not imported and not self._as_imported(module, entry):
            self.warn(
                f"modules:{name}",
                f"{os.path.basename(path)} changed on disk after the kernel imported {name} (before tracking began): "
                f"the run keeps the file as it is now, which the kernel may not run (importlib.reload({name}) "
                "loads it)",
            )
        self.modules[key] = entry

    def _as_imported(self, module: Any, entry: _Module) -> bool:
        """Whether a module imported before the session began, read now, is as the kernel imported it, as far as
        can be told: not if its file changed after the session began, nor if its ``.pyc`` (where Python writes
        them) was compiled from another version of the file."""
        if entry.mtime_ns / 1e9 > self.started:
            return False
        return sys.dont_write_bytecode or _compiled_from(module, entry)

    def _read(self, name: str, path: str, spec: Any) -> _Module | None:
        origin = ""
        kept = getattr(getattr(spec, "loader", None), "nbexp_kept", None)
        if isinstance(kept, str):  # a replay's: the bytes nbexp kept (nbexp.analysis.replay), not the file at __file__
            origin, path = path, kept
        try:
            st = os.stat(path)
            data = None
            if st.st_size <= MAX_BYTES:
                with open(path, "rb") as fh:
                    data = fh.read(MAX_BYTES + 1)
                digest = hashlib.sha256(data).hexdigest()
            else:
                digest = _hash_file(path)
        except OSError as exc:
            self.warn(
                f"modules:{name}", f"module {name}: cannot read {path} ({exc.strerror or exc}); its code is not kept"
            )
            return None
        return _Module(name, path, spec, st.st_mtime_ns, st.st_size, digest, data, origin=origin)

    def _reached(self, ns: dict[str, Any]) -> None:
        """Keep the modules imported before the session that the namespace ``ns`` reaches: bound there (``import
        train_utils``), or a function, class or object of theirs is (``from train_utils import build_model``), or
        one such module's namespace reaches them (a helper ``train_utils`` imports)."""
        frontier = [ns]
        while self._earlier and frontier:
            names: set[str] = set()
            for space in frontier:
                for value in itertools.islice(list(space.values()), MAX_NAMES):
                    try:
                        names.add(_module_of(value) or "")
                    except Exception:  # an object whose type cannot be read: not one of the notebook's
                        pass
            frontier = []
            for n in list(names):  # a submodule's packages: their __init__.py
                while "." in n:
                    n = n.rsplit(".", 1)[0]
                    names.add(n)
            for name in names & self._earlier.keys():
                key, path = self._earlier.pop(name)
                module = sys.modules.get(name)
                if type(module) is types.ModuleType and key not in self.modules:
                    self._keep(name, key, path, module, imported=False)
                    frontier.append(module.__dict__)

    # -- the version the kernel runs -----------------------------------------------------------------------------
    def _reloader(self) -> Any:
        """IPython's autoreload, when it is loaded (enabled or not: ``%autoreload now`` reloads all the same);
        else None."""
        try:
            return self.shell.magics_manager.registry["AutoreloadMagics"]._reloader
        except Exception:  # no shell, autoreload not loaded, another IPython
            return None

    def _reloads(self) -> None:
        """The kept modules loaded again since the last look: read again, where the load did not fail."""
        reloader = self._reloader()
        for key, entry in list(self.modules.items()):
            module = sys.modules.get(entry.name)
            if type(module) is not types.ModuleType:
                continue
            spec = module.__dict__.get("__spec__")
            auto = _loaded_time(reloader, entry.name)
            try:
                failed = auto is not None and _failed(reloader, entry.file) == auto
            except Exception:
                failed = False
            seen, entry.auto = entry.auto, auto
            if spec is not entry.spec:  # importlib.reload (autoreload's full reload too)
                self._again(key, entry, spec, None)
            elif auto is not None and seen is not None and auto != seen and not failed:  # autoreload patched it
                self._again(key, entry, spec, auto)

    def _again(self, key: str, entry: _Module, spec: Any, loaded: float | None) -> None:
        """The module was loaded again (``loaded``: the file time autoreload loaded): its file as it is now, unless
        it does not compile (the reload failed: the kernel runs what it ran) or changed again since the load."""
        fresh = self._read(entry.name, entry.path, spec)
        if fresh is None or fresh.digest == entry.digest:
            entry.spec = spec
            return
        fresh.auto = entry.auto
        if fresh.data is not None:
            try:
                compile(fresh.data, entry.file, "exec", dont_inherit=True)
            except (SyntaxError, ValueError):
                entry.spec = spec
                return  # the reload failed: the kernel runs the version kept
        if loaded is not None and fresh.mtime_ns / 1e9 != loaded and abs(fresh.mtime_ns / 1e9 - loaded) > 1e-6:
            self.warn(
                f"modules:{entry.name}",
                f"{os.path.basename(entry.file)} changed again after autoreload loaded it: the run keeps the file as "
                "it is now, which the kernel may not run",
            )
        self.modules[key] = fresh

    def current(self, ns: dict[str, Any]) -> dict[str, _Module]:
        """Every module's version the kernel runs now (``ns``: the notebook's namespace), as a training cell's
        capture asks: a file edited on disk without a reload keeps the version kept, with one warning per edit."""
        self.notice(every=not self._walked)  # the first: modules imported before tracking; then those since
        self._walked = True
        if self._earlier:
            self._reached(ns)
        for entry in self.modules.values():
            try:
                st = os.stat(entry.file)
            except OSError:
                continue
            if (st.st_mtime_ns, st.st_size) == (entry.mtime_ns, entry.size) or entry.warned == st.st_mtime_ns:
                continue
            entry.warned = st.st_mtime_ns
            self.warn(
                f"modules:{entry.name}",
                f"{os.path.basename(entry.file)} changed on disk after it was imported, and this kernel still runs "
                f"the imported version (importlib.reload({entry.name}) or %autoreload 2 loads the edit): the run "
                "keeps the version it trained with",
            )
        return self.modules


def _top_folder(name: str, file: str) -> str:
    """The folder the top-level package of module ``name`` (whose file is ``file``) was imported from."""
    folder = os.path.dirname(file)
    for _ in range(name.count(".") + (os.path.basename(file) == "__init__.py")):
        folder = os.path.dirname(folder)
    return folder


def _loaded_time(reloader: Any, name: str) -> float | None:
    """The file time autoreload last loaded module ``name`` at (None: autoreload not loaded, or not watching it)."""
    try:
        return reloader.modules_mtimes.get(name) if reloader is not None else None
    except Exception:
        return None


def _failed(reloader: Any, file: str) -> float | None:
    """The file time of the module's last failed autoreload (autoreload keys them by the file's own spelling)."""
    for path, mtime in reloader.failed.items():
        if os.path.realpath(path) == file:
            return mtime
    return None


def _compiled_from(module: Any, entry: _Module) -> bool:
    """Whether the module's compiled ``.pyc`` was made from the file as it is now (its header keeps the source's
    time and size; Python writes it as it imports a changed source), or that cannot be told (no ``.pyc``, a hash-based
    one): False only where the file changed after it was compiled."""
    cached = module.__dict__.get("__cached__")
    if not isinstance(cached, str):
        return True
    try:
        with open(cached, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return True
    if len(head) < 16 or int.from_bytes(head[4:8], "little") != 0:  # not a timestamp-based .pyc
        return True
    mtime, size = int.from_bytes(head[8:12], "little"), int.from_bytes(head[12:16], "little")
    return (mtime, size) == ((entry.mtime_ns // 1_000_000_000) & 0xFFFFFFFF, entry.size & 0xFFFFFFFF)


def _module_of(value: Any) -> str | None:
    """The module a namespace's value comes from: a module's own name, a function's or class's module, else its
    class's (read from the dicts of the value's type or of the value itself: no hook of the value runs)."""
    kind = type(value)
    if kind is types.FunctionType:
        found = value.__module__
    elif kind is types.ModuleType:
        found = value.__dict__.get("__name__")
    elif issubclass(kind, type):
        found = _TYPE_DICT.__get__(value).get("__module__")
    else:
        found = _TYPE_DICT.__get__(kind).get("__module__")
    return found if isinstance(found, str) else None


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
