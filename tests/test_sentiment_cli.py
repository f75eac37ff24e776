"""sentiment task end to end through the CLI (train on a small real slice, eval, predict),
every bad-input path as a one-line error, and padding invariance of the trained model."""
import json

import numpy as np
import pytest
from helpers import bundled_reviews, invoke, ok, one_line_error, write_reviews

from recurrent.model import SequenceModel
from recurrent.wide import Wide, ngram_features
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment import baselines as bl
from recurrent_plugins.sentiment.metrics import softmax
from recurrent_plugins.sentiment.text import pad_batch

SMALL = ["--hidden", "8", "--embed-dim", "8", "--epochs", "1", "--threads", "1", "--quiet",
         "--no-plot", "--ensemble", "1"]


@pytest.fixture(scope="module")
def slice_rows():
    """160 fresh and 160 rotten bundled snippets: small, real, balanced."""
    return bundled_reviews(160)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, slice_rows):
    root = tmp_path_factory.mktemp("sentiment")
    data = write_reviews(root / "slice.csv", slice_rows)
    run = root / "run"
    result = invoke("train", "sentiment", "--data", data, "--out", run, "--batch-size", "64",
                    *SMALL)
    ok(result)
    return run, root


def sections(text):
    """The report's blocks of lines, split at blank lines (the first line names the run)."""
    blocks, block = [], []
    for line in text.splitlines()[1:]:
        if line.strip():
            block.append(line)
        elif block:
            blocks, block = blocks + [block], []
    return blocks + [block] if block else blocks


def test_eval_report_is_labelled_for_the_model_and_every_baseline(trained_run):
    run, _ = trained_run
    text = ok(invoke("eval", run))
    data = json.loads(ok(invoke("eval", run, "--json")))
    predictors = {"model": data["metrics"], **data["baselines"]}
    assert list(predictors) == ["model", "majority", "bow_logreg", "nb_logreg"]
    summary, overall, per_class, *matrices, paired = sections(text)
    assert summary == ["32 texts, classes: fresh, rotten"]

    # overall scores: one row per metric, one column per predictor, values as in --json
    assert overall[0].split() == ["metric", "model", "majority", "bow_logreg", "nb_logreg"]
    *table, best_accuracy, best_f1 = overall[1:]
    rows = {line.split()[0]: line.split()[1:] for line in table}
    assert list(rows) == ["accuracy", "macro_f1", "loss"]
    # then who scores best on each headline metric (recurrent/report.py: leader_line)
    from recurrent.report import leader_line
    assert [best_accuracy, best_f1] == [
        *leader_line(data["metrics"], data["baselines"], "accuracy", False),
        *leader_line(data["metrics"], data["baselines"], "macro_f1", False)]
    for name, values in rows.items():
        assert values == [f"{m[name]:.4f}" for m in predictors.values()], name

    # per class: the class name and its support on its first row, then its metrics
    assert per_class[0].split() == ["class", "support", "metric", *predictors]
    assert len(per_class) == 1 + 2 * 3
    for first in (1, 4):
        label, support, metric, *values = per_class[first].split()
        assert label in ("fresh", "rotten") and support == "16" and metric == "precision"
        assert values == [f"{m['precision/' + label]:.4f}" for m in predictors.values()]
        for line, metric in zip(per_class[first + 1:first + 3], ("recall", "f1")):
            assert line.split() == [metric, *(f"{m[metric + '/' + label]:.4f}"
                                              for m in predictors.values())]

    # one labelled confusion matrix per predictor, rows true, columns predicted
    assert len(matrices) == 4
    for block, (name, m) in zip(matrices, predictors.items()):
        assert block[0] == (f"confusion matrix of {name} "
                            f"(rows: true class, columns: predicted)")
        assert block[1].split() == ["true", "\\", "predicted", "fresh", "rotten"]
        assert [line.split() for line in block[2:]] == [
            [label, *map(str, counts)] for label, counts in zip(["fresh", "rotten"],
                                                                 m["confusion"])]
    for m in predictors.values():  # the baselines' scores come from their own predictions
        assert m["accuracy"] == pytest.approx(np.trace(m["confusion"]) / 32)
    # last, McNemar's test of the model against each baseline (recurrent/paired.py)
    from recurrent.report import paired_line
    assert paired == paired_line(data["paired"])
    assert list(data["paired"]) == ["majority", "bow_logreg", "nb_logreg"]
    for name, result in data["paired"].items():
        assert (result["test"], result["metric"], result["items"], result["unit"]) == (
            "McNemar", "accuracy", 32, "texts")
        assert result["difference"] == pytest.approx(
            data["metrics"]["accuracy"] - data["baselines"][name]["accuracy"])
        assert 0.0 <= result["p"] <= 1.0
    # the majority baseline really predicts one class (fresh: ties go to the first class)
    assert data["baselines"]["majority"]["confusion"] == [[16, 0], [16, 0]]
    assert matrices[1][2:] == ["fresh                16       0",
                               "rotten               16       0"]


