"""The notebook's own modules a run trained with (issue 15, a user trial: "local modules edited on disk").

A notebook that keeps its helpers in a file beside it (``from train_utils import build_model``, often under
``%autoreload 2``) trains with that file's code: an edit of it changes what the next run does, though no cell
changed. Each training cell's run keeps, as artifacts named ``modules/<module path>`` (``modules/train_utils.py``,
``modules/pkg/__init__.py``), the source of every module of the notebook's folder the kernel has imported, so that
``nbexp diff`` and ``explain`` show an edit of it and ``nbexp replay`` imports the version the run trained with.

The version recorded is the one the kernel runs, not merely the file on disk: a module's source is read when the
session first sees the module (the cell that imported it) and again only once the module was loaded again: its
``__spec__`` is a new object after ``importlib.reload``, and IPython's autoreload (which may patch a module's
functions in place, keeping its spec) says which file time it last loaded. A file edited on disk but not reloaded
is not what the kernel runs: the run keeps the imported version and one warning says so.

A module of the notebook's folder: a plain module whose file is a ``.py`` under the working directory the session
started in, not inside the Python environment (a virtualenv kept in the project folder) nor nbexp itself. At most
:data:`MAX_MODULES` modules, each of at most :data:`MAX_BYTES` (a larger one is recorded by its hash and size).
Nothing here raises into a cell: a file that cannot be read is one warning.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable

PREFIX = "modules/"  # the artifact names of a run's modules
MAX_MODULES = 50  # modules of the notebook's folder kept per session
MAX_BYTES = 1 << 20  # a module's source larger than this (1 MiB) is kept by its hash and size only
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ARTIFACT = re.compile(r"^modules/([A-Za-z_][A-Za-z0-9_]*/)*[A-Za-z_][A-Za-z0-9_]*\.py$")


def artifact_name(module: str, is_package: bool) -> str:
    """``modules/pkg/sub.py`` for module ``pkg.sub``; ``modules/pkg/__init__.py`` for package ``pkg``."""
    path = module.replace(".", "/")
    return PREFIX + (f"{path}/__init__.py" if is_package else f"{path}.py")


def is_module_artifact(name: str) -> bool:
    """Whether an artifact name is one of a run's modules (and a safe relative path: names only, no ``..``)."""
    return bool(_ARTIFACT.match(name))


@dataclass
class _Module:
    name: str
    file: str
    spec: Any  # the module's __spec__ when its source was read: another object once it was loaded again
    mtime_ns: int
    size: int
    digest: str
    data: bytes | None  # None: larger than MAX_BYTES
    warned: int = 0  # the mtime_ns of the file last warned about (edited, not reloaded)


