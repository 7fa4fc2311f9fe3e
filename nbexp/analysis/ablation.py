"""Ablation by replay: how much of run B's change each factor of an explanation accounts for.

For each factor a replay can isolate (a param, a cell's text, the cells that produce changed data, a
seed), run B is replayed in a fresh kernel with that one factor set back to run A's value; B is also
replayed unchanged (twice when the budget allows) to measure the replay noise. Each replay is a run
of the ledger (``replay_of`` B) linked to the explanation in ``ablation_of``. A factor's effect is
what it takes away when reverted: the mean of B's unchanged replays minus the value without it. The
waterfall goes from A's value through each effect (and what no single factor explains: interactions,
factors no replay isolates, noise) to B's.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InvalidArgument
from ..ledger.queries import Reader
from .explain import rank, summary
from .metrics import ABLATION_TAG

NOISE_REPLAYS = 2  # replays of B unchanged when the budget allows


def _store(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    """Run ``write(store)`` in one transaction on a direct connection to the ledger."""
    from ..capture.secrets import scrub_text
    from ..ledger import connect, transaction
    from ..ledger.store import Store

    conn = connect(path)
    try:
        with transaction(conn):
            write(Store(conn, scrub=scrub_text))
    finally:
        conn.close()


def variant(run: dict, revert: dict | None) -> tuple[dict, dict[str, Any]]:
    """``run`` (a :meth:`Reader.run` dict) with the cells of ``revert`` set back (a cell whose source is
    None is left out), and the param overrides of ``revert``."""
    if not revert:
        return run, {}
    out = dict(run)
    lineage = copy.deepcopy(run["lineage"])
    drop = set()
    for cell in revert.get("cells", []):
        if cell["source"] is None:
            drop.add(cell["index"])
        else:
            lineage[cell["index"]]["source"] = cell["source"]
    out["lineage"] = [c for i, c in enumerate(lineage) if i not in drop]
    return out, dict(revert.get("params", {}))


def _execute(nb, workdir: Path, timeout: int) -> str | None:
    """Run the notebook in a fresh kernel; the error's last line when a cell failed, else None."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        lines = str(exc).strip().splitlines()
        return lines[-1] if lines else "a cell failed"
    except Exception as exc:  # a kernel that died, a timeout: the replay failed, the ablation goes on
        return f"{type(exc).__name__}: {exc}"
    return None


