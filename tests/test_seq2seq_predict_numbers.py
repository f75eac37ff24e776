"""seq2seq predict: --alpha nan/inf pass click's FloatRange(min=0) and reach the decoder's
ValueError ("internal error ... rerun with --debug"), and --beam / --max-len above 2**63
reach numpy's OverflowError (the same). One clear line each, as char-lm's --temperature."""
import random

import pytest
from helpers import invoke, ok, one_line_error


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2s")
    rng = random.Random(0)
    lines = []
    for _ in range(200):
        s = "".join(rng.choice("abcde") for _ in range(rng.randint(2, 6)))
        lines.append(s + "\t" + " ".join(s.upper()))
    (root / "pairs.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = root / "run"
    ok(invoke("train", "seq2seq", "--data", root / "pairs.tsv", "--steps", 2, "--hidden", 8,
              "--embed-dim", 4, "--threads", 1, "--quiet", "--no-plot", "--out", path))
    return path


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_alpha_must_be_finite(run, value):
    result = invoke("predict", run, "abc", "--alpha", value)
    one_line_error(result, "--alpha")
    assert "internal error" not in result.stderr


def test_alpha_must_be_finite_in_a_stream(run):
    from click.testing import CliRunner

    from recurrent.cli import cli
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--alpha", "nan"],
                                input="abc\n")
    one_line_error(result, "--alpha")
    assert "internal error" not in result.stderr


@pytest.mark.parametrize("option", ["--beam", "--max-len"])
def test_a_count_beyond_any_array_is_a_usage_error(run, option):
    result = invoke("predict", run, "abc", option, 10**20)
    one_line_error(result, option)
    assert "internal error" not in result.stderr


def test_ordinary_values_still_decode(run):
    ok(invoke("predict", run, "abc", "--beam", 3, "--alpha", 0.5, "--max-len", 5))
