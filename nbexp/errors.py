"""Errors nbexp raises on purpose. Catch :class:`NbexpError` to catch them all."""

from __future__ import annotations


class NbexpError(Exception):
    """Base class of every error nbexp raises on purpose."""


class LedgerError(NbexpError):
    """The ledger file cannot be opened, created or written."""


class LedgerBusy(LedgerError):
    """Another process held the ledger's write lock for longer than the busy timeout; nothing was written."""


class SchemaTooNewError(LedgerError):
    """The ledger was written by a newer nbexp than this one."""


class InvalidArgument(NbexpError, ValueError):
    """An argument to nbexp's own API has the wrong type or value."""


class RunNotFound(NbexpError, LookupError):
    """No run (or more than one) matches the id or prefix given."""


class NotTracking(NbexpError, RuntimeError):
    """An action needs a tracked session and none is active."""


class MissingDependency(NbexpError, ImportError):
    """An optional part of nbexp needs a library that is not installed (or does not import); the
    message names the extra that installs it: ``pip install "nbexp[mlflow]"``."""

    @classmethod
    def from_import_error(cls, exc: ImportError, *, needed_by: str, library: str, extra: str) -> MissingDependency:
        """The error for ``exc``, raised by importing the module named ``extra``: "not installed" when
        Python found no such module, else the library's own first line (a broken install, e.g. one of
        its own dependencies missing, which installing the extra again brings in)."""
        fix = f'pip install "nbexp[{extra}]"'
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == extra:
            return cls(f"{needed_by}: {library} is not installed: {fix}", name=extra)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return cls(f"{needed_by}: {library} does not import ({first}): {fix}", name=extra)
