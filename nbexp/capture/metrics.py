"""Metrics: scalar conversion for ``nbexp.log``, metric-looking variable names, and how a metric key is spelled.

Spelling (one home for it): a name nbexp reads from text (a printed label) becomes a lower_snake key
(:func:`normalize_name`: ``Avg loss`` -> ``avg_loss``); a key kept in a dict whose name says more than
"results" is qualified by what the name adds (:func:`container_qualifier`, :func:`qualified`:
``test_scores["f1"]`` -> ``test_f1``), joined with ``_`` like the split prefixes Keras and the
tutorials use (``val_loss``, ``test_accuracy``), so two containers of the same metrics keep both.
"""

from __future__ import annotations

import os
import re
from typing import Any

METRIC_WORDS = (
    # classification
    "accuracy",
    "acc",
    "top1",
    "top5",
    "f1",
    "auc",
    "auroc",
    "auprc",
    "precision",
    "recall",
    "logloss",
    "kappa",
    "mcc",
    "loss",
    "score",
    "error",
    # regression
    "rmse",
    "rmsle",
    "mse",
    "mae",
    "rae",
    "mape",
    "smape",
    "r2",
    # ranking and retrieval
    "ndcg",
    "mrr",
    # language and speech
    "perplexity",
    "bleu",
    "rouge",
    "wer",
    "cer",
    # vision
    "iou",
    "miou",
    "dice",
    "psnr",
    "ssim",
)
# Words too common as ordinary names to count inside a longer one: only the whole name, with a
# split prefix and/or a number (``map``, ``val_map``, ``map50``, ``map_50_95``), never ``heat_map``.
STRICT_WORDS = ("map",)
METRIC_PREFIXES = ("train_", "val_", "valid_", "test_", "eval_")
# Words that name the data a metric was measured on (``val loss``, ``cv accuracy``, ``oof auc``)
SPLIT_WORDS = frozenset(
    ("train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval", "cv", "holdout", "oof")
)
# The split a word names, as a metric's prefix says it (``validation`` and ``valid`` -> ``val``)
_SPLIT_SHORT = {"training": "train", "testing": "test", "valid": "val", "validation": "val"}
# a split word as a word of a lower-case name (``x_train``, ``train_loader``; not ``trainset``): one search a name,
# where splitting each name into its words cost a cell reading 150 names 0.5 ms
_SPLIT_WORD = re.compile(r"(?<![a-z0-9])(" + "|".join(sorted(SPLIT_WORDS, key=len, reverse=True)) + r")(?![a-z0-9])")


def split_of(names: Any) -> str:
    """The one data split ``names`` (what a cell read: ``X_test``, ``y_test``, ``test_loader``) are of, from the
    split words in them (``test``; ``validation`` -> ``val``); ``""`` when none names a split, or they name more than
    one (``X_train`` and ``X_test``). A name with two split words (``train_test_split``) says nothing, and neither
    does a split word alone (``for name, val in rows``, ``cv = KFold(5)``: a loop variable or a splitter, no data)."""
    found = ""
    for name in names:
        low = name.lower()
        if low in SPLIT_WORDS:
            continue
        words = [_SPLIT_SHORT.get(w, w) for w in _SPLIT_WORD.findall(low)]
        if not words or len(set(words)) != 1:
            continue
        if found and words[0] != found:
            return ""
        found = words[0]
    return found


def names_split(key: str) -> bool:
    """Whether a metric key says its split (``val_loss``, ``test_accuracy``, ``accuracy_on_test_set``); remembered per
    key (asked of every name an evaluation cell binds, before and after it runs)."""
    said = _NAMES_SPLIT.get(key)
    if said is None:
        if len(_NAMES_SPLIT) >= 100_000:
            _NAMES_SPLIT.clear()
        said = _NAMES_SPLIT[key] = _SPLIT_WORD.search(normalize_name(key)) is not None
    return said


_NAMES_SPLIT: dict[str, bool] = {}


# A name ending in one of these words is a setting or a count, not a measurement:
# ``iou_threshold``, ``loss_weight``, ``test_size``, ``acc_steps``, ``loss_fn``.
NOT_METRIC_ENDINGS = (
    "threshold",
    "thresh",
    "thr",
    "weight",
    "weights",
    "size",
    "steps",
    "count",
    "fn",
    "func",
    "type",
    "name",
    "names",
    "idx",
    "index",
    "id",
    "dir",
    "path",
    "file",
)


# Words that say a name holds metrics, or a record of some, not which ones: a dict named ``results``,
# ``scores``, ``cr`` (a classification report) or ``row`` adds nothing to its keys, ``test_scores`` adds
# ``test``, ``rf_metrics`` adds ``rf``. A list, not a guess at which names are models or splits: the name
# alone decides, so a notebook run again gives the same keys.
CONTAINER_WORDS = frozenset(
    (
        "cr",
        "rep",
        "row",
        "rows",
        "rec",
        "record",
        "records",
        "entry",
        "entries",
        "item",
        "tmp",
        "temp",
        "data",
        "info",
        "values",
        "results",
        "result",
        "res",
        "scores",
        "score",
        "metrics",
        "metric",
        "stats",
        "summary",
        "perf",
        "performance",
        "report",
        "evals",
        "out",
        "output",
        "outputs",
        "logs",
        "log",
        "dict",
        "all",
        "my",
    )
)
_NOT_NAME = re.compile(r"[^0-9a-z]+")


