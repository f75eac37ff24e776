"""`recurrent eval RUN --data FILE` scores FILE beside baselines fitted on the run's own
training split. When those fits are not in memory or in the cache (a new process, a
cleared or turned-off cache, a run copied to another machine) and the run's data file has
changed or is gone, the model is scored alone and the note says what that file is read
for: not "evaluate on a file with --data", which the command line already did, nor only
"data file not found: PATH", a path the user never gave. Without --data, eval refuses."""
import pytest
from helpers import bundled_reviews, invoke, ok, one_line_error, write_reviews

SMALL = ("--ensemble", 1, "--steps", 2, "--hidden", 4, "--embed-dim", 4, "--threads", 1,
         "--quiet", "--no-plot")


@pytest.fixture
def run_and_other(tmp_path, monkeypatch):
    from recurrent_plugins.sentiment import task
    rows = bundled_reviews(40)
    data = write_reviews(tmp_path / "train.csv", rows)
    ok(invoke("train", "sentiment", "--data", data, "--out", tmp_path / "run", *SMALL))
    other = write_reviews(tmp_path / "other.csv", rows[:6])
    monkeypatch.setenv("RECURRENT_CACHE_DIR", "off")  # no fitted baselines kept on disk
    for memo in (task._files, task._baseline_models, task._nb_models, task._fold_models,
                 task._baseline_probs):
        memo.clear()  # as in a new process
    return tmp_path / "run", data, other, rows


def _scored_alone(run, other, *fragments):
    """eval --data other's report: the model's figures, and the line that leaves the
    baselines out holding every fragment."""
    report = ok(invoke("eval", run, "--data", other))
    left_out = [line for line in report.splitlines() if line.startswith("baselines left out")]
    assert len(left_out) == 1, report
    for fragment in ("fitted on the run's training split", *fragments):
        assert fragment in left_out[0], left_out[0]
    assert "evaluate on a file with --data" not in report
    assert "accuracy" in report and "bow_logreg" not in report


def test_eval_data_with_the_run_data_changed_names_the_baselines(run_and_other):
    run, data, other, rows = run_and_other
    write_reviews(data, rows + [("one more review", rows[0][1])])
    _scored_alone(run, other, "has changed since this run was trained",
                  "restore the file as it was to see the baselines")


def test_eval_data_with_the_run_data_gone_says_whose_file_it_is(run_and_other):
    import os
    run, data, other, _ = run_and_other
    os.remove(data)
    _scored_alone(run, other, "not found", "the data this run was trained on")


def test_eval_without_data_still_points_to_data(run_and_other):
    import os
    run, data, _, _ = run_and_other
    os.remove(data)
    one_line_error(invoke("eval", run), f"{data}, the data {run} was trained on, is gone",
                   "--split test --data NEW", "--data FILE alone scores a file whole")
    ok(invoke("predict", run, "a fine film"))  # predict needs only the run


def test_predict_text_column_without_data_is_refused(task_runs):
    """--text-column chooses a column of --data FILE: without --data (and with --stream,
    which refuses --data) it would be ignored, and is refused."""
    from click.testing import CliRunner

    from recurrent.cli import cli
    run = task_runs["sentiment"]
    one_line_error(invoke("predict", run, "--text-column", "review", "a fine film"),
                   "--text-column review", "--data")
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--text-column",
                                      "review"], input="a fine film\n")
    one_line_error(result, "--stream", "--text-column")


def test_eval_data_counts_the_texts_the_run_trained_on(tmp_path):
    """A --data file that holds training texts scores them as if held out: eval counts
    them ("train_overlap") and says so under the header."""
    import json
    rows = bundled_reviews(60)
    data = write_reviews(tmp_path / "train.csv", rows)
    run = tmp_path / "run"
    ok(invoke("train", "sentiment", "--data", data, "--out", run, *SMALL))
    state = json.loads((run / "config.json").read_text())["task_state"]
    from recurrent_plugins.sentiment.task import TASK
    train, _ = TASK.split_rows(state, "train", {})
    report = json.loads(ok(invoke("eval", run, "--data", data, "--json")))
    assert len(train) <= report["metrics"]["train_overlap"] <= len(rows)
    text = ok(invoke("eval", run, "--data", data))
    assert (f"note: {report['metrics']['train_overlap']} of the {len(rows)} texts are in "
            f"the run's training split") in text
    fresh = write_reviews(tmp_path / "fresh.csv",
                          [(f"zebra{k} quokka{k} unseen words", rows[k][1]) for k in range(4)])
    report = json.loads(ok(invoke("eval", run, "--data", fresh, "--json")))
    assert report["metrics"]["train_overlap"] == 0
    assert "training split" not in ok(invoke("eval", run, "--data", fresh))


def test_the_overlap_note_reads_right_for_one_and_for_none():
    from recurrent.report import overlap_line
    assert overlap_line({"train_overlap": 1}, 5, "texts") == [
        "note: 1 of the 5 texts is in the run's training split (as the model reads them): "
        "its score is not a held-out score"]
    assert overlap_line({"train_overlap": 0}, 5, "texts") == []
    assert overlap_line({}, 5, "texts") == []
    assert overlap_line({"train_overlap": 2}, None, "pairs")[0].startswith(
        "note: 2 of the file's pairs are in")


def test_eval_counts_the_own_test_texts_a_duplicate_row_put_in_training(tmp_path):
    """The split keeps rows, not texts, apart: a file whose rows repeat puts texts of the
    test split in training too. eval counts them on the run's own test split and says so;
    a file without repeated texts reports no count."""
    import json
    from recurrent_plugins.sentiment.task import TASK
    rows = bundled_reviews(40)
    for name, data_rows, overlapping in (("twice", rows * 2, True), ("once", rows, False)):
        data = write_reviews(tmp_path / f"{name}.csv", data_rows)
        run = tmp_path / name
        ok(invoke("train", "sentiment", "--data", data, "--out", run, *SMALL))
        state = json.loads((run / "config.json").read_text())["task_state"]
        train = {tuple(s) for s in TASK.split_rows(state, "train", {})[0]}
        test = TASK.split_rows(state, "test", {})[0]
        seen = sum(tuple(s) in train for s in test)
        report = json.loads(ok(invoke("eval", run, "--json")))
        text = ok(invoke("eval", run))
        if overlapping:
            assert seen > 0 and report["metrics"]["train_overlap"] == seen
            assert (f"note: {seen} of the {len(test)} texts are in the run's training "
                    f"split") in text
        else:
            assert seen == 0 and "train_overlap" not in report["metrics"]
            assert "note:" not in text