def ablate(
    ledger: str | os.PathLike,
    ex: dict,
    budget: int = 8,
    timeout: int = 600,
    workdir: str | os.PathLike | None = None,
    on_replay: Callable[[str, str], None] | None = None,
) -> dict:
    """Run the ablation of an explanation (:func:`.explain.explain`'s dict); returns it with each replayed
    factor's ``effect``, ``noise``, ``value_without`` and ``ablation_run``, re-ranked, and ``ablation``:
    ``{"id", "replays", "noise_runs", "noise_values", "noise", "reference", "factors_skipped", "rest",
    "waterfall" (steps), "figure" (plotly dict)}``. The explanation and its replays are stored in the ledger.

    Args:
        budget: replays at most: one or two of B unchanged, then one per isolable factor in rank order.
        timeout: seconds per cell of a replay.
        workdir: where the replays run (their relative paths resolve there); default the current folder.
        on_replay: called ``(what, run_id)`` after each replay (progress).

    Raises:
        InvalidArgument: a budget under 2 (one replay for the noise, one for a factor), or a bad timeout.
    """
    from .compare import module_sources
    from .replay import build_notebook, kept_modules

    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 2:
        raise InvalidArgument(f"--budget must be 2 or more (one replay of B unchanged, one per factor); got {budget!r}")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise InvalidArgument(f"--timeout must be a positive number of seconds; got {timeout!r}")
    ex = copy.deepcopy(ex)
    workdir = Path(workdir or os.getcwd())
    with Reader(ledger) as r:
        run_b: dict[str, Any] = dict(r.run(ex["b"]))
        ledger_path = r.path
        # B's replays import the notebook's modules as B trained with them
        modules, _differ, _unserved = kept_modules(module_sources(r, run_b["id"]), workdir, f"ablation-{run_b['id']}")
    isolable = [f for f in ex["factors"] if f.get("isolable")]
    noise_n = NOISE_REPLAYS if budget - len(isolable) >= NOISE_REPLAYS else 1
    chosen, skipped = isolable[: budget - noise_n], isolable[budget - noise_n :]
    exp_id = uuid.uuid4().hex[:12]
    _store(ledger_path, lambda s: s.open_explanation(exp_id, ex["a"], ex["b"], ex["metric"], time.time()))
    plan: list[dict | None] = [None] + chosen + [None] * (noise_n - 1)  # a noise replay first and last
    noise_runs: list[str] = []
    noise_values: list[float] = []
    try:
        for factor in plan:
            key = factor["key"] if factor else ""
            run, overrides = variant(run_b, factor["revert"] if factor else None)
            try:
                nb = build_notebook(run, overrides, ledger=str(ledger_path), modules=modules)
            except InvalidArgument as exc:
                assert factor is not None
                factor.update(isolable=False, not_isolable=f"replay cannot revert it: {exc}")
                continue
            with Reader(ledger_path) as r:
                before = r.latest_replay(ex["b"])
            error = _execute(nb, workdir, timeout)
            with Reader(ledger_path) as r:
                rid = r.latest_replay(ex["b"])
                replay: dict[str, Any] | None = dict(r.run(rid)) if rid and rid != before else None
            if replay is None:
                raise InvalidArgument(f"a replay of run {ex['b']} did not start tracking ({error or 'no error'})")
            replay_id: str = replay["id"]
            _store(ledger_path, lambda s: _link(s, replay_id, exp_id, key))  # noqa: B023  (called at once)
            if on_replay:
                on_replay(factor["title"] if factor else "unchanged", replay["id"])
            value = (replay["metrics"].get(ex["metric"]) or {}).get("last")
            if factor is None:
                if error is None and value is not None:
                    noise_runs.append(replay["id"])
                    noise_values.append(value)
                continue
            factor["ablation_run"] = replay["id"]
            if error is not None or value is None:
                factor["ablation_error"] = error or f"the replay recorded no {ex['metric']}"
                continue
            factor["value_without"] = value
        if not noise_values:
            raise InvalidArgument(
                f"replaying run {ex['b']} unchanged failed or recorded no {ex['metric']}: nothing to measure against"
            )
    except BaseException as exc:
        why = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        _store(ledger_path, lambda s: s.end_explanation(exp_id, "failed", why))
        raise
    reference = sum(noise_values) / len(noise_values)
    spread = max(noise_values + [ex["value_b"]]) - min(noise_values + [ex["value_b"]])
    for f in chosen:
        if "value_without" in f:
            f["effect"] = reference - f["value_without"]
            f["noise"] = spread
    ex["factors"] = rank(ex["factors"])
    effects = [f for f in ex["factors"] if f.get("effect") is not None]
    rest = ex["delta"] - sum(f["effect"] for f in effects)
    steps = (
        [{"label": f"A {ex['a']}", "measure": "absolute", "value": ex["value_a"]}]
        + [{"label": f"{f['kind']}: {f['title']}", "measure": "relative", "value": f["effect"]} for f in effects]
        + [{"label": "rest (interactions, not isolated, noise)", "measure": "relative", "value": rest}]
        + [{"label": f"B {ex['b']}", "measure": "total", "value": ex["value_b"]}]
    )
    ex["ablation"] = {
        "id": exp_id,
        "replays": len(noise_runs) + sum(1 for f in chosen if "ablation_run" in f),
        "noise_runs": noise_runs,
        "noise_values": noise_values,
        "noise": spread,
        "reference": reference,
        "factors_skipped": [f["key"] for f in skipped],
        "not_isolable": [f["key"] for f in ex["factors"] if not f.get("isolable")],
        "rest": rest,
        "waterfall": steps,
        "figure": waterfall_figure(ex["metric"], steps),
    }
    for f in skipped:
        f["not_ablated"] = "over the --budget"
    ex["summary"] = summary(ex)
    _store(ledger_path, lambda s: s.end_explanation(exp_id, "finished", json.dumps(ex, default=str)))
    return ex


def stored(reader: Reader, a: str, b: str, metric: str) -> dict | None:
    """The newest finished ablation of run ``b`` against ``a`` on ``metric`` (an overnight ``--ablate``), None
    if there is none: what ``nbexp explain`` and the morning review show without replaying again."""
    for item in reader.explanations(run_b=b, run_a=a, status="finished"):
        if item["metric"] == metric and item["result"]:
            return item["result"]
    return None


def _link(store, run_id: str, exp_id: str, key: str) -> None:
    store.link_ablation(run_id, exp_id, key)
    store.add_tags(run_id, [ABLATION_TAG])


def waterfall_figure(metric: str, steps: list[dict]) -> dict | None:
    """The waterfall from A's value to B's as a plotly figure dict; None without plotly."""
    try:
        from ..figures import _go, _plain, _text
    except ImportError:  # pragma: no cover - plotly is a dependency
        return None
    try:
        go = _go()
    except ImportError:
        return None
    fig = go.Figure(
        go.Waterfall(
            x=[_text(s["label"]) for s in steps],
            y=[s["value"] for s in steps],
            measure=[s["measure"] for s in steps],
            textposition="outside",
            text=[f"{s['value']:+.3g}" if s["measure"] == "relative" else f"{s['value']:.4g}" for s in steps],
        )
    )
    fig.update_layout(title=_text(f"{metric}: from A to B, factor by factor (ablation by replay)"), showlegend=False)
    return _plain(fig)


def waterfall_lines(ex: dict) -> list[str]:
    """The waterfall as text: A's value, each effect, the rest, B's value."""
    ab = ex.get("ablation")
    if not ab:
        return []
    steps = ab["waterfall"]
    width = max(len(s["label"]) for s in steps)
    out = [f"waterfall of {ex['metric']} (noise ±{ab['noise']:.2g} over {len(ab['noise_values'])} replays of B):"]
    for s in steps:
        value = f"{s['value']:+.4g}" if s["measure"] == "relative" else f"{s['value']:.4g}"
        sign = "  " if s["measure"] == "absolute" else "= " if s["measure"] == "total" else "+ "
        out.append(f"  {sign}{s['label']:<{width}}  {value}")
    return out
