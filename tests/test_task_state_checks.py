"""A damaged or hand-edited task state in a run's config.json gives one line naming the
entry (Task.check_state, recurrent/schema.py) wherever the run is opened: eval, predict,
resume and import; every state the tasks save, and older ones without their optional
keys, still opens.

Real tiny runs of every built-in task; each case edits one entry of a copy."""
from __future__ import annotations

import json
import math
import shutil

import pytest
from helpers import invoke, ok, one_line_error

from recurrent import schema
from recurrent.plugins import get_task


def _edited(run, tmp_path, edit):
    """A copy of ``run`` whose config.json went through edit(info) (in place)."""
    copy = tmp_path / "edited"
    shutil.copytree(run, copy)
    info = json.loads((copy / "config.json").read_text())
    edit(info)
    (copy / "config.json").write_text(json.dumps(info))
    return copy


def _state_of(run):
    info = json.loads((run / "config.json").read_text())
    return info["task"], info["task_state"], info["model_spec"]


@pytest.mark.parametrize("task", ["char-lm", "forecast", "sentiment", "seq2seq"])
def test_every_saved_state_passes_its_tasks_check(task_runs, task):
    name, state, spec = _state_of(task_runs[task])
    get_task(name).check_state(state, spec)  # raises on a state the task made itself


def _set(path, value):
    def edit(info):
        *parents, last = path
        node = info["task_state"]
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        elif callable(value):
            node[last] = value(node[last])
        else:
            node[last] = value
    return edit


DELETE = object()

CASES = [
    ("char-lm", ("vocab",), DELETE, "task state: vocab is missing"),
    ("char-lm", ("vocab",), 5, "vocab: expected a list, got 5"),
    ("char-lm", ("vocab",), lambda v: ["ab"] + v[1:], "vocab: vocabulary must be"),
    ("char-lm", ("vocab",), lambda v: v[:3], "the model's vocab_size is"),
    ("char-lm", ("n_train",), "x", "n_train: expected an integer, got 'x'"),
    ("char-lm", ("n_train",), True, "n_train: expected an integer, got True"),
    ("forecast", ("columns",), DELETE, "columns is missing"),
    ("forecast", ("scaler", "scale"), [0.0], "scaler.scale[0]: expected a number > 0"),
    ("forecast", ("mase_scale",), [1.0, 2.0], "mase_scale: expected 1 entries, got 2"),
    ("forecast", ("ets", 0, "initial_seasonal"), [1.0, 2.0],
     "ets[0].initial_seasonal: expected"),
    ("forecast", ("ets", 0, "smoothing"), {}, "ets[0].smoothing.smoothing_level is missing"),
    ("forecast", ("ets",), DELETE, "ets is missing"),
    ("forecast", ("anchors",), ["nope"], "anchors[0]: expected last or"),
    ("forecast", ("horizon",), 3, "anchors: expected 3 entries, got 1"),
    ("forecast", ("split_ends",), [50, 40, 300], "split_ends: expected three increasing"),
    ("forecast", ("calendar",), ["day"], "the model's input_size is"),
    ("forecast", ("model",), "esrnn", "es is missing"),
    ("forecast", ("model_choice",), {}, "model_choice: expected the candidates' scores"),
    ("forecast", ("model_choice",), {"nope": 0.5}, "model_choice key: expected one of"),
    ("forecast", ("model_choice",), {"ets": "0.5"}, "model_choice.ets: expected a number"),
    ("forecast", ("window",), 400, "window 400 and horizon 1 do not fit the splits"),
    ("forecast", ("horizon",), 10 ** 7, "do not fit the splits"),
    ("forecast", ("scaler", "center"), [10 ** 400], "scaler.center[0]: expected a finite"),
    ("char-lm", ("n_train",), lambda n: n * 10, "n_train: expected at most n_chars - 2"),
    ("char-lm", ("n_train",), 10 ** 400, "n_train: expected an integer >= 1, got 1000"),
    ("sentiment", ("classes",), lambda c: c[:1] + c[:1], "classes: expected two or more"),
    ("sentiment", ("classes",), lambda c: c + ["extra"], "the model's output_size is 2"),
    ("sentiment", ("vocab",), lambda v: v[1:], "vocab: expected to start with <pad>, <unk>"),
    ("sentiment", ("max_tokens",), -1, "max_tokens: expected an integer >= 0, got -1"),
    ("sentiment", ("valid_fraction",), 0.95, "valid_fraction + test_fraction: expected < 1"),
    ("sentiment", ("sha256",), None, "sha256: expected a string, got None"),
    ("seq2seq", ("target_vocab",), lambda v: v[2:], "target_vocab: expected to start with"),
    ("seq2seq", ("source_vocab",), lambda v: v + ["z"], "the model's source_vocab is"),
    ("seq2seq", ("source_level",), "word", "source_level: expected one of 'char', 'token'"),
    ("seq2seq", ("data",), DELETE, "data is missing"),
]


@pytest.mark.parametrize("task, path, value, message", CASES,
                         ids=[f"{c[0]}-{'.'.join(map(str, c[1]))}-{i}"
                              for i, c in enumerate(CASES)])
def test_a_damaged_state_is_one_line_on_eval_and_predict(task_runs, tmp_path, task, path,
                                                          value, message):
    run = _edited(task_runs[task], tmp_path, _set(path, value))
    one_line_error(invoke("eval", run), "config.json is corrupted", message)
    predict_args = {"char-lm": ("--length", 3), "forecast": (), "sentiment": ("good",),
                    "seq2seq": ("abc",)}[task]
    one_line_error(invoke("predict", run, *predict_args), "config.json is corrupted", message)


