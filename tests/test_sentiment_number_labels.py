"""A label column mixing '1' and '1.0' (one number written two ways, as a spreadsheet or
pandas export with blanks may write it) trained a four-class model on two classes: each
real class split between two labels, its texts trained against each other, and eval's
accuracy and macro-F1 were scored over four classes. Refused in one line at training."""
from helpers import invoke, ok, one_line_error, write_reviews

SMALL = ("--ensemble", 1, "--steps", 2, "--hidden", 4, "--embed-dim", 4, "--threads", 1,
         "--quiet", "--no-plot")
GOOD = "good great lovely superb fine".split()
BAD = "bad awful dull boring poor".split()


def _rows(positive, negative):
    rows = []
    for i in range(40):
        rows.append((" ".join(GOOD[(i + k) % 5] for k in range(4)), positive[i % 2]))
        rows.append((" ".join(BAD[(i + k) % 5] for k in range(4)), negative[i % 2]))
    return rows


def test_one_number_written_two_ways_is_refused(tmp_path):
    data = write_reviews(tmp_path / "mixed.csv", _rows(("1", "1.0"), ("0", "0.0")))
    result = invoke("train", "sentiment", "--data", data, *SMALL, "--out", tmp_path / "run")
    one_line_error(result, "'0' and '0.0'", "write each class one way")
    assert not (tmp_path / "run").exists()


def test_numbers_written_one_way_still_train(tmp_path):
    data = write_reviews(tmp_path / "plain.csv", _rows(("1.0", "1.0"), ("0.0", "0.0")))
    ok(invoke("train", "sentiment", "--data", data, *SMALL, "--out", tmp_path / "run"))


def test_eval_data_with_the_run_s_numbers_written_another_way_names_them(tmp_path):
    """A run trained on '0' and '1' evaluated on a file that writes them '0.0' and '1.0'
    (a pandas float column): the refusal pairs each label with the run's."""
    data = write_reviews(tmp_path / "plain.csv", _rows(("1", "1"), ("0", "0")))
    ok(invoke("train", "sentiment", "--data", data, *SMALL, "--out", tmp_path / "run"))
    floats = write_reviews(tmp_path / "floats.csv", _rows(("1.0", "1.0"), ("0.0", "0.0")))
    one_line_error(invoke("eval", tmp_path / "run", "--data", floats),
                   "not trained on: '0.0', '1.0'",
                   "('0.0' for '0', '1.0' for '1': the same number written another way; "
                   "write it as the run's)")
    # labels that are not the run's numbers get no pairing
    other = write_reviews(tmp_path / "other.csv", _rows(("2", "2"), ("0", "0")))
    result = invoke("eval", tmp_path / "run", "--data", other)
    one_line_error(result, "not trained on: '2'")
    assert "another way" not in result.stderr