def test_eval_json_and_other_file(trained_run, slice_rows):
    run, root = trained_run
    report = json.loads(ok(invoke("eval", run, "--json")))
    metrics = report["metrics"]
    assert sum(map(sum, metrics["confusion"])) == 32  # 10% of 160 per class
    assert metrics["support/fresh"] == metrics["support/rotten"] == 16
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert report["baselines"]["majority"]["accuracy"] == 0.5

    other = write_reviews(root / "other.csv", slice_rows[:5] + slice_rows[-3:])
    report = json.loads(ok(invoke("eval", run, "--data", other, "--json")))
    assert report["metrics"]["confusion"] and sum(map(sum, report["metrics"]["confusion"])) == 8
    assert report["metrics"]["support/fresh"] == 5
    # eval's scores are those of predict's probabilities for the same rows and true labels
    predicted = [json.loads(line) for line in
                 ok(invoke("predict", run, "--data", other, "--json")).splitlines()]
    truth = [label for _, label in slice_rows[:5] + slice_rows[-3:]]
    assert [p["text"] for p in predicted] == [text for text, _ in slice_rows[:5] + slice_rows[-3:]]
    want_loss = np.mean([-np.log(p["probabilities"][t]) for p, t in zip(predicted, truth)])
    assert report["metrics"]["loss"] == pytest.approx(want_loss, rel=1e-5)
    want_accuracy = np.mean([p["label"] == t for p, t in zip(predicted, truth)])
    assert report["metrics"]["accuracy"] == pytest.approx(want_accuracy)
    classes = ["fresh", "rotten"]
    confusion = np.zeros((2, 2), int)
    for p, t in zip(predicted, truth):
        confusion[classes.index(t), classes.index(p["label"])] += 1
    assert report["metrics"]["confusion"] == confusion.tolist()


def test_predict_texts_file_and_json(trained_run):
    run, root = trained_run
    lines = ok(invoke("predict", run, "A moving, funny film.", "Dull.")).splitlines()
    assert len(lines) == 2
    label, scores, text = lines[0].split("\t")
    assert label in ("fresh", "rotten") and text == "A moving, funny film."
    probs = dict(s.split("=") for s in scores.split())
    assert set(probs) == {"fresh", "rotten"}
    assert sum(map(float, probs.values())) == pytest.approx(1, abs=2e-3)
    assert probs[label] == max(probs.values())

    texts = write_reviews(root / "texts.csv", [("Sublime.",), ("Tedious beyond words.",)],
                          header=("text",))
    tsv = ok(invoke("predict", run, "--data", texts, "Two\tlines\nhere")).splitlines()
    assert len(tsv) == 3 and [line.split("\t")[2] for line in tsv] == [
        "Two lines here", "Sublime.", "Tedious beyond words."]
    rows = [json.loads(line) for line in
            ok(invoke("predict", run, "--data", texts, "--json")).splitlines()]
    assert [r["text"] for r in rows] == ["Sublime.", "Tedious beyond words."]
    assert all(r["label"] == max(r["probabilities"], key=r["probabilities"].get) for r in rows)


def test_predict_errors(trained_run, tmp_path):
    run, _ = trained_run
    one_line_error(invoke("predict", run), "nothing to classify")
    one_line_error(invoke("predict", run, "fine", "  "), "text argument 2 is empty")
    bad = write_reviews(tmp_path / "bad.csv", [("x",)], header=("review",))
    one_line_error(invoke("predict", run, "--data", bad),
                   "columns found: 'review' (choose with --text-column; texts one per "
                   "line, without a header: --stream < FILE)")