def test_a_damaged_state_is_one_line_on_resume(task_runs, tmp_path):
    run = _edited(task_runs["char-lm"], tmp_path, _set(("vocab",), lambda v: v[:3]))
    before = (run / "config.json").read_bytes()
    one_line_error(invoke("train", "--resume", run, "--steps", 4), "the model's vocab_size")
    assert (run / "config.json").read_bytes() == before


def test_a_cleared_model_spec_is_one_line_on_resume(task_runs, tmp_path):
    run = _edited(task_runs["char-lm"], tmp_path, lambda info: info["model_spec"].clear())
    one_line_error(invoke("train", "--resume", run, "--steps", 4), "model_spec")


def test_import_refuses_a_file_whose_state_is_damaged(task_runs, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file
    exported = tmp_path / "model.safetensors"
    ok(invoke("export", task_runs["char-lm"], "--format", "safetensors", "--out", exported))
    with safe_open(str(exported), "numpy") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = dict(f.metadata())
    info = json.loads(metadata["config.json"])
    info["task_state"]["vocab"] = info["task_state"]["vocab"][:3]
    metadata["config.json"] = json.dumps(info)
    damaged = tmp_path / "damaged.safetensors"
    save_file(tensors, str(damaged), metadata=metadata)
    out = tmp_path / "imported"
    one_line_error(invoke("import", damaged, "--out", out), "metadata is corrupted",
                   "the model's vocab_size")
    assert not out.exists()


def test_older_states_without_the_optional_keys_still_open(task_runs, tmp_path):
    """Keys the tasks read with a default (states saved before they existed) may be
    missing: such a run still evaluates. (Not seasonal_inputs: its default would give
    this run's model another input size, which the check rightly refuses.)"""
    def older(info):
        state = info["task_state"]
        for key in ("difference", "model_choice", "calendar", "inputs", "blend_mode",
                    "data_sha256", "blend"):
            state.pop(key, None)
    run = _edited(task_runs["forecast"], tmp_path, older)
    ok(invoke("eval", run))
    run = _edited(task_runs["sentiment"], tmp_path / "s", lambda info: [
        info["task_state"].pop(key) for key in ("version", "split_sizes")])
    ok(invoke("eval", run))


# ---- recurrent.schema ---------------------------------------------------------------------

def _problem(value, spec):
    try:
        schema.check(value, spec, "x")
    except ValueError as e:
        return str(e)
    return None


def test_json_kinds_tell_true_from_one_and_numbers_from_text():
    assert _problem(3, int) is None and _problem(3, float) is None
    assert _problem(True, int) == "x: expected an integer, got True"
    assert _problem(True, float) == "x: expected a number, got True"
    assert _problem(3.0, int) == "x: expected an integer, got 3.0"
    assert _problem("3", float) == "x: expected a number, got '3'"
    assert _problem(None, str) == "x: expected a string, got None"
    assert _problem(math.nan, schema.finite) == "x: expected a finite number, got nan"
    assert _problem(math.inf, schema.above(0)) == "x: expected a finite number, got inf"
    assert _problem(0, schema.above(0)) == "x: expected a number > 0, got 0"
    assert _problem(-1, schema.at_least(0)) == "x: expected an integer >= 0, got -1"
    assert _problem(0.5, schema.at_least(0, float)) is None
    assert _problem(10 ** 400, schema.finite).startswith("x: expected a finite number, got 1000")
    assert _problem(10 ** 400, schema.at_least(0)).startswith("x: expected an integer >= 0")
    assert _problem(10 ** 300, schema.finite) is None  # within float64's range


def test_nested_specs_name_the_path_of_the_bad_entry():
    spec = schema.fields({"a": schema.list_of(schema.fields({"b": int}))},
                         {"c": schema.one_of("p", "q")})
    assert _problem({"a": [{"b": 1}, {"b": 2}]}, spec) is None
    assert _problem({"a": [{"b": 1}, {"b": "2"}]}, spec) == \
        "x.a[1].b: expected an integer, got '2'"
    assert _problem({"a": [{}]}, spec) == "x.a[0].b is missing"
    assert _problem({"a": [], "c": "r"}, spec) == "x.c: expected one of 'p', 'q', got 'r'"
    assert _problem({"a": [], "other": 1}, spec) is None  # keys of its own are allowed
    assert _problem([1], schema.list_of(int, size=2)) == "x: expected 2 entries, got 1"
    assert _problem([], schema.list_of(int, nonempty=True)) == \
        "x: expected at least one entry, got none"
    assert _problem(None, schema.nullable(int)) is None
    assert _problem(True, schema.one_of(1, 2)) == "x: expected one of 1, 2, got True"


def test_sized_as_compares_only_what_the_spec_holds():
    schema.sized_as({"vocab_size": 5}, "vocab_size", 5, "vocab")
    schema.sized_as({}, "vocab_size", 5, "vocab")
    with pytest.raises(ValueError, match="the model's vocab_size is 5, but vocab gives 4"):
        schema.sized_as({"vocab_size": 5}, "vocab_size", 4, "vocab")


def test_a_newer_format_is_named_before_its_state_is_checked(task_runs, tmp_path):
    """A run saved by a later recurrent (another format, whose state may differ) is
    refused for its format, not called corrupted."""
    def newer(info):
        info["format"] = 99
        info["task_state"]["vocab"] = {"chars": info["task_state"]["vocab"]}
    run = _edited(task_runs["char-lm"], tmp_path, newer)
    one_line_error(invoke("eval", run), "has format 99; this recurrent reads format")
