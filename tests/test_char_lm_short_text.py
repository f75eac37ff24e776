"""char-lm's refusal of a text too short for --batch-size x --seq-len names what is short:
the training text or the validation text (the last 5%), and the --max-chars cut rather
than the file when the cut made it short."""
import pytest
from click.testing import CliRunner

from recurrent.cli import cli
from recurrent.errors import UserError
from recurrent_plugins.char_lm.task import TASK


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def refusal(config):
    with pytest.raises(UserError) as info:
        TASK.prepare(config)
    return str(info.value)


def test_a_short_validation_text_is_not_called_a_short_training_window(tmp_path):
    # 10,000 characters: 9,500 to train on, nine windows of 1 x 1000; the last 5% (500
    # characters) cannot hold one --seq-len window of 1001
    path = write(tmp_path, "ten.txt", "abcdefghij" * 1000)
    msg = refusal({"data": path, "batch_size": 1, "seq_len": 1000})
    assert "shorter than one training window" not in msg
    assert f"{path} has 10000 characters" in msg
    assert "too short for validation" in msg and "500 characters" in msg
    needed = int(msg.split("needs at least ")[1].split()[0])
    # the minimum it names is the minimum
    state = TASK.prepare({"data": write(tmp_path, "n.txt", "ab" * (needed // 2) + "a" * (
        needed % 2)), "batch_size": 1, "seq_len": 1000})
    assert state["n_chars"] == needed and state["n_valid"] >= 1001
    with pytest.raises(UserError):
        TASK.prepare({"data": write(tmp_path, "n.txt", "a" * (needed - 1)),
                      "batch_size": 1, "seq_len": 1000})


def test_a_text_cut_by_max_chars_is_named_as_the_cut(tmp_path):
    path = write(tmp_path, "big.txt", "abcdefghij" * 1000)
    msg = refusal({"data": path, "batch_size": 32, "seq_len": 64, "max_chars": 100})
    assert f"{path} has 100 characters" not in msg
    assert f"--max-chars 100 keeps 100 characters of {path} (which has 10000)" in msg
    assert "shorter than one training window" in msg and "raise --max-chars" in msg
    # a cut beyond the file's length is no cut: the file itself is short
    msg = refusal({"data": path, "batch_size": 32, "seq_len": 400, "max_chars": 20000})
    assert f"{path} has 10000 characters" in msg and "--max-chars" not in msg


def test_the_command_line_refusal_is_one_line(tmp_path):
    path = write(tmp_path, "big.txt", "abcdefghij" * 1000)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "char-lm", "--data", path, "--max-chars",
                                      "300", "--threads", "1", "--out", str(out)])
    assert result.exit_code == 1
    err = result.stderr.strip()
    assert err.startswith(f"Error: --max-chars 300 keeps 300 characters of {path} (which")
    assert "\n" not in err and "Traceback" not in result.output
    assert not out.exists()
