"""System usage: a sampler thread per session (GPU through NVML, CPU and memory through psutil).

Each tick reads every visible GPU (utilization, memory, power, temperature, SM
clock, this process's GPU memory) and this process and machine (CPU, RSS,
threads). Rows go to a sink (the ledger writer); open :class:`Window` objects
(one per cell, one per run) fold the same ticks into aggregates, so a cell's
or run's usage costs nothing extra at its end.

NVML is imported only here, as ``pynvml`` (nvidia-ml-py), or as the module named
by ``$NBEXP_NVML_MODULE`` (tests inject a scripted fake that way). No NVML, no
driver or no GPU: CPU and memory only, said once in ``%nbexp status``. The same
way, ``$NBEXP_CPU_CLOCK_MODULE`` names a module whose ``process_time()`` replaces
:func:`time.process_time` as this process's CPU clock (the fake scripts a process
keeping a core busy, which a loaded test machine cannot promise).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from typing import Any, Callable

import psutil

# Idle-GPU hint defaults (documented in the README)
IDLE_AFTER_S = 60.0  # only cells that ran at least this long
IDLE_UTIL_PCT = 30.0  # ... with mean GPU utilization below this
CPU_BOUND_PCT = 90.0  # process CPU (one core = 100) at or above: input pipeline bound
MEM_FREE_SHARE = 0.5  # peak GPU memory below this share of total: batch size
UNUSED_UTIL_PCT = 2.0  # mean utilization below this and no process memory: nothing on the GPU

MB = 1024 * 1024


def load_nvml():
    """The NVML module, initialized; raises when there is none (no library, no driver)."""
    name = os.environ.get("NBEXP_NVML_MODULE", "pynvml")
    nvml = importlib.import_module(name)
    nvml.nvmlInit()
    return nvml


def load_cpu_clock() -> Callable[[], float]:
    """This process's CPU seconds, all threads: :func:`time.process_time` (one clock_gettime
    call), or ``process_time`` of the module named by ``$NBEXP_CPU_CLOCK_MODULE``."""
    name = os.environ.get("NBEXP_CPU_CLOCK_MODULE")
    return importlib.import_module(name).process_time if name else time.process_time


def visible_indices(count: int, uuids: list[str]) -> list[int]:
    """NVML indices of the GPUs this process may use, per ``CUDA_VISIBLE_DEVICES``."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return list(range(count))
    out = []
    for item in (x.strip() for x in env.split(",")):
        if not item:
            continue
        if item.isdigit():
            i = int(item)
            if i >= count:
                break  # CUDA stops at the first invalid entry
            out.append(i)
        else:
            match = [i for i, u in enumerate(uuids) if u.startswith(item) or u.startswith("GPU-" + item)]
            if not match:
                break
            out.append(match[0])
    return list(dict.fromkeys(out))


class Window:
    """Aggregates of the ticks between :meth:`Sampler.open` and :meth:`Sampler.close`."""

    __slots__ = (
        "start",
        "ticks",
        "gpu_ticks",
        "util_sum",
        "util_max",
        "mem_peak",
        "mem_total",
        "cpu_sum",
        "rss_peak",
        "energy_j",
        "proc_gpu_mem_peak",
        "cpu_time0",
    )

    def __init__(self, cpu_time0: float) -> None:
        self.start = time.time()
        self.ticks = self.gpu_ticks = 0
        self.util_sum = self.cpu_sum = self.energy_j = 0.0
        self.util_max: float | None = None
        self.mem_peak: float | None = None
        self.mem_total: float | None = None
        self.rss_peak: float | None = None
        self.proc_gpu_mem_peak: float | None = None
        self.cpu_time0 = cpu_time0

    def add(self, host: dict, gpus: list[dict], dt: float) -> None:
        self.ticks += 1
        self.cpu_sum += host["proc_cpu"]
        self.rss_peak = max(self.rss_peak or 0.0, host["proc_rss_mb"])
        if gpus:
            self.gpu_ticks += 1
            util = sum(g["util"] for g in gpus) / len(gpus)
            self.util_sum += util
            self.util_max = max(self.util_max or 0.0, max(g["util"] for g in gpus))
            mem = max(g["mem_used_mb"] for g in gpus)
            self.mem_peak = max(self.mem_peak or 0.0, mem)
            self.mem_total = max(g["mem_total_mb"] for g in gpus)
            proc = sum(g["proc_mem_mb"] or 0.0 for g in gpus)
            self.proc_gpu_mem_peak = max(self.proc_gpu_mem_peak or 0.0, proc)
            self.energy_j += sum(g["power_w"] or 0.0 for g in gpus) * dt


