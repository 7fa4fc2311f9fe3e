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
