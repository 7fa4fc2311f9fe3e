"""Metrics from printed results (issue 16, part 2) and metric-like names (part 3).

The parser on lines as real libraries and tutorials print them, then the real thing: cells in
an IPython shell and in a Jupyter kernel whose functions print their results.
"""

from __future__ import annotations

import io
import math
import sys

import pytest

from nbexp.capture.metrics import metric_name_pattern
from nbexp.capture.stdout import CellOutput, printed_metrics

RE = metric_name_pattern("", prefixes=False)


def parsed(text: str) -> list[tuple[str, float]]:
    return printed_metrics(text, RE)


@pytest.mark.parametrize(
    "line, expected",
    [
        # the PyTorch quickstart's test loop
        ("Accuracy: 45.3%, Avg loss: 1.602 ", [("accuracy", 0.453), ("avg_loss", 1.602)]),
        ("test_auc=0.93", [("test_auc", 0.93)]),
        ("epoch 3 loss 0.41", [("loss", 0.41)]),
        ("epoch 1: loss 0.693147", [("loss", 0.693147)]),
        ("ROC AUC: 0.93", [("roc_auc", 0.93)]),
        ("Best cross-validation score: 0.947", [("best_cross_validation_score", 0.947)]),
        ("Test accuracy: 0.957", [("test_accuracy", 0.957)]),
        (
            "4/4 - 0s - 5ms/step - loss: 1.0986 - sparse_categorical_accuracy: 0.3333 - val_loss: 1.0912",
            [("loss", 1.0986), ("sparse_categorical_accuracy", 0.3333), ("val_loss", 1.0912)],
        ),
        # Keras's live progress bar in a notebook: redrawn with backspaces and \r, coloured
        (
            "1/4 \x1b[32m━━━━━\x1b[0m 0s 5ms/step - loss: 1.3\x08\x08\x08\x08\r"
            "4/4 \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m \x1b[1m0s\x1b[0m 5ms/step - loss: 1.0986",
            [("loss", 1.0986)],
        ),
        ("Test set: Average loss: 0.0012, Accuracy: 9845/10000 (98%)", [("average_loss", 0.0012)]),
        ("Epoch [1/10], Step [100/600], Loss: 0.2197", [("loss", 0.2197)]),
        ("loss: 2.303268  [   64/60000]", [("loss", 2.303268)]),
        ("{'loss': 0.31, 'accuracy': 0.9}", [("loss", 0.31), ("accuracy", 0.9)]),
        ("Epoch 3 training loss: 0.4", [("training_loss", 0.4)]),
        ("Accuracy: 98%", [("accuracy", 0.98)]),
        ("Accuracy: 98", [("accuracy", 98.0)]),  # no % sign: taken as printed
        ("[0]\tvalidation_0-logloss:0.61234", [("validation_0_logloss", 0.61234)]),
        (
            "top5_acc=0.91 rmsle_test=0.2 mape=3.5 bleu=27.1",
            [("top5_acc", 0.91), ("rmsle_test", 0.2), ("mape", 3.5), ("bleu", 27.1)],
        ),
    ],
)
def test_printed_lines_give_their_metrics(line, expected):
    assert parsed(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "/tmp/x.py:3: UserWarning: loss: 0.5",
        "WARNING:root:val_loss=0.5",
        'Traceback (most recent call last):\n  File "x.py", line 2, in <module>\n    loss = 0.5',
        "ValueError: loss: 0.5",
        "Wall time: 2.3 ms",
        "CPU times: user 2.1 ms, sys: 0 ns, total: 2.1 ms",
        "(1797, 64)",  # print(X.shape)
        "[1.0, 0.5]",
        "loss: [1.0, 0.5]",
        "accuracy: (0.93)",
        "    accuracy                           0.93       899",  # classification_report's table
        "error 404",  # a count after a space is not a measurement
        "after training for a while the loss: 0.5",  # prose
        "train_size: 0.8",  # a setting, not a metric
        "iou_threshold=0.5",
        "learning_rate: 0.001",
        "[10]\tvalid_0's binary_logloss: 0.3",  # would merge data sets under one name
        "a_name_that_goes_on_and_on_and_on_to_loss: 0.3",  # longer than 40 characters
        " ".join(f"loss_{i}: 0.{i}" for i in range(25)),  # a dump, not a log line
    ],
)
def test_no_metric_from_warnings_tracebacks_shapes_or_prose(line):
    assert parsed(line) == []