def test_eval_errors(trained_run, tmp_path):
    run, _ = trained_run
    unseen = write_reviews(tmp_path / "u.csv", [("ok", "neutral"), ("bad", "rotten")])
    result = invoke("eval", run, "--data", unseen)
    one_line_error(result, "not trained on: 'neutral'")
    assert "another case" not in result.stderr
    cased = write_reviews(tmp_path / "f.csv", [("ok", "Fresh"), ("bad", "rotten")])
    one_line_error(invoke("eval", run, "--data", cased), "not trained on: 'Fresh'",
                   "('Fresh' for 'fresh': the same label in another case, spacing or "
                   "Unicode form; write it as the run's)")
    empty = write_reviews(tmp_path / "e.csv", [("ok", "fresh"), ("", "rotten")])
    one_line_error(invoke("eval", run, "--data", empty), "line 3: empty text")
    # eval has no column options: the hint says what it needs instead of naming options
    other_columns = write_reviews(tmp_path / "c.csv", [("ok", "fresh")], header=("review", "y"))
    one_line_error(invoke("eval", run, "--data", other_columns),
                   "no column 'text' or 'label'; columns found: 'review', 'y' "
                   "(eval --data needs the run's training column names)")


@pytest.mark.parametrize("make, message", [
    (lambda p: write_reviews(p, [("a", "x")], header=("review", "stars")),
     "no column 'text' or 'label'; columns found: 'review', 'stars'"),
    (lambda p: write_reviews(p, [("good", "pos"), ("", "neg")]), "line 3: empty text"),
    (lambda p: write_reviews(p, [("good", "pos"), ("bad", "")]), "line 3: empty label"),
    (lambda p: write_reviews(p, [("good", "pos")] * 30), "single class 'pos'"),
    (lambda p: (p.write_bytes("text,label\nna\xefve,pos\n".encode("latin-1")), str(p))[1],
     "is not UTF-8 text"),
    (lambda p: str(p) + ".missing", "data file not found"),
    (lambda p: (p.write_text("text,label\ngood,pos\nslow, but fine,pos\n"), str(p))[1],
     "line 3: 3 fields, the header has 2 (quote texts that contain commas)"),
])
def test_train_bad_data_is_one_line(tmp_path, make, message):
    data = make(tmp_path / "d.csv")
    result = invoke("train", "sentiment", "--data", data, "--out", tmp_path / "run", *SMALL)
    one_line_error(result, message)
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_train_bad_option_values(tmp_path):
    result = invoke("train", "sentiment", "--min-freq", "0", "--out", tmp_path / "r", *SMALL)
    assert result.exit_code != 0 and "--min-freq" in result.output + result.stderr
    result = invoke("train", "sentiment", "--pooling", "median", "--out", tmp_path / "r", *SMALL)
    assert result.exit_code != 0 and "median" in result.output + result.stderr
    result = invoke("train", "sentiment", "--valid-fraction", "0.5", "--test-fraction", "0.5",
                    "--out", tmp_path / "r", *SMALL)
    one_line_error(result, "fractions must be in (0, 1) and sum below 1")
    assert not (tmp_path / "r").exists()
    result = invoke("train", "sentiment", "--split-seed", "-1", "--out", tmp_path / "r", *SMALL)
    assert result.exit_code == 2 and "internal error" not in result.output + result.stderr
    assert "'--split-seed': -1 is not in the range x>=0" in result.output + result.stderr
    assert not (tmp_path / "r").exists()


def test_too_many_wide_folds_fail_before_the_run_directory_is_made(tmp_path, monkeypatch):
    """--wide-folds whose folds cannot all hold training texts is refused before anything
    is written, so the same --out works for a retry with fewer folds."""
    monkeypatch.setattr(TASK, "baselines", lambda *args: {})  # not under test: skip fitting
    data = write_reviews(tmp_path / "d.csv", bundled_reviews(20))
    args = ["train", "sentiment", "--data", data, "--out", tmp_path / "run", "--steps", 1,
            "--bigram-buckets", 64, *SMALL]
    one_line_error(invoke(*args, "--wide-folds", 50),
                   "--wide-folds 50", "holds 0 of 32 training rows")
    assert not (tmp_path / "run").exists()
    ok(invoke(*args, "--wide-folds", 2))


