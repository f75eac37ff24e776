"""An error message quoting user input that holds a line break or another control
character (a file name made with $'...', a pasted option value) stays one line with the
whole input in it: the character is written as its escape, not cut there, which would
name another file, nor sent to the terminal, which would act on it."""
import pytest
from helpers import invoke, one_line_error


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028", "\x1b[2K", "\b"])
def test_a_missing_run_whose_name_holds_a_control_character_is_named_whole(tmp_path, brk):
    run = tmp_path / f"no{brk}such"
    result = invoke("predict", run, "--length", 3)
    escaped = repr(brk)[1:-1]
    one_line_error(result, f"{tmp_path}/no{escaped}such", "does not exist")


def test_a_missing_data_file_with_a_line_break_in_its_name_is_named_whole(tmp_path):
    data = tmp_path / "my\ntext.txt"
    result = invoke("train", "char-lm", "--data", data, "--steps", 2, "--out", tmp_path / "r")
    one_line_error(result, "data file not found", "my\\ntext.txt")
    assert not (tmp_path / "r").exists()
