"""`recurrent bench`: runs in a child process, checks agreement, reports rows and JSON."""
import json

import pytest
from click.testing import CliRunner

from recurrent.cli import cli


def _bench(*args):
    return CliRunner().invoke(cli, ["bench", *args], catch_exceptions=False)


def test_bench_alone_writes_rows_and_environment(tmp_path):
    out = tmp_path / "bench.json"
    result = _bench("--vs", "none", "--cell", "gru,rnn_tanh", "--config", "4,3,2,5",
                    "--threads", "1,auto", "--repeats", "2", "--mode", "infer", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "BLAS kernels:" in result.output
    payload = json.loads(out.read_text())
    rows = payload["rows"]
    assert [(r["cell"], r["threads"]) for r in rows] == [
        ("gru", 1), ("gru", "auto"), ("rnn_tanh", 1), ("rnn_tanh", "auto")]
    assert all(r["ours"]["median_ms"] > 0 and r["ours"]["calls"] >= 2 for r in rows)
    # the child runs without the variables that force OpenBLAS's AVX2 kernels
    assert payload["environment"]["env"] == {"OPENBLAS_CORETYPE": None,
                                             "OPENBLAS_L2_SIZE": None}


def test_bench_against_torch_checks_agreement_first():
    pytest.importorskip("torch", reason="torch not installed")
    result = _bench("--cell", "lstm", "--config", "5,2,3,4", "--threads", "1",
                    "--repeats", "2")
    assert result.exit_code == 0, result.output
    row = result.output.splitlines()[3].split()
    assert row[0] == "lstm" and float(row[-1]) > 0  # the ratio column


@pytest.mark.parametrize("args, message", [
    (["--config", "1,2,3"], "T,B,I,H"),
    (["--threads", "0"], "--threads"),
    (["--cell", "nope"], "unknown cell 'nope'"),
])
def test_bench_bad_options_give_one_line_errors(args, message):
    result = CliRunner().invoke(cli, ["bench", "--vs", "none", *args])
    assert result.exit_code == 1
    assert message in result.output


def test_bench_without_torch_says_how_to_get_it(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = CliRunner().invoke(cli, ["bench", "--cell", "lstm", "--config", "2,1,1,2"])
    assert result.exit_code == 1
    assert "torch is not installed" in result.output and "--vs none" in result.output
