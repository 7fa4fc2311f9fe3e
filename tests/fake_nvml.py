"""A stand-in for ``pynvml`` (nvidia-ml-py) with scripted GPUs: the one fake the project allows.

Same function names, constants and error types as pynvml. The script comes from
``$FAKE_NVML_SCRIPT`` (JSON), read at ``nvmlInit``::

    {"gpus": [{"name": "Fake H100", "util": 95, "mem_used_mb": 60000, "mem_total_mb": 81559,
               "power_w": 600, "proc_mem_mb": 50000, "fail_after": null}],
     "init_error": null}

``util`` is a number or a list cycled one value per call; ``fail_after`` makes that GPU
raise NVMLError_GpuIsLost after that many utilization reads; ``init_error`` makes
``nvmlInit`` raise (``"library"``: NVMLError_LibraryNotFound, ``"driver"``: NVMLError_DriverNotLoaded).

With ``$NBEXP_CPU_CLOCK_MODULE=fake_nvml`` it is also the process's CPU clock: ``"cpu_busy": true``
in the script makes :func:`process_time` advance with the wall clock (a process keeping one core
fully busy, whatever else the machine runs); otherwise it is :func:`time.process_time`.
"""

from __future__ import annotations

import json
import os
import time
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
MB = 1024 * 1024


class NVMLError(Exception):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class NVMLError_DriverNotLoaded(NVMLError):
    pass


class NVMLError_GpuIsLost(NVMLError):
    pass


_state: dict = {}


def nvmlInit():
    script = json.loads(os.environ.get("FAKE_NVML_SCRIPT", '{"gpus": []}'))
    err = script.get("init_error")
    if err == "library":
        raise NVMLError_LibraryNotFound("NVML Shared Library Not Found")
    if err == "driver":
        raise NVMLError_DriverNotLoaded("Driver Not Loaded")
    _state["gpus"] = script.get("gpus", [])
    _state["reads"] = [0] * len(_state["gpus"])


def nvmlShutdown():
    _state.clear()


def nvmlSystemGetDriverVersion():
    return "999.99-fake"


def nvmlDeviceGetCount():
    return len(_state["gpus"])


def nvmlDeviceGetHandleByIndex(i):
    return i


def nvmlDeviceGetName(h):
    return _state["gpus"][h].get("name", "Fake GPU")


def nvmlDeviceGetUUID(h):
    return f"GPU-fake-{h:04d}"


def nvmlDeviceGetUtilizationRates(h):
    g = _state["gpus"][h]
    n = _state["reads"][h]
    _state["reads"][h] = n + 1
    if g.get("fail_after") is not None and n >= g["fail_after"]:
        raise NVMLError_GpuIsLost("GPU is lost")
    util = g.get("util", 0)
    if isinstance(util, list):
        util = util[n % len(util)]
    return SimpleNamespace(gpu=util, memory=min(100, util // 2))


def nvmlDeviceGetMemoryInfo(h):
    g = _state["gpus"][h]
    total = g.get("mem_total_mb", 81559) * MB
    used = g.get("mem_used_mb", 1000) * MB
    return SimpleNamespace(total=total, used=used, free=total - used)


def nvmlDeviceGetPowerUsage(h):
    return int(_state["gpus"][h].get("power_w", 100) * 1000)


def nvmlDeviceGetEnforcedPowerLimit(h):
    return 700_000


def nvmlDeviceGetTemperature(h, sensor):
    return 55


def nvmlDeviceGetClockInfo(h, clock):
    return 1980


def nvmlDeviceGetComputeRunningProcesses(h):
    mb = _state["gpus"][h].get("proc_mem_mb", 0)
    return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=mb * MB)] if mb else []


def process_time():
    """This process's CPU seconds, as scripted (see the module docstring)."""
    if json.loads(os.environ.get("FAKE_NVML_SCRIPT", "{}")).get("cpu_busy"):
        return time.time()
    return time.process_time()
