"""Which metric stands for a set of runs: the one rule behind the sidebar's metric column,
``nbexp ls``'s metric columns, the review's figures and the compare figures.

Runs carry many metrics once nbexp finds them without calls (Keras curves, a search's score,
printed lines), so "the metric most runs have" alone picks ``loss`` over ``test_accuracy``. The
order, first key first:

1. held by more of the runs;
2. an evaluation metric (a held-out split's word as its prefix or suffix: ``test_``, ``val_``, ``dev_``,
   ``holdout_``, ``oof_``, ``_test``...) before a general one (``accuracy``, ``roc_auc``), before a
   training one (``train_`` / ``_train``, and a bare ``loss``, which is what training loops print);
3. found in code, objects or ``nbexp.log`` before read from printed output (``source`` stdout);
4. alphabetical.

A count that libraries keep beside their scores (XGBoost's ``best_iteration``, a search's ``n_iter``, ``epochs``), and
the spread of a score over folds or repeats (``scores_std``, ``std_test_score``), are no score: they come last, and no
view ranks runs by them (:func:`is_score`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..capture.metrics import SPLIT_WORDS

# a held-out split's word (the split words of nbexp/capture/metrics.py, the one list) before or after the name
_HELD_OUT = sorted(SPLIT_WORDS - {"train", "training"})
EVAL_PREFIXES = tuple(f"{w}_" for w in _HELD_OUT)
EVAL_SUFFIXES = tuple(f"_{w}" for w in _HELD_OUT)


# the whole name, or its last dotted part: ``val_loss_epoch`` (Lightning's per-epoch mean) is a score
COUNT = re.compile(r"(^|\.)(best_iteration|best_ntree_limit|n_iter|num_iterations|iterations?|epochs?)$", re.I)


# a word of the name (``_`` or ``.`` apart): ``scores_std`` (cross_val_score's spread), ``std_test_score``, ``acc.std``;
# not ``variance`` (``explained_variance`` is a score)
SPREAD = re.compile(r"(^|[._])(std|stdev|stddev)([._]|$)", re.I)


def is_score(key: str) -> bool:
    """Whether a metric is a score, one that is better higher or lower: not a count kept beside the scores
    (``best_iteration``, ``n_iter``, ``epochs``) nor the spread of a score over folds (``scores_std``): a run whose
    folds agree less is no better run."""
    return not COUNT.search(key) and not SPREAD.search(key)


def kind_of(key: str) -> int:
    """0 for an evaluation metric, 1 for a general one, 2 for a training one, 3 for a count or spread (see the module
    docstring)."""
    k = key.lower()
    if not is_score(k):
        return 3
    if k.startswith(EVAL_PREFIXES) or k.endswith(EVAL_SUFFIXES) or ".validation" in k or k.startswith("validation"):
        return 0
    if k.startswith("train") or k.endswith("_train") or k == "loss":
        return 2
    return 1


def rank_counts(counts: Mapping[str, tuple[int, bool]]) -> list[str]:
    """Metric keys best first, from ``key -> (runs holding it, read only from printed output)``."""
    return sorted(counts, key=lambda k: (-counts[k][0], kind_of(k), counts[k][1], k))


def rank_metrics(runs: Iterable[dict]) -> list[str]:
    """Every metric key of ``runs`` (each a run dict with ``metrics``: key -> summary), best first."""
    counts: dict[str, tuple[int, bool]] = {}
    for r in runs:
        for k, s in r["metrics"].items():
            n, printed = counts.get(k, (0, True))
            counts[k] = (n + 1, printed and (s or {}).get("source") == "stdout")
    return rank_counts(counts)


def main_metric(runs: Iterable[dict]) -> str | None:
    """The metric that stands for ``runs``; None when they have none."""
    ranked = rank_metrics(runs)
    return ranked[0] if ranked else None


def curve_metric(runs: Iterable[dict]) -> str | None:
    """The best-ranked metric that some run recorded as a curve (more than one step), else the main metric:
    what a curves chart draws."""
    runs = list(runs)
    ranked = rank_metrics(runs)
    stepped = [k for k in ranked if any((r["metrics"].get(k) or {}).get("steps", 0) > 1 for r in runs)]
    return (stepped or ranked)[0] if ranked else None


# nbexp explain --ablate's replays are runs tagged so: evidence for an explanation, never the best run, the latest
# run, a baseline or a point of a sprint's param importance
ABLATION_TAG = "ablation"


def is_ablation(run: Mapping[str, Any]) -> bool:
    """Whether ``run`` (a run dict with ``tags``) is an ablation replay of ``nbexp explain --ablate``."""
    return ABLATION_TAG in (run.get("tags") or ())