def test_word_dropout_trains_differently_and_resumes_exactly(tmp_path, slice_rows):
    data = write_reviews(tmp_path / "slice.csv", slice_rows)
    base = ["--data", data, *SMALL, "--epochs", "2"]
    args = [*base, "--word-dropout", "0.1"]

    def params(run):
        with np.load(run / "last.npz") as f:
            return {k: f[k] for k in f.files if k.startswith("param/")}

    ok(invoke("train", "sentiment", "--out", tmp_path / "full", *args))
    ok(invoke("train", "sentiment", "--out", tmp_path / "half", *args, "--steps", "5"))
    ok(invoke("train", "--resume", tmp_path / "half", "--steps", "0"))
    ok(invoke("train", "sentiment", "--out", tmp_path / "off", *base))  # default: off
    full, resumed, off = (params(tmp_path / r) for r in ("full", "half", "off"))
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    assert not all(np.array_equal(full[k], off[k]) for k in full)
    result = invoke("train", "sentiment", "--word-dropout", "1", "--out", tmp_path / "r", *SMALL)
    assert result.exit_code != 0 and "--word-dropout" in result.output + result.stderr
    assert not (tmp_path / "r").exists()


def _params(run):
    with np.load(run / "last.npz") as f:
        return {k[len("param/"):]: f[k] for k in f.files if k.startswith("param/")}


def test_default_wide_part_is_the_nb_baseline_kept_fixed(trained_run):
    """--wide-fit nb (the default): training starts from the nb_logreg baseline's weights
    (its features at the default buckets) and leaves them as they are."""
    run, _ = trained_run
    with open(run / "config.json") as f:
        state = json.load(f)["task_state"]
    nb = TASK._nb_model(state, 131072)
    params = _params(run)
    np.testing.assert_array_equal(params["wide.weight"], nb.weight.astype(np.float32))
    assert np.abs(nb.weight).max() > 0.1
    assert not np.array_equal(params["head.bias"], nb.bias.astype(np.float32))  # trained


