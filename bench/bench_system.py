"""System sampler cost (issue #6). Prints a Markdown table for bench/RESULTS.md.

CPU time per tick is measured by calling the sampler's tick in this thread (process CPU
time, so psutil's and NVML's work both count); the share of one core follows from the
rate. This machine has no GPU: NVML figures use tests/fake_nvml.py (no driver calls), so
they show nbexp's own cost per GPU, not the driver's.

    .venv/bin/python bench/bench_system.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
TMP = Path(tempfile.mkdtemp(prefix="nbexp-bench-"))
os.environ["IPYTHONDIR"] = str(TMP / "ipython")
os.environ["NBEXP_HOME"] = str(TMP / "home")

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

# IPython's own history thread writes (and fsyncs) its SQLite file after every cell and
# holds a lock the next cell's store_inputs waits on: with cells 0.1 ms apart that wait,
# not nbexp, dominates. Keep history in memory so the figures are nbexp's own cost.
_CFG = Config()
_CFG.HistoryManager.hist_file = ":memory:"

from nbexp.capture.system import Sampler  # noqa: E402


def tick_cost(n=2000):
    rows = []
    for label, module, script in (
        ("no GPU (psutil only)", "nonexistent_nvml_module", {"gpus": []}),
        ("1 GPU (fake NVML)", "fake_nvml", {"gpus": [{"util": 50}]}),
        ("8 GPUs (fake NVML)", "fake_nvml", {"gpus": [{"util": 50}] * 8}),
    ):
        os.environ["NBEXP_NVML_MODULE"] = module
        os.environ["FAKE_NVML_SCRIPT"] = json.dumps(script)
        s = Sampler(1000, sink=lambda h, g: None, note=lambda c, m: None)
        s._stop.set()  # no thread: tick by hand (NVML stays initialized)
        s._thread.join()
        s._last = time.time()
        t = time.process_time()
        for _ in range(n):
            s.tick()
        per = (time.process_time() - t) / n
        rows.append((f"sampler CPU per tick, {label}", f"{per * 1e6:.0f} us", ""))
        rows.append((f"share of one core at 1 Hz, {label}", f"{per * 100:.4f} %", "<= 0.1 %"))
        rows.append((f"share of one core at 10 Hz, {label}", f"{per * 1000:.3f} %", "<= 1 %"))
    return rows


def cell_overhead(n=400):
    os.environ["NBEXP_NVML_MODULE"] = "fake_nvml"
    os.environ["FAKE_NVML_SCRIPT"] = json.dumps({"gpus": [{"util": 50}]})
    sh = InteractiveShell.instance(config=_CFG)
    sh.run_cell("%load_ext nbexp")
    times = {"0": [], "1": [], "10": []}
    for _ in range(4):
        for hz in times:
            sh.run_cell(f"%nbexp track --sample-hz {hz}")
            for _ in range(n // 4):
                t = time.perf_counter()
                sh.run_cell("x = 1", store_history=True)
                times[hz].append(time.perf_counter() - t)
            sh.run_cell("%nbexp stop")
    off = statistics.median(times["0"])
    return [
        (
            f"per-cell overhead, sampler at {hz} Hz vs off (trivial cell)",
            f"{(statistics.median(times[hz]) - off) * 1e3:+.3f} ms (median {off * 1e3:.3f} -> "
            f"{statistics.median(times[hz]) * 1e3:.3f} ms)",
            "",
        )
        for hz in ("1", "10")
    ]


def main():
    rows = tick_cost() + cell_overhead()
    print("| measure | figure | goal |\n|---|---|---|")
    for name, fig, goal in rows:
        print(f"| {name} | {fig} | {goal} |")


if __name__ == "__main__":
    main()
