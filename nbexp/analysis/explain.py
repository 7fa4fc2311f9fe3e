"""``nbexp explain``: why run B scores differently from run A, as one ranked list of factors.

Every factor is something recorded that differs between the two runs, with its evidence and a
plain sentence:

- ``data``: a variable's fingerprint changed; its worst drifted columns (PSI/KS, class balance:
  :mod:`.drift`). The changed cells that produce the data (found by walking B's cells back from
  the variable through what each cell reads and defines) belong to this factor, not to ``code``.
- ``code``: a cell's text changed beyond the params it assigns (cells are paired by their text,
  in order, so the execution counts play no part).
- ``param``: a param changed, old -> new (the estimator's own copy, ``model.C`` next to ``C``,
  is the same factor). Cosmetic params (verbosity, names, paths of outputs...) rank last.
- ``environment``: packages added, removed or upgraded, the git commit, Python, CUDA.
- ``seed``: a seed param or an RNG seeding call that changed, code that draws random numbers
  without seeding anything (a non-deterministic run), or a run that trained without running its
  seeding cell again after another run trained (its random stream continued: :func:`continued_stream`).
- ``system``: the run went much slower, or its GPU sat idle.

Ranking: by evidence first (a factor that ablation by replay showed to move the metric beyond
the replay noise, largest effect first; see :mod:`.ablation`), then by prior: data and code
before params, params before environment, seeds and system, cosmetic params last. Deterministic
and offline: everything comes from the ledger.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidArgument
from ..ledger.queries import Reader
from ..textfmt import count
from .compare import module_blocks, module_sources, same_param
from .drift import dataset_drift
from .metrics import is_ablation, rank_metrics

KINDS = ("model", "data", "code", "param", "environment", "seed", "system")
# prior rank of each kind of factor when no ablation says otherwise (lower comes first)
PRIOR = {"model": -1, "data": 0, "code": 1, "param": 2, "environment": 3, "seed": 4, "system": 5, "cosmetic": 6}
SEED_KEY = re.compile(r"(^|[._])(seed|random_state|rng_seed|random_seed)$|^seed", re.IGNORECASE)
COSMETIC_KEY = re.compile(
    r"(verbose|verbosity|log_every|log_interval|print|progress|desc|comment|note|name|title|tag|plot|"
    r"output_dir|out_dir|save_dir|checkpoint_dir|n_jobs|num_workers|workers)$",
    re.IGNORECASE,
)
DATA_KEY = re.compile(r"(path|file|csv|parquet|dataset|data|url|uri)$", re.IGNORECASE)
DATA_SUFFIX = re.compile(r"\.(csv|tsv|parquet|pq|feather|json|jsonl|npy|npz|h5|hdf5|arrow|txt|xlsx?)$", re.IGNORECASE)
SEED_CALL = re.compile(
    r"(manual_seed|manual_seed_all|\bseed|set_seed|set_random_seed|seed_everything|default_rng|RandomState|"
    r"random_state)"
    r"(\s*[(=]\s*)(-?\d+)"
)
SEEDED = re.compile(r"seed|random_state", re.IGNORECASE)  # code that seeds something, however
# a call that seeds a library's global generator, whose stream every later draw continues (``random_state=0`` and
# ``default_rng(0)`` seed one call or a generator of their own)
GLOBAL_SEED = re.compile(r"\b(manual_seed|manual_seed_all|seed|set_seed|set_random_seed|seed_everything)\s*\(")
RNG_USE = re.compile(r"\b(torch|np\.random|numpy\.random|random\.|rng\.|tf\.random|jax\.random)")
SLOWER = 1.5  # a run this many times slower than the other ...
SLOWER_S = 5.0  # ... and by at least this many seconds is a system factor
PACKAGES_SHOWN = 6
COLUMNS_SHOWN = 3


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return repr(v) if isinstance(v, (str, bool)) or v is None else json.dumps(v)


def _signed(v: float) -> str:
    return f"{v:+.3g}"


def lineage_cells(run: dict) -> list[dict]:
    """The cells of a run's lineage that a replay runs (nbexp's own cells and failed ones left out), each
    ``{"index": position in the lineage, "source", "execution_count"}``; not the imports nbexp read from before
    tracking (which of them a session has depends on what its kernel ran before, in cells of their own or of an
    earlier session: two runs differ in them without any change of code)."""
    from ..capture.code import drives_only_nbexp, is_prelude

    return [
        {"index": i, "source": c["source"], "execution_count": c["execution_count"]}
        for i, c in enumerate(run["lineage"])
        if not drives_only_nbexp(c["source"]) and c["status"] == "ok" and not is_prelude(c["source"])
    ]


SEED_ASSIGN = re.compile(r"^(\s*(\w+)\s*=\s*)(-?\d+)\s*$", re.MULTILINE)


def _seed_values(source: str) -> list[tuple[str, str]]:
    """The literal seeds a cell sets, as ``(what, value)``: ``torch.manual_seed(0)``, ``random_state=0``,
    ``SEED = 0``."""
    found = [(m[0], m[2]) for m in SEED_CALL.findall(source)]
    return found + [(m.group(2), m.group(3)) for m in SEED_ASSIGN.finditer(source) if SEED_KEY.search(m.group(2))]


def seed_change(a_source: str, b_source: str) -> str:
    """How the seeds of two versions of a cell differ: ``SEED 0 -> 1``."""
    pairs = zip(_seed_values(a_source), _seed_values(b_source))
    return "; ".join(f"{wa} {va} -> {vb}" for (wa, va), (_, vb) in pairs if va != vb) or "seed"


def _unseeded(source: str) -> str:
    """``source`` with its literal seeds blanked: two cells equal so differ only in their seeds."""
    source = SEED_CALL.sub(r"\1\2#", source)
    return SEED_ASSIGN.sub(lambda m: m.group(1) + "#" if SEED_KEY.search(m.group(2)) else m.group(0), source)


def _norm(source: str) -> str:
    return "\n".join(ln.rstrip() for ln in source.strip().splitlines())


def pair_cells(a_cells: list[dict], b_cells: list[dict]) -> list[tuple[dict | None, dict | None]]:
    """The cells that differ, paired ``(A's, B's)`` by aligning the two lineages on their text: a cell
    only in B pairs with None, a cell only in A with None on B's side."""
    matcher = difflib.SequenceMatcher(
        None, [_norm(c["source"]) for c in a_cells], [_norm(c["source"]) for c in b_cells], autojunk=False
    )
    pairs: list[tuple[dict | None, dict | None]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        left, right = a_cells[i1:i2], b_cells[j1:j2]
        for k in range(max(len(left), len(right))):
            pairs.append((left[k] if k < len(left) else None, right[k] if k < len(right) else None))
    return pairs


def _flows(sources: list[str]) -> list[tuple[set[str], set[str]]]:
    """``(reads, defines)`` of each cell (empty for text that is not Python)."""
    import ast

    from ..capture.training import analyze, unwrap_magics

    try:
        from IPython.core.inputtransformer2 import TransformerManager

        transform: Any = TransformerManager().transform_cell
    except ImportError:  # pragma: no cover - IPython comes with the package
        transform = str
    out = []
    for src in sources:
        try:
            code = transform(src)
            tree = ast.parse(code)
            if "get_ipython" in code:
                tree = unwrap_magics(tree, transform)
            t = analyze(tree)
            out.append((set(t.reads), set(t.defines)))
        except Exception:
            out.append((set(), set()))
    return out


def upstream(flows: list[tuple[set[str], set[str]]], name: str) -> set[int]:
    """Positions of the cells a variable's value comes from: walking back from the last cell, each cell that
    defines a name still needed is kept, and what it reads becomes needed."""
    needed, kept = {name}, set()
    for i in range(len(flows) - 1, -1, -1):
        reads, defines = flows[i]
        if defines & needed:
            kept.add(i)
            needed |= reads
    return kept


def _packages(reader: Reader, run: dict) -> dict[str, str] | None:
    env_id = (run.get("session") or {}).get("env_id")
    text = reader.environment_packages(env_id) if env_id else None
    return json.loads(text) if text else None


def _duration(run: dict) -> float | None:
    if run.get("end_time") is None or run.get("start_time") is None:
        return None
    return run["end_time"] - run["start_time"]


def pick_metric(a: dict, b: dict, metric: str | None) -> str:
    """``metric`` when both runs hold it, else the main metric the two runs share (the one rule of
    :mod:`.metrics`).

    Raises:
        InvalidArgument: a named metric one run lacks, or no metric in common.
    """
    if metric is not None:
        for run in (a, b):
            if metric not in run["metrics"]:
                known = ", ".join(sorted(run["metrics"])) or "none"
                raise InvalidArgument(f"--metric {metric!r}: run {run['id']} has no such metric (it has: {known})")
        return metric
    shared = [k for k in rank_metrics([a, b]) if k in a["metrics"] and k in b["metrics"]]
    if not shared:
        raise InvalidArgument(f"runs {a['id']} and {b['id']} share no metric: nothing to explain")
    return shared[0]


def resolve_pair(reader: Reader, run: str, vs: str = "best", metric: str | None = None) -> tuple[str, str, str]:
    """``(a, b, metric)``: the run explained is ``b``; ``vs`` is a run, ``best`` (the best other run with the
    metric, as ``nbexp check`` picks it) or ``tag:NAME``. Ablation replays (tagged ``ablation``) are neither
    ``latest`` nor ``best``: after ``--ablate`` the same command explains the same pair."""
    from .check import pick_baseline
    from .metrics import main_metric
    from .review import lower_is_better

    if run == "latest":  # the newest run of the user's, not a replay an ablation made
        newest = [r for r in reader.list_runs(sprint="all", limit=50) if not is_ablation(r)]
        run = newest[0]["id"] if newest else run
    b: dict[str, Any] = dict(reader.run(run))
    if metric is None:
        metric = main_metric([b])
        if metric is None:
            raise InvalidArgument(f"run {b['id']} has no metric: nothing to explain")
    elif metric not in b["metrics"]:
        known = ", ".join(sorted(b["metrics"])) or "none"
        raise InvalidArgument(f"--metric {metric!r}: run {b['id']} has no such metric (it has: {known})")
    if vs == "best":  # as nbexp check picks it, ablation replays left out
        lower = lower_is_better(metric)
        scored = [
            r
            for r in reader.list_runs(sprint="all")
            if r["id"] != b["id"]
            and not is_ablation(r)
            and metric in r["metrics"]
            and not math.isnan(r["metrics"][metric]["last"])
        ]
        if not scored:
            raise InvalidArgument(f"no run to explain {b['id']} against: no other run has metric {metric!r}")
        a_id = (min if lower else max)(scored, key=lambda r: r["metrics"][metric]["last"])["id"]
    else:
        a_id = pick_baseline(reader, vs, metric, lower_is_better(metric), b["id"])
    if a_id == b["id"]:
        raise InvalidArgument(f"--vs {vs!r} is run {b['id']} itself: pick another run to explain it against")
    return a_id, b["id"], metric


def explain(
    reader: Reader, a: str, b: str, metric: str | None = None, weights: dict[str, float] | None = None
) -> dict[str, Any]:
    """Why run ``b`` differs from run ``a`` on ``metric`` (default: their main metric).

    ``weights`` (param -> importance across a sprint, :func:`importance`) orders the params among themselves.

    Returns:
        ``{"a", "b", "metric", "value_a", "value_b", "delta", "direction", "factors", "summary",
        "only_seed"}``. ``factors`` are ranked (see the module docstring), each ``{"key", "kind",
        "title", "evidence", "sentence", "prior", "isolable", "revert", "not_isolable"}``; ``revert`` says
        how a replay of B takes the factor back to A's value (``{"params": {...}}`` or ``{"cells": [...]}``),
        ``not_isolable`` why a replay cannot (None where it can).

    Raises:
        InvalidArgument: the same run twice, a metric a run lacks, no metric in common.
        RunNotFound: a reference matches no run.
    """
    from .review import lower_is_better

    ra: dict[str, Any] = dict(reader.run(a))
    rb: dict[str, Any] = dict(reader.run(b))
    if ra["id"] == rb["id"]:
        raise InvalidArgument(f"explain needs two different runs; got {ra['id']} twice")
    metric = pick_metric(ra, rb, metric)
    va, vb = ra["metrics"][metric]["last"], rb["metrics"][metric]["last"]
    factors: list[dict] = []
    param_factors = _param_factors(ra["params"], rb["params"])
    for pf in param_factors:
        keys = pf["evidence"]["params"]
        pf["weight"] = max((weights or {}).get(k, 0.0) for k in keys)
    a_cells, b_cells = lineage_cells(ra), lineage_cells(rb)
    _assignable(param_factors, b_cells)
    pairs = pair_cells(a_cells, b_cells)
    flows = _flows([c["source"] for c in b_cells])
    pos_of = {c["index"]: i for i, c in enumerate(b_cells)}  # lineage index -> position among b_cells
    changed: dict[int, tuple[dict | None, dict]] = {}  # position in b_cells -> (A's cell, B's cell)
    removed: list[dict] = []  # cells only A ran
    names = {k: v for pf in param_factors if pf["revert"] for k, v in pf["revert"]["params"].items()}
    param_cells: dict[int, list[str]] = {}  # position -> params whose assignment explains the cell's change
    seed_cells: set[int] = set()
    for ca, cb in pairs:
        if cb is None:
            assert ca is not None
            removed.append(ca)
            continue
        pos = pos_of[cb["index"]]
        changed[pos] = (ca, cb)
        if ca is not None:
            from .replay import override

            undone, done = override(cb["source"], names)
            if done and _norm(undone) == _norm(ca["source"]):
                param_cells[pos] = sorted(done)
            elif _norm(_unseeded(ca["source"])) == _norm(_unseeded(cb["source"])):
                seed_cells.add(pos)

    # data: per variable whose content changed, the changed cells it comes from; a variable only one run recorded
    # is not data that changed (the other run did not run the cell that read it: its test cell not run again)
    data_a = {d["name"]: d for d in ra["data"]}
    data_b = {d["name"]: d for d in rb["data"]}
    groups: dict[frozenset[int], list[dict]] = {}
    for name in sorted(set(data_a) & set(data_b)):
        da, db = data_a[name], data_b[name]
        if da["fingerprint"] == db["fingerprint"]:
            continue
        rows = []
        if da["summary"] and db["summary"]:
            rows = [r for r in dataset_drift(da["summary"], db["summary"]) if r["flags"]]
        item = {
            "variable": name,
            "fingerprint_a": da["fingerprint"],
            "fingerprint_b": db["fingerprint"],
            "shape_a": da["shape"],
            "shape_b": db["shape"],
            "drift": rows,
        }
        sources = frozenset(upstream(flows, name) & set(changed))
        groups.setdefault(sources, []).append(item)
    used_cells: set[int] = set()
    absorbed: set[str] = set()
    for sources, items in sorted(groups.items(), key=lambda g: sorted(g[0])):
        factors.append(_data_factor(sources, items, changed, param_cells, seed_cells, param_factors, absorbed))
        used_cells |= sources
    for pf in param_factors:
        if pf["key"] in absorbed:
            continue
        factors.append(pf)

    # code: changed cells not explained by params, seeds or data
    for pos, (ca, cb) in sorted(changed.items()):
        if pos in used_cells or pos in param_cells or pos in seed_cells:
            continue
        factors.append(_code_factor(ca, cb, pos))
    for ca in removed:
        factors.append(_code_factor(ca, None, None))
    factors += _module_factors(reader, ra, rb)
    factors += _seed_factors(changed, seed_cells - used_cells, b_cells, param_factors)
    factors += _stream_factors(reader, ra, rb)
    factors += _continued_factors(ra, rb)
    factors += _environment_factors(reader, ra, rb)
    factors += _system_factors(ra, rb)
    for f in factors:
        f.setdefault("effect", None)
    ranked = rank(factors)
    only_seed = bool(ranked) and all(f["kind"] == "seed" for f in ranked)
    out = {
        "a": ra["id"],
        "b": rb["id"],
        "name_a": ra["name"],
        "name_b": rb["name"],
        "metric": metric,
        "value_a": va,
        "value_b": vb,
        "delta": vb - va,
        "direction": "lower" if lower_is_better(metric) else "higher",
        "factors": ranked,
        "only_seed": only_seed,
        "ablation": None,
    }
    out["summary"] = summary(out)
    return out


def _param_factors(pa: dict, pb: dict) -> list[dict]:
    """One factor per changed param; a key that only repeats another's change (``model.C`` next to ``C``)
    joins that one's factor."""
    diff = {k: (pa.get(k, "<absent>"), pb.get(k, "<absent>")) for k in sorted(set(pa) | set(pb))}
    diff = {k: v for k, v in diff.items() if not same_param(*v)}
    heads: dict[str, list[str]] = {}
    for k in sorted(diff, key=lambda k: (k.count("."), k)):
        head = next((h for h in heads if k.endswith("." + h) and same_param(diff[h][0], diff[k][0])), None)
        if head is None and "." in k:  # an object's copy of a param: the same change under another name
            same = [h for h in heads if same_param(diff[h][0], diff[k][0]) and same_param(diff[h][1], diff[k][1])]
            named = [h for h in same if h.split(".")[-1].lower() == k.split(".")[-1].lower()]
            head = (named or same)[0] if named or same else None
        if head is None:
            heads[k] = [k]
        else:
            heads[head].append(k)
    out = []
    for head, keys in heads.items():
        old, new = diff[head]
        seed = bool(SEED_KEY.search(head))
        data = not seed and isinstance(new, str) and bool(DATA_KEY.search(head) or DATA_SUFFIX.search(new))
        cosmetic = not seed and not data and bool(COSMETIC_KEY.search(head.split(".")[-1]))
        kind = "seed" if seed else "data" if data else "param"
        revert = {k: diff[k][0] for k in keys if k.isidentifier() and diff[k][0] != "<absent>"}
        also = f" (also {', '.join(keys[1:])})" if len(keys) > 1 else ""
        title = f"{head} {_fmt(old)} -> {_fmt(new)}"
        if seed:
            sentence = f"the seed changed: {title}{also}"
        elif data:
            sentence = f"the data source changed: {title}{also}"
        else:
            sentence = f"param {title}{also}" + (" (cosmetic: not expected to move the metric)" if cosmetic else "")
        out.append(
            {
                "key": f"param:{head}",
                "kind": kind,
                "title": title,
                "evidence": {"params": {k: list(diff[k]) for k in keys}},
                "sentence": sentence,
                "prior": PRIOR["cosmetic" if cosmetic else kind],
                "isolable": bool(revert),
                "revert": {"params": revert} if revert else None,
                "not_isolable": None if revert else "no top-level NAME = literal assignment to revert in the code",
            }
        )
    return out


def _assignable(param_factors: list[dict], b_cells: list[dict]) -> None:
    """Keep in each param factor's revert only the names B's code assigns a literal to (what a replay can
    rewrite); a factor left with none is not isolable (a param passed to ``nbexp.run``, set by ``%nbexp param``)."""
    from .replay import override

    names = {k: v for pf in param_factors if pf["revert"] for k, v in pf["revert"]["params"].items()}
    assigned: set[str] = set()
    for cell in b_cells:
        assigned |= override(cell["source"], names)[1]
    for pf in param_factors:
        if not pf["revert"]:
            continue
        kept = {k: v for k, v in pf["revert"]["params"].items() if k in assigned}
        if not kept:
            pf.update(isolable=False, revert=None, not_isolable="no top-level NAME = literal assignment in B's code")
        else:
            pf["revert"] = {"params": kept}


def _data_factor(sources, items, changed, param_cells, seed_cells, param_factors, absorbed: set[str]) -> dict:
    """One data factor for the variables the same changed cells produce."""
    rows = [(it["variable"], r) for it in items for r in it["drift"]]
    rows.sort(key=lambda vr: -(vr[1].get("psi") or 0.0) - (vr[1].get("ks") or 0.0))
    names = [it["variable"] for it in items]
    shown = [f"{v} column `{r['column']}` {r['flags'][0]}" for v, r in rows[:COLUMNS_SHOWN]]
    shapes = [
        f"{it['variable']} {tuple(it['shape_a'] or ())} -> {tuple(it['shape_b'] or ())}"
        for it in items
        if it["shape_a"] and it["shape_b"] and it["shape_a"] != it["shape_b"]
    ]
    what = "; ".join(shown) if shown else ("shape " + ", ".join(shapes[:3]) if shapes else "content changed")
    sentence = f"the data changed ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}): {what}"
    revert: dict[str, Any] | None = None
    why = None
    kind, title = "data", ""
    if sources and all(pos in seed_cells for pos in sources):  # data drawn from a changed seed
        kind = "seed"
        title = "; ".join(seed_change(changed[p][0]["source"], changed[p][1]["source"]) for p in sorted(sources))
        sentence = f"the seed changed ({title}), and with it the data ({', '.join(names[:4])})"
        revert = {
            "cells": [{"index": changed[p][1]["index"], "source": changed[p][0]["source"]} for p in sorted(sources)]
        }
    elif sources:
        params_only = all(pos in param_cells for pos in sources)
        if params_only:
            keys = sorted({k for pos in sources for k in param_cells[pos]})
            revert_params: dict[str, Any] = {}
            for pf in param_factors:
                if pf["revert"] and set(pf["revert"]["params"]) & set(keys):
                    revert_params.update(pf["revert"]["params"])
                    absorbed.add(pf["key"])
                    sentence += f", through param {pf['title']}"
            revert = {"params": revert_params}
            seeds = [pf for pf in param_factors if pf["key"] in absorbed and set(pf["revert"]["params"]) & set(keys)]
            if seeds and all(pf["kind"] == "seed" for pf in seeds):  # data drawn from the seed: the seed's doing
                kind = "seed"
                sentence = f"the seed changed: {'; '.join(pf['title'] for pf in seeds)}, and with it the data"
                sentence += f" ({', '.join(names[:4])}{' ...' if len(names) > 4 else ''})"
        else:
            cells = []
            for pos in sorted(sources):
                ca, cb = changed[pos]
                cells.append({"index": cb["index"], "source": ca["source"] if ca else None})
            revert = {"cells": cells}
            counts = ", ".join(f"In[{changed[p][1]['execution_count']}]" for p in sorted(sources))
            sentence += f"; made by changed code ({counts})"
    else:
        why = "no changed cell produces it (a file changed on disk, or data from outside the notebook)"
    worst = max((r.get("psi") or 0.0 for _, r in rows), default=0.0)
    return {
        "key": "data:" + ",".join(names),
        "kind": kind,
        "title": title if kind == "seed" else ", ".join(names),
        "evidence": {"variables": items, "worst_psi": worst},
        "sentence": sentence,
        "prior": PRIOR[kind],
        "weight": worst + len(rows),
        "isolable": revert is not None,
        "revert": revert,
        "not_isolable": why,
    }


def _code_factor(ca: dict | None, cb: dict | None, pos: int | None) -> dict:
    a_src = ca["source"].splitlines() if ca else []
    b_src = cb["source"].splitlines() if cb else []
    diff = list(difflib.unified_diff(a_src, b_src, lineterm="", n=1))[2:]
    added = [ln[1:] for ln in diff if ln.startswith("+")]
    gone = [ln[1:] for ln in diff if ln.startswith("-")]
    label = f"In[{cb['execution_count']}]" if cb else f"In[{ca['execution_count']}] of A" if ca else "?"
    if cb is None:
        sentence = f"a cell A ran is gone from B ({label}: {(gone or [''])[0].strip()[:60]})"
    elif ca is None:
        sentence = f"B ran a new cell {label}: {(added or [''])[0].strip()[:60]}"
    else:
        first = (added or gone or [""])[0].strip()[:60]
        sentence = f"cell {label} changed (+{len(added)}/-{len(gone)} lines): {first}"
    return {
        "key": f"cell:{cb['index'] if cb else 'A' + str(ca['index'] if ca else '?')}",
        "kind": "code",
        "title": label,
        "evidence": {"diff": diff},
        "sentence": sentence,
        "prior": PRIOR["code"],
        "weight": len(added) + len(gone),
        "isolable": cb is not None,
        "revert": {"cells": [{"index": cb["index"], "source": ca["source"] if ca else None}]} if cb else None,
        "not_isolable": None if cb else "a cell only A ran: a replay of B has nowhere sure to put it back",
    }


def _module_factors(reader: Reader, ra: Mapping[str, Any], rb: Mapping[str, Any]) -> list[dict]:
    """A code factor per module of the notebook's own code whose source differs between the two runs' trainings
    (``train_utils.py`` edited on disk between them, no cell changed): :func:`.compare.module_blocks`, counted."""
    out = []
    for block in module_blocks(module_sources(reader, ra["id"]), module_sources(reader, rb["id"])):
        name, status = block["module"], block["status"]
        added = [text for tag, text in block["lines"] if tag == "+"]
        gone = [text for tag, text in block["lines"] if tag == "-"]
        first = (added or gone or [""])[0].strip()[:60]
        if status != "changed":
            sentence = f"module {name} imported by {'B' if status == 'added' else 'A'} only"
        else:
            sentence = f"module {name} changed (+{len(added)}/-{len(gone)} lines)" + (f": {first}" if first else "")
        out.append(
            {
                "key": f"module:{name}",
                "kind": "code",
                "title": name,
                "evidence": {
                    "diff": [tag + text for tag, text in block["lines"]],
                    "sha256_a": block["sha256_a"],
                    "sha256_b": block["sha256_b"],
                },
                "sentence": sentence,
                "prior": PRIOR["code"],
                "weight": len(added) + len(gone),
                "isolable": False,
                "revert": None,
                "not_isolable": "a module of the notebook's own code: the ablation reverts cells and params",
            }
        )
    return out


def continued_stream(reader: Reader, run: Mapping[str, Any]) -> dict | None:
    """``{"cell": the seeding cell's execution count, "run": the run that trained in between}`` when the random
    numbers ``run``'s training drew did not start from its seed: the last cell of its code that seeds
    (``keras.utils.set_random_seed(42)``, ``torch.manual_seed(0)``, ``np.random.seed(0)``) ran before another run's
    training, and did not run again before ``run``'s own; only a library's global generator counts
    (:data:`GLOBAL_SEED`). None otherwise (a run that trained in none of its cells
    evaluates another run's model and drew nothing).

    Set once at the top of a notebook, a seed is spent by the first run's training: a re-run that trains again
    without the seeding cell draws the numbers that came after, which no replay (seeding once, then training) draws:
    its metrics can move although nothing in its code, params or data changed (a user trial, Keras)."""
    seeds = [c for c in run["lineage"] if c["status"] == "ok" and GLOBAL_SEED.search(c["source"])]
    if not seeds:
        return None
    end = run["end_time"] if run.get("end_time") is not None else float("inf")
    trainings = reader.trainings(run["session_id"], min(c["start"] for c in seeds), end)
    own = next((start for run_id, start in trainings if run_id == run["id"]), None)
    before = [c for c in seeds if own is not None and c["start"] < own]  # a seed set after it trained spent nothing
    if own is None or not before:
        return None
    seed = max(before, key=lambda c: c["start"])
    for run_id, start in trainings:
        if seed["start"] < start < own and run_id is not None and run_id != run["id"]:
            return {"cell": seed["execution_count"], "run": run_id}
    return None


def _unisolable(
    kind: str, side: str, run: Mapping[str, Any], title: str, evidence: dict, sentence: str, why: str
) -> dict:
    """A factor of ``kind`` that one side's run (``side``, A or B) carries alone and that no replay can isolate:
    ``why`` says what was not recorded."""
    return {
        "key": f"{kind}:continued:{side}",
        "kind": kind,
        "title": title,
        "evidence": {"run": run["id"], **evidence},
        "sentence": sentence,
        "prior": PRIOR[kind],
        "isolable": False,
        "revert": None,
        "not_isolable": why,
    }


def _stream_factors(reader: Reader, ra: Mapping[str, Any], rb: Mapping[str, Any]) -> list[dict]:
    """A seed factor for each of the two runs whose training continued a random stream (:func:`continued_stream`):
    a replay cannot take it back, the stream's state was not recorded."""
    out = []
    for side, run in (("A", ra), ("B", rb)):
        stream = continued_stream(reader, run)
        if stream is not None:
            sentence = (
                f"{side} trained without running its seed (In[{stream['cell']}]) again after run {stream['run']}"
                " trained: it drew the random numbers that came after, not those its seed gives"
            )
            why = "the random stream's state when it trained was not recorded"
            # the evidence's "run" is the side's run: the run that trained in between is "after"
            evidence = {"cell": stream["cell"], "after": stream["run"]}
            out.append(_unisolable("seed", side, run, f"{side}'s random stream continued", evidence, sentence, why))
    return out


def continued_model(run: Mapping[str, Any]) -> str | None:
    """What the session noted when ``run`` trained a model another run had trained, on from its weights (see
    ``nbexp.tracker.Session._continued``); None when it trained from scratch."""
    return next((e["message"] for e in run.get("events") or () if e["cause"] == "continued"), None)


def _continued_factors(ra: Mapping[str, Any], rb: Mapping[str, Any]) -> list[dict]:
    """A model factor for each of the two runs that trained on from another run's weights (:func:`continued_model`):
    its metrics owe to that run's training too, which neither its params nor its code say, and which its replay does
    not do. Ranked first: no other difference tells the two runs apart as much."""
    out = []
    for side, run in (("A", ra), ("B", rb)):
        note = continued_model(run)
        if note is not None:
            title = f"{side} trained on from another run's model"
            sentence = f"{side} did not train from scratch: {note}"
            why = "the weights it started from were not recorded"
            out.append(_unisolable("model", side, run, title, {"note": note}, sentence, why))
    return out


def _seed_factors(changed, seed_cells, b_cells, param_factors) -> list[dict]:
    out = []
    for pos in sorted(seed_cells):
        ca, cb = changed[pos]
        change = seed_change(ca["source"], cb["source"])
        out.append(
            {
                "key": f"seed:cell:{cb['index']}",
                "kind": "seed",
                "title": change,
                "evidence": {
                    "cell": cb["execution_count"],
                    "a": _seed_values(ca["source"]),
                    "b": _seed_values(cb["source"]),
                },
                "sentence": f"the seed changed in In[{cb['execution_count']}]: {change}",
                "prior": PRIOR["seed"],
                "isolable": True,
                "revert": {"cells": [{"index": cb["index"], "source": ca["source"]}]},
                "not_isolable": None,
            }
        )
    seeded_param = any(pf["kind"] == "seed" for pf in param_factors)
    code_b = "\n".join(c["source"] for c in b_cells)
    if not out and not seeded_param and RNG_USE.search(code_b) and not SEEDED.search(code_b):
        out.append(
            {
                "key": "seed:absent",
                "kind": "seed",
                "title": "no seed set",
                "evidence": {},
                "sentence": "B draws random numbers without setting a seed: a rerun alone can move the metric",
                "prior": PRIOR["seed"],
                "isolable": False,
                "revert": None,
                "not_isolable": "no seed to revert (the replay noise measures it)",
            }
        )
    return out


def _environment_factors(reader: Reader, ra: dict, rb: dict) -> list[dict]:
    out = []
    sa, sb = ra.get("session") or {}, rb.get("session") or {}
    pa, pb = _packages(reader, ra), _packages(reader, rb)
    if pa is not None and pb is not None and pa != pb:
        upgraded = [f"{k} {pa[k]} -> {pb[k]}" for k in sorted(pa) if k in pb and pa[k] != pb[k]]
        added = [f"{k} {pb[k]}" for k in sorted(pb) if k not in pa]
        gone = [f"{k} {pa[k]}" for k in sorted(pa) if k not in pb]
        parts = []
        for label, items in (("upgraded", upgraded), ("added", added), ("removed", gone)):
            if items:
                parts.append(
                    f"{label} {', '.join(items[:PACKAGES_SHOWN])}"
                    + (f" and {len(items) - PACKAGES_SHOWN} more" if len(items) > PACKAGES_SHOWN else "")
                )
        out.append(
            {
                "key": "env:packages",
                "kind": "environment",
                "title": "packages",
                "evidence": {"upgraded": upgraded, "added": added, "removed": gone},
                "sentence": "the installed packages differ: " + "; ".join(parts),
                "prior": PRIOR["environment"],
                "weight": len(upgraded) + len(added) + len(gone),
            }
        )
    for field, label in (("git_commit", "git commit"), ("python", "Python"), ("cuda", "CUDA")):
        x, y = sa.get(field), sb.get(field)
        if x and y and x != y:
            show = (lambda v: v[:10]) if field == "git_commit" else (lambda v: v)
            out.append(
                {
                    "key": f"env:{field}",
                    "kind": "environment",
                    "title": label,
                    "evidence": {"a": x, "b": y},
                    "sentence": f"{label} {show(x)} -> {show(y)}",
                    "prior": PRIOR["environment"],
                }
            )
    if not sa.get("git_dirty") and sb.get("git_dirty"):
        out.append(
            {
                "key": "env:git_dirty",
                "kind": "environment",
                "title": "uncommitted changes",
                "evidence": {"a": sa.get("git_dirty"), "b": sb.get("git_dirty")},
                "sentence": "B ran from a tree with uncommitted changes",
                "prior": PRIOR["environment"],
            }
        )
    for f in out:
        f.update(isolable=False, revert=None, not_isolable="the environment is the machine's: a replay runs here")
    return out


def _system_factors(ra: dict, rb: dict) -> list[dict]:
    out = []
    da, db = _duration(ra), _duration(rb)
    if da and db and db > da * SLOWER and db - da >= SLOWER_S:
        out.append(
            {
                "key": "system:duration",
                "kind": "system",
                "title": "slower",
                "evidence": {"seconds_a": da, "seconds_b": db},
                "sentence": f"B ran {db / da:.1f}x slower ({db:.0f} s vs {da:.0f} s)",
                "prior": PRIOR["system"],
            }
        )
    if rb.get("idle_hint") and not ra.get("idle_hint"):
        out.append(
            {
                "key": "system:idle",
                "kind": "system",
                "title": "GPU idle",
                "evidence": {"hint": rb["idle_hint"]},
                "sentence": f"B's GPU sat idle: {rb['idle_hint']}",
                "prior": PRIOR["system"],
            }
        )
    if (ra.get("gpu_count") or 0) != (rb.get("gpu_count") or 0):
        out.append(
            {
                "key": "system:gpus",
                "kind": "system",
                "title": "GPUs",
                "evidence": {"a": ra.get("gpu_count"), "b": rb.get("gpu_count")},
                "sentence": f"GPUs {ra.get('gpu_count') or 0} -> {rb.get('gpu_count') or 0}",
                "prior": PRIOR["system"],
            }
        )
    for f in out:
        f.update(isolable=False, revert=None, not_isolable="the machine's state: a replay cannot set it back")
    return out


def significant(f: dict) -> bool:
    """Whether ablation showed the factor to move the metric beyond the replay noise."""
    return f.get("effect") is not None and abs(f["effect"]) > f.get("noise", 0.0) + 1e-12


def rank(factors: list[dict]) -> list[dict]:
    """Evidence first (ablation effects beyond the noise, largest first), then prior, then weight, then key."""

    def key(f: dict) -> tuple:
        if significant(f):
            return (0, -abs(f["effect"]), 0, 0.0, f["key"])
        return (1, 0.0, f["prior"], -f.get("weight", 0.0), f["key"])

    return sorted(factors, key=key)


def summary(ex: dict) -> str:
    """The explanation in one line: the metric change, then its first cause said plainly."""
    m, delta = ex["metric"], ex["delta"]
    head = f"{m} {_signed(delta)} ({ex['value_a']:.4g} -> {ex['value_b']:.4g})"
    factors = ex["factors"]
    if not factors:  # this wording is matched by a bundle import that renames runs (ledger/bundle.py)
        return f"{head}: nothing recorded differs between runs {ex['a']} and {ex['b']}"
    if ex["only_seed"]:
        return f"{head}: nothing changed but the seed ({'; '.join(f['title'] for f in factors)})"
    top = factors[0]
    if delta == 0 and not significant(top):  # no change has no cause: say what differs, not why
        m_same = f"{m} unchanged ({ex['value_a']:.4g} in both)"
        more = f" and {len(factors) - 1} more" if len(factors) > 1 else ""
        return f"{m_same}, though {top['sentence']}{more}"
    if significant(top) and not math.isnan(delta) and delta and abs(top["effect"]) >= abs(delta) / 2:
        text = f"{head}: most of it follows the {top['kind']}: {top['sentence']}"
    else:
        text = f"{head}: first cause: {top['sentence']}"
    if significant(top):
        text += f" ({_signed(top['effect'])} by ablation)"
    for f in factors[1:3]:
        if significant(f):
            text += f"; {f['title']} alone moved it {_signed(f['effect'])} (ablation)"
    return text


def lines(ex: dict, top: int | None = None) -> list[str]:
    """The ranked factors as lines: ``1. [data] sentence (effect)``."""
    out = []
    for i, f in enumerate(ex["factors"][:top] if top else ex["factors"], 1):
        note = ""
        if f.get("effect") is not None:
            note = f"  [ablation: {_signed(f['effect'])}, noise ±{f.get('noise', 0.0):.2g}]"
        elif not f.get("isolable"):
            note = f"  [not isolable: {f.get('not_isolable')}]"
        out.append(f"{i}. [{f['kind']}] {f['sentence']}{note}")
    return out


# the fewest runs whose metric values differ for a param ranking to mean anything (a forest over fewer fits noise);
# "different": apart by more than a float's rounding (metric_levels)
IMPORTANCE_MIN_RUNS = 4
_LEVEL_RTOL = 1e-6


def metric_levels(values: list[float]) -> list[float]:
    """The different values among ``values``, values within a relative 1e-6 of each other counted once (two
    accuracies of 0.9561 and 0.95610000001 are one value: float rounding, not an effect)."""
    out: list[float] = []
    for v in sorted(values):
        if not out or abs(v - out[-1]) > _LEVEL_RTOL * max(abs(v), abs(out[-1]), 1e-12):
            out.append(v)
    return out


def replicate_noise(runs: list[dict], metric: str) -> float | None:
    """The metric's noise as the runs themselves show it: the widest spread of ``metric`` among runs with the
    same params (repeats, other seeds unrecorded); None when no two runs share their params."""
    groups: dict[str, list[float]] = {}
    for r in runs:
        key = json.dumps(r["params"], sort_keys=True, default=str)
        groups.setdefault(key, []).append(r["metrics"][metric]["last"])
    spreads = [max(v) - min(v) for v in groups.values() if len(v) > 1]
    return max(spreads) if spreads else None


def importance(runs: list[dict], metric: str, trees: int = 200) -> dict[str, Any]:
    """What matters across many runs: each param that varies among ``runs`` (run dicts with ``params`` and
    ``metrics``) ranked by its random-forest importance for ``metric``, with its Spearman rank correlation
    (numeric params; categories enter the forest as codes). scikit-learn and SciPy are imported here, when
    asked, not with nbexp.

    Returns:
        ``{"metric", "runs" (how many had the metric), "params": [{"param", "importance", "spearman",
        "p_value", "runs", "values"}], "note"}``, most important first. No params, and a note that says why,
        when fewer than :data:`IMPORTANCE_MIN_RUNS` runs have different values of the metric (four runs at
        0.9561 rank nothing), or when the metric's spread is within the noise that runs with the same params
        show (:func:`replicate_noise`: at most twice it).

    Raises:
        InvalidArgument: scikit-learn is not installed.
    """
    try:
        import numpy as np
        from scipy.stats import spearmanr
        from sklearn.ensemble import RandomForestRegressor
    except ImportError as exc:
        raise InvalidArgument(f"param importance needs scikit-learn (pip install scikit-learn): {exc}") from None
    scored = [
        r for r in runs if metric in r["metrics"] and not math.isnan(r["metrics"][metric]["last"] or float("nan"))
    ]
    out: dict[str, Any] = {"metric": metric, "runs": len(scored), "params": [], "note": None}
    y = np.array([r["metrics"][metric]["last"] for r in scored], dtype=float)
    distinct = len(metric_levels(list(y)))
    if distinct < IMPORTANCE_MIN_RUNS:
        got = f"{count(len(scored), 'run')} {'has' if len(scored) == 1 else 'have'} {metric}" + (
            f", with {count(distinct, 'different value')}" if distinct < len(scored) else ""
        )
        out["note"] = f"{got}: importance needs {IMPORTANCE_MIN_RUNS} or more runs with different values of {metric}"
        return out
    noise = replicate_noise(scored, metric)
    spread = float(y.max() - y.min())
    if noise is not None and spread <= 2 * noise:
        out["note"] = (
            f"{metric} spreads {spread:.3g} over {len(scored)} runs, within the spread of runs with the same params "
            f"(±{noise:.3g}): no param explains it"
        )
        return out
    columns: dict[str, list[float]] = {}
    for key in sorted({k for r in scored for k in r["params"]}):
        values = [r["params"].get(key) for r in scored]
        present = [v for v in values if v is not None]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) < 2:
            continue  # a param that never changes explains nothing
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            fill = float(np.median(present)) if present else 0.0
            columns[key] = [float(v) if v is not None else fill for v in values]
        else:
            codes = {c: i for i, c in enumerate(sorted({json.dumps(v, sort_keys=True, default=str) for v in values}))}
            columns[key] = [float(codes[json.dumps(v, sort_keys=True, default=str)]) for v in values]
    if not columns:
        out["note"] = "no param varies among these runs"
        return out
    keys = list(columns)
    X = np.array([columns[k] for k in keys]).T
    forest = RandomForestRegressor(n_estimators=trees, random_state=0).fit(X, y)
    rows = []
    for k, imp in zip(keys, forest.feature_importances_):
        rho, p = spearmanr(columns[k], y)
        rows.append(
            {
                "param": k,
                "importance": float(imp),
                "spearman": None if math.isnan(rho) else float(rho),
                "p_value": None if math.isnan(p) else float(p),
                "runs": len(scored),
                "values": len(set(columns[k])),
            }
        )
    out["params"] = sorted(rows, key=lambda r: (-r["importance"], r["param"]))
    return out


def importance_lines(imp: dict, top: int = 8) -> list[str]:
    """Param importance as lines: ``lr  importance 0.62  spearman -0.81``."""
    if not imp["params"]:
        return [f"what matters for {imp['metric']}: {imp['note']}"]
    out = [f"what matters for {imp['metric']} over {imp['runs']} runs (random forest, Spearman):"]
    width = max(len(r["param"]) for r in imp["params"][:top])
    for r in imp["params"][:top]:
        rho = "n/a" if r["spearman"] is None else f"{r['spearman']:+.2f}"
        out.append(f"  {r['param']:<{width}}  importance {r['importance']:.2f}  spearman {rho}")
    return out