def test_cross_fitted_wide_part_scores_training_rows_out_of_fold_and_resumes(tmp_path,
                                                                            slice_rows):
    """--wide-folds 5: in training, each training text gets the logits of the NB fold
    model fitted on the other folds' texts (at the full model's L2), not those of the full
    model, which was fitted on it; evaluation uses the full model. A resumed run ends
    where an unbroken one does."""
    data = write_reviews(tmp_path / "slice.csv", slice_rows)
    args = ["--data", data, *SMALL, "--epochs", "2", "--wide-folds", "5"]
    ok(invoke("train", "sentiment", "--out", tmp_path / "full", *args))
    ok(invoke("train", "sentiment", "--out", tmp_path / "half", *args, "--steps", "5"))
    ok(invoke("train", "--resume", tmp_path / "half", "--steps", "0"))
    ok(invoke("train", "sentiment", "--out", tmp_path / "off", *args, "--wide-folds", "0"))
    full, resumed, off = (_params(tmp_path / r) for r in ("full", "half", "off"))
    assert "wide.fold_weight" in full and "wide.fold_weight" not in off
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    assert not np.array_equal(full["head.weight"], off["head.weight"])

    with open(tmp_path / "full" / "config.json") as f:
        state = json.load(f)["task_state"]
    nb = TASK._nb_model(state, 131072)
    seqs, y = TASK.split_rows(state, "train", {})
    folds = bl.sequence_folds(seqs, 5)
    v = len(state["vocab"])
    x = bl.ngram_matrix(seqs, v, 131072)
    wide = Wide(v, 131072, 2, fixed=True, folds=5)
    for name, value in wide.params().items():
        value[...] = full[f"wide.{name}"]
    ids, lengths = pad_batch(seqs)
    assert (ngram_features(ids, lengths, v, 131072) != x).nnz == 0  # what the folds saw
    in_training = wide.forward(ids, lengths) + nb.bias  # the head starts at nb.bias
    wide.eval()
    in_eval = wide.forward(ids, lengths) + nb.bias
    np.testing.assert_allclose(in_eval, np.asarray(x @ nb.weight) + nb.bias, rtol=1e-5,
                               atol=1e-5)
    # the full model has seen the training texts: more confident on them than the folds
    assert (np.abs(in_eval[:, 1] - in_eval[:, 0]).mean()
            > np.abs(in_training[:, 1] - in_training[:, 0]).mean())
    for f in range(5):
        rows = folds == f
        assert 30 < rows.sum() < 100
        fold = bl.fit_nb_logistic_regression(x[~rows], y[~rows], x[rows], y[rows], 2,
                                             grid=(nb.l2,))
        np.testing.assert_allclose(in_training[rows], np.asarray(x[rows] @ fold.weight)
                                   + fold.bias, rtol=1e-4, atol=1e-4)
        assert not np.allclose(in_training[rows], in_eval[rows], atol=1e-2)

    # --wide-folds-eval mean: outside training, the mean of the same fold models
    ok(invoke("train", "sentiment", "--out", tmp_path / "mean", *args, "--steps", "1",
              "--wide-folds-eval", "mean"))
    mean = _params(tmp_path / "mean")
    np.testing.assert_array_equal(mean["wide.fold_weight"], full["wide.fold_weight"])
    np.testing.assert_allclose(mean["wide.weight"], full["wide.fold_weight"].mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(mean["wide.weight"], full["wide.weight"], atol=1e-3)

    for bad, message in (
            (["--wide-folds", "1"], "--wide-folds: cross-fitting needs 2 folds or more "
                                    "(0 = off)"),
            (["--wide-folds", "0", "--wide-folds-eval", "mean"],
             "--wide-folds-eval mean needs a cross-fitted wide part (--wide-folds 2 or "
             "more)"),
            (["--wide-fit", "joint"],
             "--wide-folds cross-fits the NB wide part: it needs --wide-fit nb")):
        one_line_error(invoke("train", "sentiment", "--out", tmp_path / "r", *args, *bad),
                       message)
        assert not (tmp_path / "r").exists()


def test_joint_wide_part_with_feature_dropout_trains_and_resumes_exactly(tmp_path, slice_rows):
    data = write_reviews(tmp_path / "slice.csv", slice_rows)
    args = ["--data", data, *SMALL, "--epochs", "2", "--wide-fit", "joint"]
    ok(invoke("train", "sentiment", "--out", tmp_path / "full", *args, "--wide-dropout", "0.3"))
    ok(invoke("train", "sentiment", "--out", tmp_path / "half", *args, "--wide-dropout", "0.3",
              "--steps", "5"))
    ok(invoke("train", "--resume", tmp_path / "half", "--steps", "0"))
    ok(invoke("train", "sentiment", "--out", tmp_path / "off", *args, "--wide-dropout", "0"))
    full, resumed, off = (_params(tmp_path / r) for r in ("full", "half", "off"))
    assert all(np.array_equal(full[k], resumed[k]) for k in full)
    assert np.abs(full["wide.weight"]).max() > 0  # trained from zero with the RNN
    assert not np.array_equal(full["wide.weight"], off["wide.weight"])


@pytest.mark.parametrize("wide, option, message", [
    ("none", ("--wide-dropout", "0.3"), "--wide-dropout is for a wide part (--wide "
                                        "unigrams|bigrams); --wide none has none"),
    ("none", ("--wide-dropout", "0"), "--wide-dropout is for a wide part"),
    ("none", ("--bigram-buckets", "1000"), "--bigram-buckets is for the wide part's word "
                                           "pairs (--wide bigrams); --wide none has none"),
    ("unigrams", ("--bigram-buckets", "1000"), "--bigram-buckets is for the wide part's "
                                               "word pairs (--wide bigrams); --wide "
                                               "unigrams has none"),
])
def test_wide_options_without_their_features_are_one_line(tmp_path, wide, option, message):
    """An option of the wide part that --wide leaves without effect is refused, even at
    its value of no effect (0): the run would not do what it says."""
    result = invoke("train", "sentiment", "--out", tmp_path / "r", *SMALL, "--wide", wide,
                    *option)
    one_line_error(result, message)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("option, message", [
    (("--wide-scale",), "--wide-scale needs a wide part (--wide unigrams|bigrams)"),
    (("--wide-folds", "2"), "--wide-folds needs a wide part (--wide unigrams|bigrams)"),
    (("--wide-folds-eval", "mean"), "--wide-folds-eval mean needs a cross-fitted wide part"),
])
def test_cross_fitting_options_without_a_wide_part_are_one_line(tmp_path, option, message):
    result = invoke("train", "sentiment", "--out", tmp_path / "r", *SMALL, "--wide", "none",
                    *option)
    one_line_error(result, message)
    assert not (tmp_path / "r").exists()


# ---- padding invariance ------------------------------------------------------------------

def _forward(runner, texts):
    x, lengths = pad_batch(texts)
    return runner.forward(x, lengths=lengths)[0]


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_tanh"])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_prediction_unchanged_when_batched_with_longer_texts(cell, pooling):
    state = TASK.prepare({"max_vocab": 2000})
    spec = TASK.model_spec(state, {"embed_dim": 6, "pooling": pooling})
    model = SequenceModel(spec, cell=cell, hidden_size=5, bidirectional=True, seed=3)
    runner = model.runner()
    sequences, _ = TASK.split_rows(state, "valid", {})
    by_length = sorted(sequences[:60], key=len)
    short, longer = by_length[:4], by_length[-4:]
    assert len(longer[0]) > len(short[-1])
    alone = np.vstack([softmax(_forward(runner, [s])) for s in short])
    mixed_batch = [longer[0], short[0], longer[1], short[1], short[2], longer[2], short[3]]
    mixed = softmax(_forward(runner, mixed_batch))
    np.testing.assert_allclose(mixed[[1, 3, 4, 6]], alone, rtol=0, atol=1e-6)
    # and through the task's own batching, which sorts rows by length
    np.testing.assert_allclose(TASK.probabilities(runner, mixed_batch)[[1, 3, 4, 6]], alone,
                               rtol=0, atol=1e-6)


def test_baselines_are_fitted_once_per_dataset_and_reused(tmp_path, monkeypatch, slice_rows):
    """A second run on the same data and split (a new process: nothing in memory) reads
    the fitted baselines from the cache instead of refitting; another split refits."""
    from recurrent_plugins.sentiment import baselines, task
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path / "cache"))
    fits = []
    fit = baselines.fit_logistic_regression
    monkeypatch.setattr(baselines, "fit_logistic_regression",
                        lambda *a, **k: fits.append(1) or fit(*a, **k))
    data = write_reviews(tmp_path / "slice.csv", slice_rows)

    def train(name, *extra):
        task._baseline_models.clear()  # as in a new process
        task._nb_models.clear()
        task._fold_models.clear()
        task._baseline_probs.clear()
        ok(invoke("train", "sentiment", "--data", data, "--out", tmp_path / name, "--steps",
                  1, *SMALL, *extra))
        with open(tmp_path / name / "metrics.jsonl") as f:
            return next(r for r in map(json.loads, f) if r["kind"] == "baselines")

    first = train("a")
    assert len(fits) == 1
    for namespace in ("sentiment-baselines", "sentiment-nb-logreg"):  # BoW and NB models
        assert len(list((tmp_path / "cache" / namespace).glob("*.npz"))) == 1
    assert train("b", "--seed", 7) == first and len(fits) == 1  # same data and split
    train("c", "--split-seed", 1)
    assert len(fits) == 2  # another split: fitted again
    for entry in (tmp_path / "cache").rglob("*.npz"):
        entry.write_bytes(b"damaged")  # a damaged entry is refitted, not an error
    assert train("d") == first and len(fits) == 3