def test_nan_is_a_value_and_repeated_names_come_in_order():
    pairs = parsed("epoch 1: loss 0.69\nepoch 2: loss 0.52\nepoch 3: loss nan\n")
    assert [k for k, _ in pairs] == ["loss"] * 3
    assert pairs[0][1] == 0.69 and pairs[1][1] == 0.52 and math.isnan(pairs[2][1])


def test_metric_like_names_include_compound_forms_and_not_settings():
    namespace = metric_name_pattern("")
    for name in (
        "rmsle_test",
        "rae_test",
        "mape",
        "smape",
        "logloss",
        "top5_acc",
        "bleu",
        "rouge_l",
        "iou",
        "miou",
        "dice",
        "ndcg_10",
        "map",
        "val_map",
        "map50",
        "mrr",
        "perplexity",
        "wer",
        "cer",
        "psnr",
        "ssim",
        "auroc",
        "auprc",
        "kappa",
        "mcc",
    ):
        assert namespace.match(name), name
    for name in ("heat_map", "feature_map", "loss_fn", "iou_threshold", "loss_weight", "grad_acc_steps", "epoch"):
        assert not namespace.match(name), name
    assert metric_name_pattern("wape").match("wape_val")  # the way to add words stays


def test_cell_output_tees_without_replacing_the_stream_and_restores_it():
    stream = io.StringIO()
    saved = sys.stdout
    sys.stdout = stream
    try:
        out = CellOutput(limit=100)
        out.start()
        assert sys.stdout is stream  # the object is the same: only its write is teed
        print("loss: 0.5")
        out.end()
        print("after the cell")
        assert out.text() == "loss: 0.5\n"
        out.stop()
        assert "write" not in vars(stream)
    finally:
        sys.stdout = saved
    assert stream.getvalue() == "loss: 0.5\nafter the cell\n"


def test_long_output_keeps_its_tail_and_every_printed_line_is_read():
    from nbexp.capture.stdout import PrintedMetrics

    stream = io.StringIO()
    saved = sys.stdout
    sys.stdout = stream
    try:
        printed = PrintedMetrics(RE, limit=1000)
        printed.start()
        for i in range(500):
            print(f"step {i} loss {i / 1000:.3f}")
        pairs = printed.end()
        tail = printed.output.text()
        printed.stop()
    finally:
        sys.stdout = saved
    assert len(tail) <= 1000 and tail.endswith("step 499 loss 0.499\n") and tail.startswith("step ")
    assert [v for _, v in pairs] == [i / 1000 for i in range(500)]


# -- a real shell -------------------------------------------------------------------------


def _metrics(reader):
    r = reader()
    run = r.run("latest")
    return run["metrics"], {k: r.metric_series(run["id"], k) for k in run["metrics"]}


def test_a_function_that_prints_its_results_gives_the_run_its_metrics(cell, reader):
    cell("%nbexp track")
    cell(
        "def test_loop():\n"
        "    correct, test_loss = 0.453, 1.602\n"
        '    print(f"Test Error: \\n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \\n")\n'
    )
    res = cell("test_loop()")
    assert res.success
    metrics, _ = _metrics(reader)
    assert metrics["accuracy"]["last"] == pytest.approx(0.453) and metrics["accuracy"]["source"] == "stdout"
    assert metrics["avg_loss"]["last"] == pytest.approx(1.602) and metrics["avg_loss"]["source"] == "stdout"


