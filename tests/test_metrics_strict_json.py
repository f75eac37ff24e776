"""metrics.jsonl is strict JSON: a NaN or infinite figure is written as null."""
import json

from helpers import invoke, ok, write_csv
from recurrent.checkpoint import RunDir


def _strict(line: str) -> dict:
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON: {line!r}")
    return json.loads(line, parse_constant=refuse)


def test_a_nan_or_infinite_figure_is_written_as_null(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    run.append_metrics({"kind": "eval", "step": 3,
                        "metrics": {"mape": float("nan"), "loss": float("inf"), "mae": 0.5}})
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [_strict(line) for line in lines] == [
        {"kind": "eval", "step": 3, "metrics": {"mape": None, "loss": None, "mae": 0.5}}]
    assert run.read_metrics()[0]["metrics"]["mape"] is None


def test_a_forecast_run_with_zero_targets_writes_strict_json(tmp_path):
    # the validation rows are all zero, so their MAPE is not defined (NaN)
    rows = [[i, (i % 7) + 1.0 if i < 140 else 0.0] for i in range(210)]
    path = write_csv(tmp_path / "z.csv", ["t", "v"], rows)
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", path, "--time-column", "t", "--model", "rnn",
              "--season", 1, "--steps", 3, "--hidden", 4, "--threads", 1, "--quiet",
              "--no-plot", "--out", run))
    records = [_strict(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval"]
    assert evals and all(r["metrics"]["mape"] is None for r in evals)


def test_a_line_cut_off_by_a_kill_is_gone_once_the_run_resumes(task_runs, tmp_path):
    """Skipped when read, the cut-off line would otherwise stay between the records
    before it and the resumed run's, and jq or pandas.read_json(lines=True) stop at it."""
    import shutil
    copy = tmp_path / "run"
    shutil.copytree(task_runs["char-lm"], copy)
    before = RunDir(str(copy)).read_metrics()
    with open(copy / "metrics.jsonl", "a") as f:
        f.write('{"clipped_fraction": 0.0, "epoch": 1, "gr')
    ok(invoke("train", "--resume", copy, "--steps", 3, "--quiet"))
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    records = [_strict(line) for line in lines]
    assert records[:len(before)] == before and len(records) > len(before)