def test_help_lists_only_options_the_task_reads():
    assert "--seq-len" not in ok(invoke("train", "sentiment", "--help"))
    assert "--seq-len" in ok(invoke("train", "char-lm", "--help"))
    one_line_error(invoke("train", "sentiment", "--seq-len", 5), "No such option '--seq-len'")


def test_int8_inference_classifies_like_fp32(trained_run):
    """--precision int8 (issue 17): eval's accuracy within one text of fp32's on the 32
    test texts and its loss within 1%; predict's probabilities within 0.01."""
    run, _ = trained_run
    fp32 = json.loads(ok(invoke("eval", run, "--json")))["metrics"]
    int8 = json.loads(ok(invoke("eval", run, "--json", "--precision", "int8")))["metrics"]
    assert int8["loss"] != fp32["loss"]   # it did run in int8
    assert int8["loss"] == pytest.approx(fp32["loss"], rel=0.01)
    assert abs(int8["accuracy"] - fp32["accuracy"]) <= 1 / 32 + 1e-9
    texts = ("A moving, funny film.", "Dull and far too long.")
    rows = [[json.loads(line)["probabilities"] for line in
             ok(invoke("predict", run, *texts, "--json", *extra)).splitlines()]
            for extra in ((), ("--precision", "int8"))]
    for want, got in zip(*rows):
        for label in want:
            assert got[label] == pytest.approx(want[label], abs=0.01)
