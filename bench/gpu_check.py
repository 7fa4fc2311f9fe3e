"""GPU capture and the idle-GPU hint on a real GPU (issue 6's promise, checked where a GPU is lent).

Runs a real ipykernel with nbexp tracking at 10 Hz and three cells of ~10 s each:

- **setup**: ~6 s building the data on the CPU (no hint: it does not train);
- **busy**: a PyTorch MLP trained on the GPU with large batches (the GPU should read near 100 %);
- **starved**: the same model fed one small batch at a time with a CPU wait between steps (the
  hint should fire and say the memory is mostly free: a larger batch);
- **cpu only**, in a second kernel that never touches CUDA: a model trained on the CPU while the GPU
  is visible (the hint should say nothing of this process ran on it).

Prints what the kernel showed under each cell (the hint is printed there) and what the ledger
recorded per cell and run, against PyTorch's own figures (the peak read in the training cell and again
in the next cell must agree: nbexp never resets torch's counters) and NVML, plus the sampler's
CPU per tick with real NVML calls. Needs a GPU, PyTorch with CUDA and ipykernel:

    python bench/gpu_check.py [OUT_DIR]
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="nbexp-gpu-"))
OUT.mkdir(parents=True, exist_ok=True)
LEDGER = OUT / "ledger.sqlite"

SETUP = """
import time, torch
dev = torch.device(DEVICE)
torch.manual_seed(0)
def mlp():
    return torch.nn.Sequential(torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 10))
X = torch.randn(N, 4096)
y = torch.randint(0, 10, (N,))
"""

BUSY = """
model = mlp().to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
Xg, yg = X.to(dev), y.to(dev)
t0 = time.time()
while time.time() - t0 < SECONDS:
    for i in range(0, len(Xg), 8192):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xg[i:i + 8192]), yg[i:i + 8192])
        loss.backward()
        opt.step()
    torch.cuda.synchronize() if DEVICE == 'cuda' else None
print('busy loss', float(loss))
print('peak MB', torch.cuda.max_memory_allocated() / 2**20 if DEVICE == 'cuda' else None)
"""

STARVED = """
model = mlp().to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
t0 = time.time()
while time.time() - t0 < SECONDS:
    xb, yb = X[:32].to(dev), y[:32].to(dev)
    time.sleep(0.02)  # a slow loader
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()
print('starved loss', float(loss))
"""

CPU_ONLY = """
model = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
t0 = time.time()
while time.time() - t0 < SECONDS:
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(X[:256, :256]), y[:256])
    loss.backward()
    opt.step()
print('cpu loss', float(loss))
"""


def tick_cost(n=500):
    """The sampler's CPU per tick with real NVML (process CPU time, so the driver's work counts)."""
    from nbexp.capture.system import Sampler

    s = Sampler(1000, sink=lambda h, g: None, note=lambda c, m: None)
    s._stop.set()
    s._thread.join()
    s._last = time.time()
    gpus = len(s.gpus)
    t = time.process_time()
    for _ in range(n):
        s.tick()
    per = (time.process_time() - t) / n
    return {"gpus": gpus, "cpu_us_per_tick": per * 1e6, "share_of_core_at_10hz_pct": per * 1000}


def run_kernel(seconds, device, gpu_cells):
    """One kernel: track, set up on ``device``, then the cells; what each showed."""
    from jupyter_client.manager import KernelManager

    env = {
        **os.environ,
        "NBEXP_LEDGER": str(LEDGER),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(OUT))
    kc = km.client()
    kc.start_channels()
    shown = []
    try:
        kc.wait_for_ready(timeout=120)

        def cell(label, code):
            out = []

            def hook(msg):
                c = msg["content"]
                if msg["msg_type"] == "stream":
                    out.append(c["text"])
                elif msg["msg_type"] == "error":
                    out.append("\n".join(c["traceback"]))

            t = time.time()
            reply = kc.execute_interactive(code, timeout=600, output_hook=hook)
            shown.append(
                {"cell": label, "status": reply["content"]["status"], "wall_s": time.time() - t, "shown": "".join(out)}
            )
            print(f"--- {label} ({time.time() - t:.1f} s, {reply['content']['status']})\n{''.join(out)}", flush=True)

        cell("load", "%load_ext nbexp")
        cell("track", "%nbexp track gpu-check --sample-hz 10 --idle-after 5")
        cell("status", "%nbexp status")
        n = 65536 if device == "cuda" else 1024
        cell("setup", f"DEVICE, N, SECONDS = {device!r}, {n}, {seconds}\n" + SETUP)
        if gpu_cells:
            cell("busy", BUSY)
            cell(
                "torch peaks",
                "if DEVICE == 'cuda':\n"
                "    print('peak MB', torch.cuda.max_memory_allocated() / 2**20, torch.cuda.get_device_name())",
            )
            cell("starved", STARVED)
        else:  # a second kernel that never touches CUDA: the GPU is visible but unused
            cell("cpu only", CPU_ONLY)
        cell("stop", "%nbexp stop")
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    return shown


def ledger_rows():
    con = sqlite3.connect(LEDGER)
    con.row_factory = sqlite3.Row
    try:
        cells = [dict(r) for r in con.execute("SELECT * FROM cells ORDER BY start")]
    except sqlite3.Error as e:
        cells = [{"error": str(e)}]
    runs = [dict(r) for r in con.execute("SELECT * FROM runs ORDER BY start_time")]
    gpus = [dict(r) for r in con.execute("SELECT * FROM gpu_samples LIMIT 3")] if _has(con, "gpu_samples") else []
    n_samples = con.execute("SELECT count(*) FROM gpu_samples").fetchone()[0] if _has(con, "gpu_samples") else None
    # the data each run saw: a CUDA tensor is summarised on its device (kind, shape, sampled or not)
    data = [
        dict(r)
        for r in con.execute(
            "SELECT d.run_id, d.name, d.role, s.kind, s.shape, s.sampled, substr(s.summary, 1, 160) AS summary "
            "FROM run_data d JOIN datasets s USING (fingerprint) ORDER BY d.time"
        )
    ]
    con.close()
    keep = (
        "gpu_util_mean",
        "gpu_util_max",
        "gpu_mem_peak_mb",
        "energy_wh",
        "cpu_mean",
        "idle_hint",
        "start_time",
        "end_time",
        "status",
        "name",
        "gpu_count",
    )
    return {
        "cells": [{k: v for k, v in c.items() if k not in ("session_id", "code_hash")} for c in cells],
        "runs": [{k: v for k, v in r.items() if k in keep or k == "id"} for r in runs],
        "gpu_samples": n_samples,
        "data": data,
        "gpu_sample_head": gpus,
    }


def _has(con, table):
    return con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None


def main():
    import subprocess

    try:
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,power.limit", "--format=csv"],
            capture_output=True,
            text=True,
        ).stdout
    except OSError as e:
        smi = f"no nvidia-smi: {e}"
    print(smi, flush=True)
    report = {"nvidia_smi": smi, "tick": tick_cost()}
    print("tick", report["tick"], flush=True)
    seconds = float(os.environ.get("GPU_CHECK_SECONDS", "10"))
    device = os.environ.get("GPU_CHECK_DEVICE", "cuda")  # "cpu": a dry run of this script without a GPU
    report["cells"] = run_kernel(seconds, device, True) + run_kernel(seconds, "cpu", False)
    report["ledger"] = ledger_rows()
    (OUT / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report["ledger"], indent=1, default=str))


if __name__ == "__main__":
    main()