def normalize_name(name: str) -> str:
    """A written name as a lower_snake key: ``Avg loss`` -> ``avg_loss``, ``val/loss`` -> ``val_loss``,
    ``Best cross-validation score`` -> ``best_cross_validation_score``, ``Top-1 acc`` -> ``top_1_acc``."""
    return _NOT_NAME.sub("_", name.lower()).strip("_")


def container_qualifier(name: str) -> str:
    """What a container's name says about the metrics in it: its words less :data:`CONTAINER_WORDS` and
    single letters, lower_snake (``test_scores`` -> ``test``, ``scores_val`` -> ``val``, ``rf_results`` ->
    ``rf``, ``results`` / ``d`` -> ``""``). It depends on the name alone, so a notebook run again gives
    the same keys."""
    words = [w for w in normalize_name(name).split("_") if len(w) > 1 and w not in CONTAINER_WORDS]
    return "_".join(words)


def qualified(qualifier: str, key: str) -> str:
    """``key`` under ``qualifier`` (``test`` + ``f1`` -> ``test_f1``); ``key`` itself when there is no
    qualifier or the key says it already (``val`` + ``val_loss``, ``test`` + ``test``)."""
    low = key.lower()
    if not qualifier or low == qualifier or low.startswith(qualifier + "_"):
        return key
    return f"{qualifier}_{key}"


class NamePattern:
    """A compiled name pattern that remembers its answer per name: a cell's capture asks it of every name the
    cell binds, twice (its metrics, its data), and the pattern's look-ahead costs 1-5 us a name."""

    __slots__ = ("regex", "_seen")
    _MAX_SEEN = 4096

    def __init__(self, regex: re.Pattern) -> None:
        self.regex = regex
        self._seen: dict[str, bool] = {}

    def match(self, name: str) -> bool:
        """Whether the whole of ``name`` matches."""
        hit = self._seen.get(name)
        if hit is None:
            if len(self._seen) >= self._MAX_SEEN:
                self._seen.clear()
            hit = self._seen[name] = self.regex.match(name) is not None
        return hit


def metric_name_pattern(extra: str | None = None, prefixes: bool = True) -> NamePattern:
    """A pattern matching metric-like variable names (``.match(name)``).

    A name matches when one of its ``_``-separated words is a metric word
    (``test_auc``, ``roc_auc``, ``val_loss``, ``top5_acc``, ``rmsle_test``) or, with
    ``prefixes``, it starts with a split prefix (``train_``, ``val_``, ``test_``).
    ``map`` counts only as the whole name, after a split prefix or before a number
    (``val_map``, ``map50``), so ``heat_map`` is not a metric. A name whose last word
    says it is a setting or a count (``iou_threshold``, ``loss_weight``, ``test_size``,
    ``loss_fn``) never matches. ``extra`` (or ``$NBEXP_METRIC_NAMES``) adds comma-separated
    words, matched like the built-in ones. Printed results use ``prefixes=False``: a
    printed ``train_size: 0.8`` is a setting, ``train_loss: 0.4`` has its metric word.
    """
    words = list(METRIC_WORDS)
    extra = extra if extra is not None else os.environ.get("NBEXP_METRIC_NAMES", "")
    words += [w.strip().lower() for w in extra.split(",") if w.strip()]
    alt = "|".join(sorted(map(re.escape, set(words)), key=len, reverse=True))
    split = "|".join(p[:-1] for p in METRIC_PREFIXES)
    strict = "|".join(STRICT_WORDS)
    endings = "|".join(NOT_METRIC_ENDINGS)
    forms = [rf"(?:\w+_)?(?:{alt})(?:_\w+)?", rf"(?:(?:{split})_)?(?:{strict})(?:_?\d+)*"]
    if prefixes:
        forms.insert(0, rf"(?:{split})_\w+")
    return NamePattern(re.compile(rf"^(?!\w*_(?:{endings})$)(?:{'|'.join(forms)})$", re.IGNORECASE))


def as_scalar(value: Any) -> float | None:
    """``value`` as a float when it is a real number scalar (Python, NumPy,
    0-d tensor or array); None otherwise. Booleans are not metrics."""
    t = type(value)
    if t is float:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond a float's range is not a measurement
            return None
    mod = t.__module__
    if mod == "numpy" or mod.startswith("torch"):
        if getattr(value, "ndim", None) == 0 or (mod == "numpy" and not hasattr(value, "shape")):
            if "bool" in str(getattr(value, "dtype", "")) or "complex" in str(getattr(value, "dtype", "")):
                return None
            try:
                return float(value.item())
            except (TypeError, ValueError, RuntimeError):
                return None
    return None
