"""Environment: interpreter, host, notebook, git and installed distributions."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from .secrets import scrub_text


def basic(user_ns: dict | None = None) -> dict[str, Any]:
    """What is known at once, without touching the disk."""
    notebook = os.environ.get("JPY_SESSION_NAME") or (user_ns or {}).get("__vsc_ipynb_file__")
    if isinstance(notebook, str):
        notebook = scrub_text(notebook)  # a path or URL can carry a token (?token=..., user:pw@)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "host": socket.gethostname(),
        "notebook": notebook,
        "kernel_id": kernel_id(),
    }


def kernel_id() -> str | None:
    """The Jupyter kernel id, from the kernel's connection file name."""
    ipykernel = sys.modules.get("ipykernel.kernelapp") or sys.modules.get("ipykernel")
    if not ipykernel:
        return None
    try:
        from ipykernel import get_connection_file

        name = Path(get_connection_file()).stem
    except Exception:
        return None
    return name[len("kernel-") :] if name.startswith("kernel-") else name


# Listing the installed distributions reads a few hundred METADATA files: ~0.4 s of Python that, in a
# thread of the kernel, would hold the GIL against the user's first cells. A child process lists them
# on another core while the thread that asked waits on its pipe (the GIL free).
_LIST_DISTRIBUTIONS = """
import json, os, sys
try:  # behind the kernel and the user's cells for the CPU, not beside them
    os.nice(10)
except (AttributeError, OSError):
    pass
from importlib import metadata
path = json.loads(sys.argv[1])
out = {}
for dist in metadata.distributions(path=path):
    name = dist.metadata["Name"]
    if name:
        out.setdefault(name.lower(), dist.version)
text = json.dumps(dict(sorted(out.items())), separators=(",", ":"))
try:  # scrubbed here too (by the kernel's own nbexp): 2-3 ms of regular expressions a kernel thread held the GIL for
    sys.path.insert(0, sys.argv[2])
    from nbexp.capture.secrets import scrub_text
    print(json.dumps({"scrubbed": scrub_text(text)}))
except Exception:
    print(json.dumps({"listed": out}))
"""


_HOME = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # holds this nbexp


def packages() -> tuple[str, str]:
    """Installed distributions (those on this interpreter's ``sys.path``) as ``(hash, json)``; the
    hash names the set. Listed by a child process (see above), here only where none can start."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", _LIST_DISTRIBUTIONS, json.dumps(sys.path), _HOME],
            capture_output=True,
            text=True,
            timeout=60,
        )
        found = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, ValueError, subprocess.SubprocessError):
        found = None
    found = found if isinstance(found, dict) else {}
    if isinstance(found.get("scrubbed"), str):
        text = found["scrubbed"]
        return hashlib.sha1(text.encode()).hexdigest()[:16], text
    pkgs = found.get("listed")
    if not isinstance(pkgs, dict):
        from importlib import metadata

        pkgs = {}
        for dist in metadata.distributions():
            name = dist.metadata["Name"]
            if name:
                pkgs.setdefault(name.lower(), dist.version)
    # a local version label or a name can carry a secret (pkg==1.0+ghp_...): scrubbed like any text
    text = scrub_text(json.dumps(dict(sorted(pkgs.items())), separators=(",", ":")))
    return hashlib.sha1(text.encode()).hexdigest()[:16], text


def git(start: str | os.PathLike | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git repository holding ``start``, or (None, None)."""
    cwd = start or os.getcwd()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def cuda() -> str | None:
    """CUDA runtime (and cuDNN) versions from torch, when torch is already imported."""
    torch = sys.modules.get("torch")
    if not torch or not getattr(torch.version, "cuda", None):
        return None
    return scrub_text(f"cuda {torch.version.cuda}")