def test_repeated_prints_make_a_curve_over_the_run(cell, reader):
    cell("%nbexp track")
    cell("for epoch in range(3):\n    print(f'epoch {epoch + 1}: loss {1 / (epoch + 1):>7f}')")
    cell("print('epoch 4: loss 0.2')")
    metrics, series = _metrics(reader)
    assert metrics["loss"]["steps"] == 4 and metrics["loss"]["source"] == "stdout"
    assert [(p["step"], round(p["value"], 6)) for p in series["loss"]] == [
        (0, 1.0),
        (1, 0.5),
        (2, 0.333333),
        (3, 0.2),
    ]
    assert "epoch" not in metrics


def test_warnings_and_tracebacks_give_no_metric_but_values_printed_before_an_error_count(cell, reader):
    cell("%nbexp track")
    res = cell(
        "import warnings, logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, force=True)\n"
        "warnings.warn('val_loss: 0.5')\n"
        "logging.warning('test_loss: 0.7')\n"
        "print('accuracy: 0.9')\n"
        "loss = 0.25\n"
        "raise ValueError('f1: 0.3')\n"
    )
    assert not res.success
    metrics, _ = _metrics(reader)
    assert set(metrics) == {"accuracy"}


TEED = "import sys\nteed = 'CellOutput' in sys.stdout.write.__qualname__"


def test_no_stdout_metrics_switch_turns_it_off(cell, reader, capsys):
    cell("%nbexp track --no-stdout-metrics")
    assert "printed metrics off" in capsys.readouterr().out
    cell("print('Accuracy: 45.3%')")
    cell(TEED)
    assert cell.sh.user_ns["teed"] is False  # no tee installed at all
    metrics, _ = _metrics(reader)
    assert metrics == {}


def test_a_metric_found_another_way_wins(cell, reader):
    cell("%nbexp track")
    cell("test_accuracy = 0.5 + 0.25\nprint(f'test accuracy: {test_accuracy * 100}%')\nprint('f1=0.4')")
    cell("import nbexp\nnbexp.log(auc=0.8)\nprint('auc: 0.1')")
    metrics, series = _metrics(reader)
    assert metrics["test_accuracy"]["source"] == "namespace" and metrics["test_accuracy"]["steps"] == 1
    assert metrics["auc"]["source"] == "log" and [p["value"] for p in series["auc"]] == [0.8]
    assert metrics["f1"]["source"] == "stdout"


def test_text_printed_inside_capture_counts_and_stop_restores_stdout(cell, reader):
    cell("%nbexp track")
    cell("%%capture out\nprint('val_loss: 0.31')")
    cell("print(out.stdout.strip())")  # a later cell shows it: its own point
    metrics, series = _metrics(reader)
    assert [p["value"] for p in series["val_loss"]] == [0.31, 0.31]
    assert metrics["val_loss"]["source"] == "stdout"
    cell(TEED)
    assert cell.sh.user_ns["teed"] is True
    cell("%nbexp stop")
    cell(TEED)
    assert cell.sh.user_ns["teed"] is False


# -- a real kernel --------------------------------------------------------------------------


@pytest.mark.kernel
def test_printed_metrics_in_a_kernel_and_the_output_reaches_the_client_unchanged(
    nbexp_home, ledger_path, tmp_path, monkeypatch
):
    from jupyter_client.manager import KernelManager

    from nbexp.ledger.queries import Reader

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        streams = []

        def run(code):
            reply = kc.execute_interactive(
                code,
                timeout=120,
                output_hook=lambda msg: msg["msg_type"] == "stream" and streams.append(msg["content"]),
            )
            assert reply["content"]["status"] == "ok", reply["content"]

        run("%load_ext nbexp\n%nbexp track")
        streams.clear()
        run(
            "import sys\n"
            "kind = type(sys.stdout).__name__\n"
            "for epoch in range(3):\n"
            "    print(f'epoch {epoch + 1}: loss {0.5 / (epoch + 1):.4f}')\n"
            "print('Accuracy: 45.3%, Avg loss: 1.602')"
        )
        text = "".join(s["text"] for s in streams if s["name"] == "stdout")
        assert text == (
            "epoch 1: loss 0.5000\nepoch 2: loss 0.2500\nepoch 3: loss 0.1667\nAccuracy: 45.3%, Avg loss: 1.602\n"
        )
        streams.clear()
        run("print(kind, type(sys.stdout).__name__)")
        assert "".join(s["text"] for s in streams) == "OutStream OutStream\n"
        run("%nbexp stop")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    with Reader(ledger_path) as r:
        run_id = r.resolve("latest")
        metrics = r.run(run_id)["metrics"]
        assert {k: m["source"] for k, m in metrics.items()} == {
            "loss": "stdout",
            "accuracy": "stdout",
            "avg_loss": "stdout",
        }
        assert [round(p["value"], 4) for p in r.metric_series(run_id, "loss")] == [0.5, 0.25, 0.1667]
        assert metrics["accuracy"]["last"] == pytest.approx(0.453)


