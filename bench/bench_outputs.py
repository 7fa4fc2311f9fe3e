"""Cell outputs bench (issue 18): added time of a cell that displays one matplotlib figure, and ledger
bytes per figure. Prints a Markdown table for bench/RESULTS.md.

Every figure is measured in this one run against untracked on the same machine: the figure cell is
run untracked, tracked with output capture off (``--outputs-budget 0``) and tracked as shipped,
interleaved in rounds so machine noise is shared; the medians are compared. Each execution plots
different data, so every PNG is new content (a new blob, the worst case for the store).

The shell is IPython's InteractiveShell, as in bench_core.py, with matplotlib's inline backend (what
notebooks use) and a display publisher that drops what it is sent (a kernel would send it over ZMQ,
which costs the same tracked or not), so neither terminal printing nor the network is timed.

    .venv/bin/python bench/bench_outputs.py
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

TMP = Path(tempfile.mkdtemp(prefix="nbexp-bench-outputs-"))
os.environ["IPYTHONDIR"] = str(TMP / "ipython")
os.environ["NBEXP_HOME"] = str(TMP / "home")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

from IPython.core.displaypub import DisplayPublisher  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

from nbexp import tracker  # noqa: E402

_CFG = Config()
_CFG.HistoryManager.hist_file = ":memory:"  # see bench_core.py: IPython's history thread, not nbexp

FIGURE = """\
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(np.cumsum(rng.normal(size=200)))
ax.set_title("loss")
plt.show()
"""
SETUP = "import matplotlib.pyplot as plt\nimport numpy as np\nrng = np.random.default_rng(0)"


class Dropped(DisplayPublisher):
    """A display publisher that sends nowhere (the kernel's would send over ZMQ)."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs) -> None:
        self.sent = data


def cell_times(sh, code, n):
    """``(wall, cpu)`` seconds of each of ``n`` executions; cpu is this process's, every thread (the
    ledger writer's insert included), so other processes on a busy machine count less."""
    out = []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        sh.run_cell(code, store_history=True)
        out.append((time.perf_counter() - t, time.process_time() - c))
    return out


class Timed:
    """Wraps the session's OutputCapture methods (on the instance) to add up the time spent in them:
    output capture's own cost per cell, measured inside the cell, whatever the figure costs."""

    def __init__(self, capture) -> None:
        self.spent = 0.0
        self.per_cell: list[float] = []
        for name in ("start", "_seen_output", "end"):
            setattr(capture, name, self._wrap(getattr(capture, name), name == "end"))

    def _wrap(self, method, last):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - t
                if last:
                    self.per_cell.append(self.spent)
                    self.spent = 0.0

        return timed


def ledger_bytes(path: Path) -> int:
    """The ledger's size once its WAL is folded in."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main(n: int = 240, rounds: int = 8) -> None:
    sh = InteractiveShell.instance(config=_CFG)
    sh.display_pub = Dropped(shell=sh)
    sh.run_cell("%load_ext nbexp")
    sh.run_cell(SETUP)
    cell_times(sh, FIGURE, 20)  # warm up: fonts, the backend
    modes = {"untracked": None, "tracked, outputs off": "--outputs-budget 0", "tracked": ""}
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    sizes: dict[str, list[int]] = {m: [] for m in modes}
    own: list[float] = []
    for r in range(rounds):
        for mode, flags in modes.items():
            ledger = TMP / f"{r}-{mode.replace(' ', '_').replace(',', '')}" / "ledger.sqlite"
            if flags is not None:
                ledger.parent.mkdir(parents=True)
                sh.run_cell(f"%nbexp track bench --sample-hz 0 --ledger {ledger} {flags}")
                session = tracker.active_session()
                timer = Timed(session.outputs) if session.outputs is not None else None
            times[mode] += cell_times(sh, FIGURE, n // rounds)
            if flags is not None:
                if timer is not None:
                    own += timer.per_cell[1:]  # not the %nbexp track cell
                sh.run_cell("%nbexp stop")
                sizes[mode].append(ledger_bytes(ledger))
    png = sh.display_pub.sent.get("image/png")
    png_bytes = len(png) if isinstance(png, bytes) else len(png) * 3 // 4
    wall = {m: statistics.median(w for w, _ in t) for m, t in times.items()}
    cpu = {m: statistics.median(c for _, c in t) for m, t in times.items()}
    per_fig = (statistics.median(sizes["tracked"]) - statistics.median(sizes["tracked, outputs off"])) / (n // rounds)

    def added(mode: str, ref: str = "untracked") -> str:
        return (
            f"{(cpu[mode] - cpu[ref]) * 1e3:+.2f} ms CPU ({cpu[mode] / cpu[ref]:.3f} x), "
            f"{(wall[mode] - wall[ref]) * 1e3:+.2f} ms wall ({wall[mode] / wall[ref]:.3f} x)"
        )

    rows = [
        (
            "figure cell, untracked (the figure's own rendering)",
            f"median {cpu['untracked'] * 1e3:.2f} ms CPU, {wall['untracked'] * 1e3:.2f} ms wall",
            "",
        ),
        ("added by tracking, outputs off (`--outputs-budget 0`)", added("tracked, outputs off"), ""),
        ("added by tracking as shipped (figure kept)", added("tracked"), "<= 5 ms"),
        ("of which output capture (shipped minus outputs off)", added("tracked", "tracked, outputs off"), ""),
        (
            "output capture's own time in a figure cell (timed around its calls)",
            f"median {statistics.median(own) * 1e3:.3f} ms, 90th percentile "
            f"{statistics.quantiles(own, n=10)[-1] * 1e3:.3f} ms",
            "",
        ),
        (
            "ledger bytes per figure (shipped minus outputs off, per cell)",
            f"{per_fig:,.0f} B for a {png_bytes:,} B PNG ({per_fig / png_bytes:.2f} x)",
            "",
        ),
    ]
    print(f"{n} executions per mode in {rounds} interleaved rounds; Python {sys.version.split()[0]}")
    print("| measure | value | goal |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