def _excluded_roots() -> tuple[str, ...]:
    """Folders under the notebook's folder that are not its own code: the Python environment and nbexp."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the nbexp package
    return tuple(r.rstrip(os.sep) + os.sep for r in roots)


class LocalModules:
    """The modules of ``root`` (the notebook's folder) this kernel imported, and the version of each it runs."""

    def __init__(self, root: str, warn: Callable[[str, str], None], shell: Any = None) -> None:
        self.shell = shell
        self.root = os.path.realpath(root).rstrip(os.sep) + os.sep
        # the folder as the modules' paths may spell it (a cheap first test, before a path is resolved)
        self._spelled = tuple({self.root, os.path.abspath(root).rstrip(os.sep) + os.sep})
        self.warn = warn
        self._excluded = _excluded_roots()
        self._seen: set[str] = set()  # sys.modules names looked at
        self._count = len(sys.modules)  # when last looked: the modules imported before are read at the first training
        # modules imported before the session began (an IPython embedded in a test runner or an app has its own under
        # the folder): kept only once the notebook's namespace reaches them (:meth:`_reached`)
        self._before = set(sys.modules)
        self._earlier: dict[str, tuple[str, str]] = {}  # such modules of the folder: name -> (artifact name, file)
        self.modules: dict[str, _Module] = {}  # by artifact name
        self._full = False

    def notice(self, every: bool = False) -> None:
        """Read the modules imported since the last look (cheap when nothing was imported: one length check);
        ``every``: look at every name not looked at yet, whatever the count."""
        mods = sys.modules
        count = len(mods)
        if count == self._count and not every:
            return
        # a module imported since is at the end (dicts keep insertion order): only those are read on a cell's path
        start = 0 if every or count < self._count else self._count
        self._count = count
        try:
            items = list(itertools.islice(mods.items(), start, None))
        except RuntimeError:  # imported from another thread meanwhile: the next look reads it
            return
        for name, module in items:
            if name in self._seen:
                continue
            self._seen.add(name)
            if type(module) is not types.ModuleType:  # a lazy module or a stand-in: never touch its attributes
                continue
            attrs = module.__dict__
            file = attrs.get("__file__")
            if not isinstance(file, str) or not file.endswith(".py") or not file.startswith(self._spelled):
                continue
            if not _NAME.match(name):
                continue
            path = os.path.realpath(file)
            if not path.startswith(self.root) or path.startswith(self._excluded) or name == "__main__":
                continue
            parts = path[len(self.root) :].split(os.sep)
            if "site-packages" in parts or "dist-packages" in parts:
                continue
            key = artifact_name(name, os.path.basename(path) == "__init__.py")
            if key in self.modules:
                continue
            if name in self._before:
                self._earlier[name] = (key, path)
                continue
            self._keep(name, key, path, attrs.get("__spec__"))

    def _keep(self, name: str, key: str, path: str, spec: Any) -> None:
        if len(self.modules) >= MAX_MODULES:
            if not self._full:
                self._full = True
                self.warn(
                    "modules",
                    f"more than {MAX_MODULES} modules of the notebook's folder: {name} and later ones are not kept",
                )
            return
        entry = self._read(name, path, spec)
        if entry is not None:
            self.modules[key] = entry

    def _reached(self, ns: dict[str, Any]) -> None:
        """Keep the modules imported before the session that the namespace ``ns`` reaches: bound there (``import
        train_utils``), or a function, class or object of theirs is (``from train_utils import build_model``), or
        one such module's namespace reaches them (a helper ``train_utils`` imports)."""
        frontier = [ns]
        while self._earlier and frontier:
            names: set[str] = set()
            for space in frontier:
                for value in list(space.values()):
                    names.add(_module_of(value) or "")
            frontier = []
            for name in names & self._earlier.keys():
                key, path = self._earlier.pop(name)
                module = sys.modules.get(name)
                if type(module) is types.ModuleType and key not in self.modules:
                    self._keep(name, key, path, module.__dict__.get("__spec__"))
                    frontier.append(module.__dict__)

    def _read(self, name: str, path: str, spec: Any) -> _Module | None:
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
            self.warn("modules", f"module {name}: cannot read {path} ({exc.strerror or exc}); its code is not kept")
            return None
        return _Module(name, path, spec, st.st_mtime_ns, st.st_size, digest, data)

    def current(self, ns: dict[str, Any]) -> dict[str, _Module]:
        """Every module's version the kernel runs now (``ns``: the notebook's namespace): read again where the
        module was loaded again since; a file edited on disk without a reload keeps the imported version, with one
        warning per edit."""
        self.notice(every=True)
        if self._earlier:
            self._reached(ns)
        for key, entry in list(self.modules.items()):
            module = sys.modules.get(entry.name)
            if type(module) is not types.ModuleType:
                continue
            spec = module.__dict__.get("__spec__")
            if spec is not entry.spec:  # loaded again (importlib.reload, autoreload): it runs the file as it is now
                fresh = self._read(entry.name, entry.file, spec)
                if fresh is not None:
                    self.modules[key] = fresh
                continue
            try:
                st = os.stat(entry.file)
            except OSError:
                continue
            if (st.st_mtime_ns, st.st_size) == (entry.mtime_ns, entry.size):
                continue
            if self._autoreloaded(entry, st.st_mtime):  # autoreload loaded the file as it is now
                fresh = self._read(entry.name, entry.file, spec)
                if fresh is not None:
                    self.modules[key] = fresh
                continue
            if entry.warned != st.st_mtime_ns:
                entry.warned = st.st_mtime_ns
                self.warn(
                    "modules",
                    f"{os.path.basename(entry.file)} changed on disk after it was imported, and this kernel still runs "
                    f"the imported version (importlib.reload({entry.name}) or %autoreload 2 loads the edit): the run "
                    "keeps the version it trained with",
                )
        return self.modules

    def _autoreloaded(self, entry: _Module, mtime: float) -> bool:
        """Whether IPython's autoreload, enabled for the module, last loaded its file as of ``mtime`` (the time it
        keeps per module as it reloads; a reload that failed loaded nothing)."""
        name = entry.name
        try:
            reloader = self.shell.magics_manager.registry["AutoreloadMagics"]._reloader
            if not reloader.enabled or name in reloader.skip_modules:
                return False
            if not reloader.check_all and name not in reloader.modules:
                return False
            failed = {os.path.realpath(f): t for f, t in reloader.failed.items()}
            return reloader.modules_mtimes.get(name) == mtime and failed.get(entry.file) != mtime
        except Exception:  # no shell, autoreload not loaded, another IPython: not known to be reloaded
            return False


def _module_of(value: Any) -> str | None:
    """The module a namespace's value comes from: a module's own name, a function's or class's module, else its
    class's (read from the dicts of the value's type or of the value itself: no ``__getattr__`` of the value runs)."""
    kind = type(value)
    if kind is types.FunctionType:
        found = value.__module__
    elif kind is types.ModuleType or issubclass(kind, type):
        found = value.__dict__.get("__name__" if kind is types.ModuleType else "__module__")
    else:
        found = kind.__dict__.get("__module__")
    return found if isinstance(found, str) else None


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