def test_listings_say_where_a_metric_came_from(cell, reader, ledger_path):
    from click.testing import CliRunner

    from nbexp.cli import main

    cell("%nbexp track")
    cell("import nbexp\nnbexp.log(loss=0.5)\nval_acc = 0.25 * 3\nprint('Accuracy: 45.3%')")
    reader()  # flushed
    runner = CliRunner()
    show = runner.invoke(main, ["--ledger", str(ledger_path), "show", "latest"])
    assert show.exit_code == 0, show.output
    rows = {line.split()[0]: line.split() for line in show.output.split("\nmetrics\n")[1].splitlines()[1:4]}
    assert show.output.split("\nmetrics\n")[1].splitlines()[0].split()[-1] == "source"
    assert rows["accuracy"][-1] == "printed" and rows["loss"][-1] == "nbexp.log" and rows["val_acc"][-1] == "variable"
    ls = runner.invoke(main, ["--ledger", str(ledger_path), "ls"])
    assert ls.exit_code == 0, ls.output
    assert "0.453*" in ls.output and "0.75*" not in ls.output and "0.5*" not in ls.output
    assert ls.output.rstrip().endswith("* read from printed output")


# -- metrics that share a metric word keep apart (a new user's trial: one value was silently lost) --------


@pytest.mark.parametrize(
    "line, expected",
    [
        ("cv accuracy 0.917", [("cv_accuracy", 0.917)]),
        ("test accuracy 0.912", [("test_accuracy", 0.912)]),
        ("Test accuracy 0.9, test loss 0.3", [("test_accuracy", 0.9), ("test_loss", 0.3)]),
        ("OOF AUC 0.81", [("oof_auc", 0.81)]),
        ("ROC AUC 0.93", [("roc_auc", 0.93)]),
        ("top-5 acc 0.9", [("top_5_acc", 0.9)]),
        ("mean accuracy 0.9 std 0.01", [("mean_accuracy", 0.9)]),
        ("Logistic regression accuracy 0.85", [("logistic_regression_accuracy", 0.85)]),
        ("The test accuracy: 0.9", [("test_accuracy", 0.9)]),
        ("The loss was: 0.3", [("loss", 0.3)]),
        ("Training finished with loss 0.3", [("loss", 0.3)]),
        ("Epoch 3 loss 0.12", [("loss", 0.12)]),
        (
            "epoch 2 train loss 0.4 acc 0.8 | val loss 0.5 acc 0.7",
            [("train_loss", 0.4), ("train_acc", 0.8), ("val_loss", 0.5), ("val_acc", 0.7)],
        ),
    ],
)
def test_printed_names_keep_their_qualifiers(line, expected):
    assert parsed(line) == expected


@pytest.mark.parametrize(
    "line",
    ["The model reached an accuracy of 0.93", "Reached an accuracy of 0.93", "The accuracy is 0.93", "loss is 0.3"],
)
def test_a_sentence_names_no_metric(line):
    assert parsed(line) == []


def _show(ledger_path):
    from click.testing import CliRunner

    from nbexp.cli import main

    show = CliRunner().invoke(main, ["--ledger", str(ledger_path), "show", "latest"])
    assert show.exit_code == 0, show.output
    table = show.output.split("\nmetrics\n")[1].split("\n\n")[0]
    return {line.split()[0]: line.split() for line in table.splitlines()[1:]}


