"""A new file for a trained forecast run (predict --data, eval --data, predict --stream
--data) whose recent values hold still is valid input: the run's scaler and MASE scale
come from its training rows, so nothing needs the file itself to vary. It was refused as
"constant ...: nothing to forecast", the training data's check."""
import json

from helpers import invoke, ok, one_line_error, write_csv
from test_forecast_bad_data import seasonal_rows, train


def test_a_flat_recent_file_is_forecast_not_refused(tmp_path):
    result, run = train(tmp_path, "run", seasonal_rows(), "--model", "rnn")
    ok(result)
    flat = write_csv(tmp_path / "flat.csv", ["t", "y"], [[i, 70.0] for i in range(40)])
    forecast = json.loads(ok(invoke("predict", run, "--data", flat, "--steps", 2, "--json")))
    assert len(forecast["forecast"]["y"]) == 2
    report = json.loads(ok(invoke("eval", run, "--data", flat, "--json")))
    assert report["baselines"]["naive"]["mae"] == 0.0
    assert report["metrics"]["mase"] >= 0.0
    # a training file that is constant is still refused
    result, _ = train(tmp_path, "flat-run", [[i, 70.0] for i in range(120)])
    one_line_error(result, "is constant")
