"""`recurrent eval RUN --data FILE` on a machine without the run's own data (a run copied
or imported elsewhere, its file moved or changed): the model is scored on FILE alone and
the report says why the baselines, fitted on the run's training split, are left out; the
figures are those eval gives with the data there. Without --data the run's own splits are
needed, and eval still refuses in one line."""
import json

import pytest
from helpers import invoke, ok, one_line_error, reversal_tsv, tiny_text, train_tiny

LEFT_OUT = "baselines left out (they are fitted on the run's training split)"

pytest.importorskip("recurrent_plugins.cells",
                    reason="the fast built-in cells (recurrent_plugins.cells) are not built")


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    """Nothing fitted on the training split is kept on disk between the commands, as on
    another machine."""
    monkeypatch.setenv("RECURRENT_CACHE_DIR", "off")


def _moved_away(path, tmp_path):
    """Moves ``path`` into a directory of tmp_path; returns where it went."""
    away = tmp_path / "away"
    away.mkdir(exist_ok=True)
    return path.rename(away / path.name)


def _scored_alone(run, other, with_data: dict, missing: str):
    """eval --data other's JSON and text without the run's data: the same figures as
    ``with_data`` (eval --json with the data there) but the count of FILE's passages the
    run trained on, no baselines, and the reason that names ``missing``."""
    alone = json.loads(ok(invoke("eval", run, "--data", other, "--json")))
    assert "train_overlap" not in alone["metrics"]
    assert alone["metrics"] == {k: v for k, v in with_data["metrics"].items()
                                if k != "train_overlap"}
    assert alone["baselines"] == {} and "paired" not in alone
    assert missing in alone["baselines_left_out"]
    assert "the data this run was trained on" in alone["baselines_left_out"]
    text = ok(invoke("eval", run, "--data", other)).splitlines()
    assert text[1] == f"{LEFT_OUT}: {alone['baselines_left_out']}", text
    return alone


def _char_lm_run(tmp_path):
    """(its training text, a tiny char-lm run, another text, eval --data's JSON of it)."""
    data = tiny_text(tmp_path)
    ok(train_tiny(data, tmp_path / "run"))
    other = tmp_path / "other.txt"
    other.write_text("the lazy dog jumps.\n", encoding="utf-8")
    with_data = json.loads(ok(invoke("eval", tmp_path / "run", "--data", other, "--json")))
    assert with_data["baselines"] and "train_overlap" in with_data["metrics"]
    return data, tmp_path / "run", other, with_data


def test_char_lm_scores_another_file_with_its_training_text_gone(tmp_path):
    data, _, other, with_data = _char_lm_run(tmp_path)
    moved = _moved_away(data, tmp_path)
    _scored_alone(tmp_path / "run", other, with_data, f"data file not found: {data}")
    one_line_error(invoke("eval", tmp_path / "run"),
                   f"{data}, the data {tmp_path / 'run'} was trained on, is gone")
    # its text changed: the same, naming the change
    moved.rename(data)
    data.write_text(data.read_text(encoding="utf-8") + "one more line.\n", encoding="utf-8")
    _scored_alone(tmp_path / "run", other, with_data, "changed since this run was trained")


def test_an_imported_run_scores_another_file_without_the_original_data(tmp_path):
    """export, then import where the training file is not (moved away here)."""
    data, _, other, with_data = _char_lm_run(tmp_path)
    ok(invoke("export", tmp_path / "run", "--format", "safetensors", "--out",
              tmp_path / "m.safetensors"))
    _moved_away(data, tmp_path)
    ok(invoke("import", tmp_path / "m.safetensors", "--out", tmp_path / "imported"))
    _scored_alone(tmp_path / "imported", other, with_data, f"data file not found: {data}")


def test_seq2seq_scores_another_file_with_its_pairs_gone(tmp_path):
    pairs, words = reversal_tsv(tmp_path / "pairs.tsv", "abcdefg", 300)
    run = tmp_path / "run"
    ok(invoke("train", "seq2seq", "--data", pairs, "--out", run, "--hidden", 16,
              "--embed-dim", 8, "--steps", 5, "--threads", 1, "--quiet", "--no-plot"))
    other = tmp_path / "other.tsv"
    other.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words[:20]), encoding="utf-8")
    with_data = json.loads(ok(invoke("eval", run, "--data", other, "--json")))
    assert with_data["baselines"] and "train_overlap" in with_data["metrics"]
    _moved_away(pairs, tmp_path)
    from recurrent_plugins.seq2seq import task
    task._baseline_scores.clear()  # as in a new process
    _scored_alone(run, other, with_data, f"data file not found: {pairs}")