def test_printed_metrics_that_share_a_metric_word_are_all_kept(cell, reader, ledger_path):
    """A tutorial prints its cross-validated and its test accuracy, its train and val loss: four metrics, not
    two that overwrite each other."""
    import nbexp

    cell("%nbexp track")
    cell(
        "import numpy as np\n"
        "def evaluate(cv, acc, train_loss, val_loss):\n"
        '    print(f"cv accuracy {cv.mean():.3f}")\n'
        '    print(f"test accuracy {acc:.3f}")\n'
        '    print("train loss:", train_loss)\n'
        '    print("val loss:", val_loss)\n'
    )
    cell("evaluate(np.array([0.91, 0.92, 0.93]), np.float64(0.912), 0.25, 0.5)")
    reader()  # flushed
    metrics = nbexp.get_run("latest")["metrics"]
    assert {k: (m["last"], m["steps"]) for k, m in metrics.items()} == {
        "cv_accuracy": (pytest.approx(0.92), 1),
        "test_accuracy": (pytest.approx(0.912), 1),
        "train_loss": (0.25, 1),
        "val_loss": (0.5, 1),
    }
    rows = _show(ledger_path)
    assert rows["cv_accuracy"][1] == "0.92" and rows["test_accuracy"][1] == "0.912"


@pytest.mark.kernel
def test_a_kernel_keeps_metrics_that_share_a_name_apart(nbexp_home, ledger_path, tmp_path, monkeypatch):
    """The new user's notebook in a real kernel: cv and test accuracy printed, train and test scores kept in two
    dicts; ``nbexp show`` lists every one of them with its value."""
    from jupyter_client.manager import KernelManager

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def run(code):
            reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok", reply["content"]

        run("%load_ext nbexp\n%nbexp track")
        run("folds = [0.91, 0.92, 0.93]\nprint(f'cv accuracy {sum(folds) / len(folds):.3f}')")
        run("hits = [1, 1, 0, 1, 1]\nprint(f'test accuracy {sum(hits) / len(hits):.3f}')")
        run(
            "tp, fp, fn = 40, 10, 5\n"
            "train_scores = {'f1': 2 * tp / (2 * tp + fp + fn), 'acc': (tp + 45) / 100}\n"
            "tp, fp, fn = 30, 15, 10\n"
            "test_scores = {'f1': 2 * tp / (2 * tp + fp + fn), 'acc': (tp + 40) / 100}"
        )
        run("%nbexp stop")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    rows = _show(ledger_path)
    values = {k: float(row[1]) for k, row in rows.items()}
    assert values == {
        "cv_accuracy": 0.92,
        "test_accuracy": 0.8,
        "train_f1": pytest.approx(80 / 95, abs=1e-3),
        "train_acc": 0.85,
        "test_f1": pytest.approx(60 / 85, abs=1e-3),
        "test_acc": 0.7,
    }
    assert rows["cv_accuracy"][-1] == "printed" and rows["test_f1"][-1] == "variable"


# -- a reviewer's regressions of the names above: merged metrics, lost values, asymmetric names ---------------


@pytest.mark.parametrize(
    "text, expected",
    [
        # words that end a label qualify it: two metrics, not one curve of both
        ("Accuracy before: 0.91\nAccuracy after: 0.93", [("accuracy_before", 0.91), ("accuracy_after", 0.93)]),
        ("Loss before: 0.5, Loss after: 0.3", [("loss_before", 0.5), ("loss_after", 0.3)]),
        ("MSE before: 1.2\nMSE after: 0.8", [("mse_before", 1.2), ("mse_after", 0.8)]),
        ("Accuracy now: 0.9", [("accuracy_now", 0.9)]),
        ("AUC on: 0.8", [("auc_on", 0.8)]),
        # only auxiliaries that end it are dropped
        ("Accuracy is: 0.9\nThe loss was: 0.3", [("accuracy", 0.9), ("loss", 0.3)]),
    ],
)
def test_words_that_end_a_label_qualify_it(text, expected):
    assert parsed(text) == expected


