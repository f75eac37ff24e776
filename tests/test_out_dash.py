"""An output path given as "-" (`--out -`, `--plot -`, `--json -`): to a Unix tool it means
standard output, which none of these commands writes its files to, so each refuses it in
one line naming the option (out_paths.output_named) and makes no file or directory named
"-"; "./-" still names one on purpose."""
import pytest

from helpers import invoke, ok, one_line_error, tiny_text, train_tiny


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """The test's directory as the working directory, where a "-" would be made."""
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    assert not (tmp_path / "-").exists()


def _refused(result, option):
    one_line_error(result, f"{option} -:", "standard output", "./-")


def test_train_refuses_out_dash(in_tmp):
    _refused(train_tiny(tiny_text(in_tmp), "-"), "--out")


def test_export_refuses_out_dash(task_runs, in_tmp):
    _refused(invoke("export", task_runs["char-lm"], "--format", "safetensors", "--out", "-"),
             "--out")


def test_import_refuses_out_dash(task_runs, in_tmp):
    exported = in_tmp / "m.safetensors"
    ok(invoke("export", task_runs["char-lm"], "--format", "safetensors", "--out", exported))
    _refused(invoke("import", exported, "--out", "-"), "--out")


def test_predict_refuses_plot_dash(task_runs, in_tmp):
    _refused(invoke("predict", task_runs["forecast"], "--plot", "-"), "--plot")


def test_bench_refuses_json_dash(in_tmp):
    _refused(invoke("bench", "--cell", "lstm", "--config", "2,1,2,2", "--threads", 1,
                    "--vs", "none", "--repeats", 1, "--rounds", 1, "--json", "-"), "--json")


def test_dot_slash_dash_names_a_run_directory_on_purpose(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ok(train_tiny(tiny_text(tmp_path), "./-"))
    assert (tmp_path / "-" / "config.json").is_file()
