"""Cell code: scrubbed text and its content hash."""

from __future__ import annotations

import functools
import hashlib

from .secrets import scrub_text


@functools.lru_cache(maxsize=256)     # re-executed cells are the common case
def prepare(source: str) -> tuple[str, str]:
    """Return ``(hash, scrubbed_source)`` of one cell's code."""
    clean = scrub_text(source)
    return hashlib.sha1(clean.encode("utf-8", "surrogatepass")).hexdigest()[:16], clean