@pytest.mark.parametrize(
    "line, expected",
    [
        ("GradientBoostingClassifier validation accuracy 0.912", [("validation_accuracy", 0.912)]),
        ("HistGradientBoostingClassifier test accuracy 0.9", [("test_accuracy", 0.9)]),
        ("Stratified cross-validation balanced accuracy 0.87", [("cross_validation_balanced_accuracy", 0.87)]),
        ("Stratified cross-validation balanced accuracy: 0.87", [("cross_validation_balanced_accuracy", 0.87)]),
        ("LogisticRegression test accuracy 0.85", [("logisticregression_test_accuracy", 0.85)]),
    ],
)
def test_a_long_label_loses_its_leading_words_not_its_value(line, expected):
    """A loop printing each model's class name and accuracy records every model: a name over 40 characters keeps
    its last words."""
    assert parsed(line) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Model A accuracy: 0.90\nModel B accuracy: 0.85", [("model_a_accuracy", 0.9), ("model_b_accuracy", 0.85)]),
        ("model a accuracy: 0.90\nmodel b accuracy: 0.85", [("model_a_accuracy", 0.9), ("model_b_accuracy", 0.85)]),
        ("Phase I loss: 0.3\nPhase II loss: 0.2", [("phase_i_loss", 0.3), ("phase_ii_loss", 0.2)]),
        ("So far best loss: 0.3", [("best_loss", 0.3)]),
        ("I got loss: 0.3", [("loss", 0.3)]),
        ("A model with loss: 0.3", [("loss", 0.3)]),
    ],
)
def test_one_letter_is_a_word_of_a_sentence_only_in_one(text, expected):
    assert parsed(text) == expected


def test_a_split_word_that_starts_a_line_names_its_other_metrics():
    """The PyTorch transfer-learning tutorial prints each phase's loss and accuracy on its own line: train and
    val accuracy are two curves, not one that alternates between them."""
    text = "".join(
        f"{phase} Loss: {loss:.4f} Acc: {acc:.4f}\n" for phase, loss, acc in [("train", 0.6, 0.7), ("val", 0.5, 0.8)]
    )
    assert parsed(text) == [("train_loss", 0.6), ("train_acc", 0.7), ("val_loss", 0.5), ("val_acc", 0.8)]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("Validation: loss 0.3 acc 0.9", [("validation_loss", 0.3), ("validation_acc", 0.9)]),
        ("Train: loss 0.4 acc 0.8", [("train_loss", 0.4), ("train_acc", 0.8)]),
        ("Epoch 2 val - loss: 0.3", [("val_loss", 0.3)]),
        ("Test set: Average loss: 0.0341", [("average_loss", 0.0341)]),
    ],
)
def test_a_split_word_heading_a_line_names_its_metrics(line, expected):
    """A loop that prints ``Train: loss .. acc ..`` then ``Validation: loss .. acc ..`` keeps two curves each."""
    assert parsed(line) == expected


@pytest.mark.parametrize(
    "line, expected",
    [
        ("[1,  2000] loss: 2.187", [("loss", 2.187)]),
        ("Test loss: 0.3\nTest accuracy: 0.9", [("test_loss", 0.3), ("test_accuracy", 0.9)]),
        ("[10]\tvalidation_0-logloss:0.32", [("validation_0_logloss", 0.32)]),
        ("RMSE: 3.45", [("rmse", 3.45)]),
        ("Test set: Average loss: 0.0341, Accuracy: 9842/10000 (98%)", [("average_loss", 0.0341)]),
        ("Epoch 3 loss 0.12", [("loss", 0.12)]),
        (
            "4/4 - 0s - loss: 1.0986 - accuracy: 0.5 - val_loss: 1.0912 - val_accuracy: 0.4",
            [("loss", 1.0986), ("accuracy", 0.5), ("val_loss", 1.0912), ("val_accuracy", 0.4)],
        ),
        ("The model reached an accuracy of 0.93", []),
    ],
)
def test_tutorial_lines_keep_their_names(line, expected):
    assert parsed(line) == expected