class Sampler:
    """Background sampler of one session.

    Args:
        hz: samples per second; 0 disables the thread (per-cell CPU time is still measured).
        sink: ``sink(host_row, gpu_rows)`` for every tick, from the sampler thread.
        note: ``note(cause, message)`` for things said once (a GPU lost mid-run).
    """

    def __init__(self, hz: float, sink: Callable[[dict, list[dict]], None], note: Callable[[str, str], None]) -> None:
        self.hz = hz
        self.sink = sink
        self.note = note
        self.cpu_time = load_cpu_clock()
        self.proc = psutil.Process()
        self.proc.cpu_percent(None)
        psutil.cpu_percent(None)
        self.nvml: Any = None
        self.gpus: list[dict] = []  # index, handle, name, uuid, mem_total_mb
        self.no_gpu_reason: str | None = None
        self.driver: str | None = None
        self._windows: list[Window] = []
        self._rss_mb: float | None = None  # the last sample's RSS: a short cell's close reads no /proc
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if hz > 0:
            self._init_nvml()
            self._last = time.time()
            self._thread = threading.Thread(target=self._loop, name="nbexp-sampler", daemon=True)
            self._thread.start()

    # -- NVML --------------------------------------------------------------------
    def _init_nvml(self) -> None:
        try:
            nvml = load_nvml()
        except ImportError:
            self.no_gpu_reason = "nvidia-ml-py is not installed"
            return
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.no_gpu_reason = f"NVML unavailable ({exc})"
            return
        try:
            count = nvml.nvmlDeviceGetCount()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = [_text(nvml.nvmlDeviceGetUUID(h)) for h in handles]
            for i in visible_indices(count, uuids):
                h = handles[i]
                self.gpus.append(
                    {
                        "index": i,
                        "handle": h,
                        "name": _text(nvml.nvmlDeviceGetName(h)),
                        "uuid": uuids[i],
                        "mem_total_mb": nvml.nvmlDeviceGetMemoryInfo(h).total / MB,
                    }
                )
            try:
                self.driver = _text(nvml.nvmlSystemGetDriverVersion())
            except Exception:
                self.driver = None
        except Exception as exc:
            self.no_gpu_reason = f"NVML error ({exc})"
            self.gpus = []
            return
        self.nvml = nvml
        if not self.gpus:
            self.no_gpu_reason = "no visible GPU" + (" (CUDA_VISIBLE_DEVICES)" if count else "")

    def describe(self) -> str:
        """One phrase for ``%nbexp status``."""
        if self.hz <= 0:
            return "system sampling off"
        if self.gpus:
            names = ", ".join(f"{g['index']}:{g['name']}" for g in self.gpus)
            return f"sampling {len(self.gpus)} GPU(s) [{names}] + CPU at {self.hz:g} Hz"
        return f"no GPU: {self.no_gpu_reason}; sampling CPU and memory at {self.hz:g} Hz"

    # -- windows ------------------------------------------------------------------
    def open(self) -> Window:
        w = Window(self.cpu_time())
        with self._lock:
            self._windows.append(w)
        return w

    def close(self, w: Window) -> dict[str, Any]:
        """Stop a window and return its aggregates (None where nothing was measured)."""
        with self._lock:
            if w in self._windows:
                self._windows.remove(w)
        wall = max(time.time() - w.start, 1e-9)
        return {
            "cpu_mean": (self.cpu_time() - w.cpu_time0) / wall * 100.0,  # percent of one core
            "rss_peak_mb": w.rss_peak if w.rss_peak is not None else self._rss_now(),
            "gpu_util_mean": w.util_sum / w.gpu_ticks if w.gpu_ticks else None,
            "gpu_util_max": w.util_max,
            "gpu_mem_peak_mb": w.mem_peak,
            "gpu_mem_total_mb": w.mem_total,
            "gpu_proc_mem_peak_mb": w.proc_gpu_mem_peak,
            "energy_wh": w.energy_j / 3600.0 if w.gpu_ticks else None,
            "samples": w.ticks,
            "wall_s": wall,
        }

    def _rss_now(self) -> float:
        """This process's RSS in MB: the sampler's last reading (at most one period old), else read now."""
        rss = self._rss_mb
        return rss if rss is not None else self.proc.memory_info().rss / MB

    # -- thread --------------------------------------------------------------------
    def _loop(self) -> None:
        period = 1.0 / self.hz
        while not self._stop.wait(period):
            try:
                self.tick()
            except Exception as exc:  # never die silently, never spam
                self.note("sampler", f"system sampling error ({type(exc).__name__}: {exc})")

    def tick(self) -> None:
        now = time.time()
        dt, self._last = now - self._last, now
        p = self.proc
        with p.oneshot():
            host = {
                "time": now,
                "proc_cpu": p.cpu_percent(None),
                "proc_rss_mb": p.memory_info().rss / MB,
                "proc_threads": p.num_threads(),
            }
        self._rss_mb = host["proc_rss_mb"]
        host["sys_cpu"] = psutil.cpu_percent(None)
        host["sys_mem"] = psutil.virtual_memory().percent
        gpus = self._sample_gpus(now)
        with self._lock:
            for w in self._windows:
                w.add(host, gpus, dt)
        self.sink(host, gpus)

    def _sample_gpus(self, now: float) -> list[dict]:
        nvml = self.nvml
        out: list[dict] = []
        if nvml is None:
            return out
        pid = os.getpid()
        for g in list(self.gpus):
            h = g["handle"]
            try:
                util = nvml.nvmlDeviceGetUtilizationRates(h)
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
                row = {
                    "time": now,
                    "gpu": g["index"],
                    "util": float(util.gpu),
                    "mem_util": float(util.memory),
                    "mem_used_mb": mem.used / MB,
                    "mem_total_mb": mem.total / MB,
                    "power_w": _opt(lambda h=h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0),
                    "power_limit_w": _opt(lambda h=h: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0),
                    "temp_c": _opt(lambda h=h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))),
                    "sm_clock_mhz": _opt(lambda h=h: float(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM))),
                    "proc_mem_mb": _opt(
                        lambda h=h: (
                            sum(
                                (p.usedGpuMemory or 0)
                                for p in nvml.nvmlDeviceGetComputeRunningProcesses(h)
                                if p.pid == pid
                            )
                            / MB
                        )
                    ),
                }
            except Exception as exc:  # GPU lost, driver reset: stop sampling this one
                self.gpus.remove(g)
                self.note(
                    f"gpu-lost-{g['index']}",
                    f"GPU {g['index']} ({g['name']}) stopped answering NVML ({exc}); no longer sampled",
                )
                continue
            out.append(row)
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:
                pass


