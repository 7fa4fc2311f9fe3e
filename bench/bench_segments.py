"""Where a tracked cell's added time goes, segment by segment (issue 15). Prints a Markdown table.

Two real kernels side by side, one untracked and one tracked, run the same cells in blocks of 8, their
order turned each round. Each kernel stamps, with ``time.perf_counter`` (CLOCK_MONOTONIC on Linux: one clock
for every process of the machine), when its execute request's handler starts, when IPython's
``pre_execute`` and ``post_execute`` events fire and when the execute reply is sent; the client stamps when it
sent the request and when the reply came. It also times IPython's ``transform_cell`` and the garbage
collector's passes within the cell. The table gives each segment's median in both kernels and their
difference.

    .venv/bin/python bench/bench_segments.py            # new 50-line texts, 100 ms apart (a person)
    .venv/bin/python bench/bench_segments.py rerun      # the same 50-line text again and again
    .venv/bin/python bench/bench_segments.py new 0.0    # back to back ("Run All")
    .venv/bin/python bench/bench_segments.py ids 0.0    # the same, each text its own cell id (JupyterLab's Run All)
"""

from __future__ import annotations

import statistics
import sys
import time

from bench_core import FIFTY, execute, start_kernel  # also: a temporary IPYTHONDIR and NBEXP_HOME

# stamps kept in the kernel, one dict per execute request
STAMPS = r"""
import gc as _gc, time as _t
_k = get_ipython().kernel
_T, _cur = [], {}
_send0 = _k.session.send
def _send(stream, msg_or_type, *a, **kw):
    reply = msg_or_type == "execute_reply"
    if reply: _cur["send"] = _t.perf_counter()
    return _send0(stream, msg_or_type, *a, **kw)
_k.session.send = _send
_handler = _k.shell_handlers["execute_request"]
async def _execute(*a, **kw):
    _cur.clear(); _cur["req"] = _t.perf_counter()
    await _handler(*a, **kw)
    _T.append(dict(_cur))
_k.shell_handlers["execute_request"] = _execute
def _stamp(name):
    return lambda *a: _cur.__setitem__(name, _t.perf_counter())
get_ipython().events.register("pre_execute", _stamp("pre"))
get_ipython().events.register("post_execute", _stamp("post"))
_transform = get_ipython().transform_cell
def _timed_transform(*a, **kw):
    t0 = _t.perf_counter()
    try: return _transform(*a, **kw)
    finally: _cur["transform"] = _cur.get("transform", 0.0) + _t.perf_counter() - t0
get_ipython().transform_cell = _timed_transform
def _gc_pass(phase, info):
    if phase == "start": _cur["gc0"] = _t.perf_counter()
    elif "gc0" in _cur and "post" not in _cur: _cur["gc"] = _cur.get("gc", 0.0) + _t.perf_counter() - _cur["gc0"]
_gc.callbacks.append(_gc_pass)
"""


def main(mode: str = "new", gap: float = 0.1, rounds: int = 40) -> None:
    kernels: list = []

    try:
        plain, tracked = start_kernel(kernels), start_kernel(kernels)
        for kc in (plain, tracked):
            execute(kc, STAMPS)
        execute(tracked, "%load_ext nbexp")
        execute(tracked, "%nbexp track bench")
        time.sleep(3)  # the analysis child starts 2 s after %nbexp track
        sent: dict[int, list[tuple[float, float]]] = {id(plain): [], id(tracked): []}
        n = 0
        for r in range(rounds):
            for kc in (plain, tracked) if r % 2 else (tracked, plain):
                for _ in range(8):
                    code = FIFTY if mode == "rerun" else f"{FIFTY}\n# {n}"
                    n += 1
                    time.sleep(gap)
                    t0 = time.perf_counter()
                    execute(kc, code, cell_id=f"cell-{n}" if mode == "ids" else None)
                    sent[id(kc)].append((t0, time.perf_counter()))
        medians = {}
        for name, kc in (("untracked", plain), ("tracked", tracked)):
            msg = execute(kc, "", {"s": "repr(_T)"})
            stamps = eval(eval(msg["content"]["user_expressions"]["s"]["data"]["text/plain"]))  # our own repr
            stamps = [s for s in stamps if {"req", "pre", "post", "send"} <= set(s)][-len(sent[id(kc)]) :]
            client = sent[id(kc)][-len(stamps) :]
            segments = {
                "request sent -> handler starts": [s["req"] - c[0] for s, c in zip(stamps, client)],
                "handler -> pre_execute (IPython's transform, compile check)": [s["pre"] - s["req"] for s in stamps],
                "  of which transform_cell": [s.get("transform", 0.0) for s in stamps],
                "pre_execute -> post_execute (nbexp's pre_run_cell hook, the cell)": [
                    s["post"] - s["pre"] for s in stamps
                ],
                "post_execute -> reply sent (post_run_cell hook, reply)": [s["send"] - s["post"] for s in stamps],
                "reply sent -> client has it": [c[1] - s["send"] for s, c in zip(stamps, client)],
                "garbage collection inside the cell": [s.get("gc", 0.0) for s in stamps],
                "round trip": [c[1] - c[0] for c in client],
            }
            skip = len(stamps) // 8  # warm-up
            medians[name] = {k: statistics.median(v[skip:]) * 1e3 for k, v in segments.items()}
        print(f"Mode {mode!r}, {gap * 1e3:.0f} ms apart, {rounds * 8} cells a kernel.\n")
        print("| segment (median) | untracked | tracked | added |\n|---|---|---|---|")
        for k in medians["untracked"]:
            a, b = medians["untracked"][k], medians["tracked"][k]
            print(f"| {k} | {a:.3f} ms | {b:.3f} ms | {b - a:+.3f} ms |")
    finally:
        for km, kc in kernels:
            kc.stop_channels()
            km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "new", float(sys.argv[2]) if len(sys.argv) > 2 else 0.1)
