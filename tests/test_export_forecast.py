"""A forecast run outside recurrent, as docs/export.md tells a user to make one: its
Python recipe (the window built, the graph run, the outputs turned into forecasts) gives
`recurrent predict`'s numbers for the hybrid and esrnn models, whose smoothing states
must be restarted on a file other than the training data. And what `recurrent import`
reads and keeps: the choice among candidates eval reports, a directory or an int8 file
with a non-finite scale refused in one line."""
import gzip
import json
import os
import re
import warnings

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (the onnx extra)")
pytest.importorskip("statsmodels", reason="statsmodels not installed (the ets extra: the "
                    "hybrid model's ETS)")

from recurrent_plugins.forecast import series  # noqa: E402

TINY = ["--threads", "1", "--quiet", "--no-plot", "--steps", "2", "--hidden", "6",
        "--window", "8"]
DOCS = os.path.join(os.path.dirname(__file__), "..", "docs", "export.md")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny sunspots runs of the two models that read a smoothing (hybrid: ETS; esrnn:
    the learned one), and one that chose between --inputs level and relative; the last
    80 rows of sunspots as a recent file."""
    root = tmp_path_factory.mktemp("export_forecast")
    for model in ("hybrid", "esrnn"):
        ok(invoke("train", "forecast", "--out", root / model, "--model", model,
                  "--inputs", "level", *TINY))
    ok(invoke("train", "forecast", "--out", root / "chose", "--model", "rnn",
              "--inputs", "auto", *TINY))
    with gzip.open(series.resolve_source("sunspots").path, "rt") as f:
        lines = f.read().splitlines()
    (root / "recent.csv").write_text("\n".join([lines[0], *lines[-80:]]) + "\n")
    return root


def docs_recipe() -> str:
    """The Python block of docs/export.md that makes a forecast from the graph."""
    text = open(DOCS, encoding="utf-8").read()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
              if "session.run" in b and "features" in b]
    assert len(blocks) == 1
    return blocks[0]


def recipe_forecast(code, onnx_path, data) -> np.ndarray:
    namespace = {}
    exec(code.replace("runs/sunspots.onnx", str(onnx_path)).replace("recent.csv", str(data)),
         namespace)
    return np.asarray(namespace["forecast"])


def predicted(run, *args) -> np.ndarray:
    result = json.loads(ok(invoke("predict", run, "--json", *args)))
    return np.array([result["forecast"][c] for c in result["columns"]]).T  # (steps, C)


@pytest.mark.parametrize("model", ["hybrid", "esrnn"])
def test_the_docs_recipe_forecasts_a_new_file_as_predict_does(model, runs, tmp_path):
    """predict --data restarts the smoothing on the file's first rows; the recipe does
    the same (anchors.restarted) and so gives predict's forecast, up to float32 rounding
    of the graph. Without that step the stored states, which belong to the training
    rows' first row, give another forecast: the file tests what the step is for."""
    onnx_path = tmp_path / "m.onnx"
    ok(invoke("export", runs / model, "--format", "onnx", "--out", onnx_path))
    recent = runs / "recent.csv"
    want = predicted(runs / model, "--data", recent)
    code = docs_recipe()
    got = recipe_forecast(code, onnx_path, recent)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    restart = next(line for line in code.splitlines() if "anchors.restarted" in line)
    stale = recipe_forecast(code.replace(restart, ""), onnx_path, recent)
    assert np.abs(stale - want).max() > 1e-3


def test_the_docs_recipe_on_the_training_data_is_predicts_forecast(runs, tmp_path):
    """The variant the docs give for the training data itself: no restart, the gaps
    filled split by split."""
    onnx_path = tmp_path / "m.onnx"
    ok(invoke("export", runs / "hybrid", "--format", "onnx", "--out", onnx_path))
    code = docs_recipe()
    lines = code.splitlines()
    fill = next(line for line in lines if line.startswith("filled = "))
    restart = next(line for line in lines if "anchors.restarted" in line)
    code = code.replace(fill, 'filled = series.fill_gaps(data, state["split_ends"])')
    got = recipe_forecast(code.replace(restart, ""), onnx_path, "sunspots")
    np.testing.assert_allclose(got, predicted(runs / "hybrid"), rtol=1e-5, atol=1e-5)


def test_an_imported_run_reports_the_choice_among_candidates(runs, tmp_path):
    """A run that chose between candidates (--inputs auto) says which in eval; its
    imported copy says the same, so eval's report is the original's but for the run's
    name."""
    run = runs / "chose"
    assert "chose" in json.loads((run / "config.json").read_text())
    ok(invoke("export", run, "--format", "safetensors", "--out", tmp_path / "c.safetensors"))
    ok(invoke("import", tmp_path / "c.safetensors", "--out", tmp_path / "back"))

    def report(r, *args):
        return ok(invoke("eval", r, "--threads", "1", *args))

    want, got = json.loads(report(run, "--json")), json.loads(report(tmp_path / "back", "--json"))
    assert want.pop("run") == str(run) and got.pop("run") == str(tmp_path / "back")
    assert got == want and "chose" in got
    text = report(tmp_path / "back")
    assert "chosen on validation: --inputs" in text
    assert text.splitlines()[1:] == report(run).splitlines()[1:]


def test_import_of_a_directory_is_refused_in_one_line(runs, tmp_path):
    one_line_error(invoke("import", runs, "--out", tmp_path / "r"), "is a directory")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("scale, message", [
    # checked before the multiplication, which would make NaN (inf * 0) with numpy's warning
    (np.inf, "'rnn.weight_hh_l0.scale' holds NaN or infinity"),
    # finite, but 127 * 3e38 overflows float32: infinite weights
    (3e38, "'rnn.weight_hh_l0' times 'rnn.weight_hh_l0.scale' overflows"),
])
def test_an_int8_scale_that_makes_weights_not_finite_is_refused_in_one_line(
        runs, tmp_path, scale, message):
    """Refused in one line naming the tensor, with no numpy warning beside it."""
    from safetensors import safe_open
    from safetensors.numpy import save_file
    good = tmp_path / "q.safetensors"
    ok(invoke("export", runs / "hybrid", "--format", "safetensors", "--precision", "int8",
              "--out", good))
    with safe_open(str(good), framework="np") as f:
        metadata = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    tensors["rnn.weight_hh_l0.scale"][0 if np.isfinite(scale) else slice(None)] = scale
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning fails the import instead of showing
        one_line_error(invoke("import", bad, "--out", tmp_path / "r"), message)
    assert not (tmp_path / "r").exists()