def _opt(fn):
    try:
        return fn()
    except Exception:
        return None


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def torch_cuda_peaks() -> tuple[float, float] | None:
    """torch's peak allocated/reserved CUDA memory (MB) so far in this process; None when torch is not
    imported or does not use CUDA. Never reset: a user's own ``torch.cuda.max_memory_allocated()``
    reads what it would without nbexp (a notebook that prints the peak after training, in a later
    cell, printed the last cell's peak when nbexp reset the counters around every cell)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return torch.cuda.max_memory_allocated() / MB, torch.cuda.max_memory_reserved() / MB
    except Exception:
        return None


def cell_peaks(before: tuple[float, float] | None, after: tuple[float, float] | None) -> tuple | None:
    """A cell's own peaks from the process's peaks before and after it: a peak that rose during the
    cell was reached in it (exact); one that did not is unknown (at most the earlier one): None."""
    if after is None:
        return None
    if before is None:
        return after
    peaks = tuple(a if a > b else None for a, b in zip(after, before))
    return peaks if any(p is not None for p in peaks) else None


def idle_hint(
    stats: dict[str, Any],
    duration: float,
    has_gpu: bool,
    idle_after: float = IDLE_AFTER_S,
    idle_util: float = IDLE_UTIL_PCT,
) -> str | None:
    """The idle-GPU hint for a cell or run, or None.

    Fires when it ran at least ``idle_after`` seconds on a machine with a GPU and
    its mean GPU utilization stayed below ``idle_util`` percent; names the likely
    cause from what was measured.
    """
    util = stats.get("gpu_util_mean")
    if not has_gpu or util is None or duration < idle_after or util >= idle_util:
        return None
    head = f"GPU {util:.0f}% busy on average over {duration:.0f}s"
    proc_mem = stats.get("gpu_proc_mem_peak_mb") or 0.0
    if util < UNUSED_UTIL_PCT and proc_mem == 0.0:
        return f"{head}: nothing of this process ran on it; the model or tensors are probably on the CPU"
    if (stats.get("cpu_mean") or 0.0) >= CPU_BOUND_PCT:
        return (
            f"{head} while the CPU was saturated ({stats['cpu_mean']:.0f}%): the input pipeline is the "
            "bottleneck (more DataLoader workers, faster preprocessing)"
        )
    total, peak = stats.get("gpu_mem_total_mb"), stats.get("gpu_mem_peak_mb")
    if total and peak is not None and peak < MEM_FREE_SHARE * total:
        return f"{head} with {peak / total:.0%} of its memory used: try a larger batch size"
    return f"{head}: the GPU waited on something else (I/O, synchronisation, Python overhead)"
