"""`recurrent bench`: runs in a child process, checks agreement, reports rows and JSON;
the interleaved-round schedule behind its ratios."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import one_line_error

from recurrent.cli import cli
from recurrent_plugins.bench import BLAS_ENV, round_ratios, run_rounds


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
    # and says which kernel settings it ran with (the suite runs with tuning off)
    assert payload["environment"]["tuning"]["mode"] == "off"
    assert "kernel tuning: off, fixed defaults (RECURRENT_TUNE=off)" in result.output


def test_bench_against_torch_checks_agreement_first():
    pytest.importorskip("torch", reason="torch not installed")
    result = _bench("--cell", "lstm", "--config", "5,2,3,4", "--threads", "1",
                    "--repeats", "2")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("lstm ")).split()
    # the ratio column, then the spread of the per-round ratios
    assert row[0] == "lstm" and float(row[-2]) > 0 and row[-1].startswith("±")


def test_bench_ratio_is_the_median_of_the_per_round_ratios(tmp_path):
    pytest.importorskip("torch", reason="torch not installed")
    out = tmp_path / "bench.json"
    result = _bench("--cell", "rnn_tanh,gru", "--config", "6,2,3,4", "--threads", "1",
                    "--repeats", "3", "--rounds", "4", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "ratio = median over rounds" in result.output
    payload = json.loads(out.read_text())
    assert payload["spec"]["rounds"] == 4
    for row in payload["rows"]:
        ratios = row["round_ratios"]
        assert len(ratios) == 4 and all(r > 0 for r in ratios)
        assert row["ratio"] == pytest.approx(float(np.median(ratios)), rel=1e-12)
        q1, q3 = np.percentile(ratios, [25, 75])
        assert row["ratio_iqr"] == pytest.approx(q3 - q1, rel=1e-12, abs=1e-15)
        # every round times at least ceil(3 / 4) = 1 call per side
        assert row["ours"]["calls"] >= 4 and row["torch"]["calls"] >= 4
        assert row["max_rel_diff"] <= 1e-3 and row["agreement"] == "tolerance"


class FakeClock:
    """A clock that only moves when a fake call says how long it took."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_run_rounds_alternates_sides_and_skips_each_blocks_first_call():
    clock, calls = FakeClock(), []

    def side(name, base):
        count = [0]

        def call():
            count[0] += 1
            calls.append(name)
            clock.now += base + count[0]  # the n-th call of this side lasts base + n
        return call

    ours, torch = side("ours", 100.0), side("torch", 1000.0)
    timed = run_rounds([ours, torch], rounds=3, repeats=5, min_seconds=0.0, warmup=1,
                       clock=clock)
    # warm-up once each, then per round: ours block, torch block, each of
    # 1 untimed + ceil(5 / 3) = 2 timed calls
    block = ["ours"] * 3 + ["torch"] * 3
    assert calls == ["ours", "torch"] + block * 3
    # call numbers per side: 1 = warm-up; blocks are 2-4, 5-7, 8-10 with the first untimed
    assert timed[0] == [[103.0, 104.0], [106.0, 107.0], [109.0, 110.0]]
    assert timed[1] == [[1003.0, 1004.0], [1006.0, 1007.0], [1009.0, 1010.0]]
    assert round_ratios(*timed) == pytest.approx([103.5 / 1003.5, 106.5 / 1006.5,
                                                  109.5 / 1009.5])


def test_run_rounds_alone_times_one_side_per_round():
    clock, count = FakeClock(), [0]

    def ours():
        count[0] += 1
        clock.now += 1.0

    timed = run_rounds([ours], rounds=4, repeats=1, min_seconds=0.0, warmup=2, clock=clock)
    assert [len(block) for block in timed[0]] == [1, 1, 1, 1]
    assert count[0] == 2 + 4 * 2


@pytest.mark.parametrize("args, message", [
    (["--config", "1,2,3"], "T,B,I,H"),
    (["--threads", "0"], "--threads"),
    (["--cell", "nope"], "unknown cell 'nope'"),
])
def test_bench_bad_options_give_one_line_errors(args, message):
    result = CliRunner().invoke(cli, ["bench", "--vs", "none", *args])
    assert result.exit_code == 1
    one_line_error(result, message)


@pytest.mark.parametrize("config", ["1,1,1,99999999999999999999", "1,1,1,4000000000000000000"],
                         ids=["dimension", "bytes"])
def test_a_size_beyond_any_array_is_the_memory_error_not_an_internal_one(config):
    """Arrays numpy refuses to make (a dimension or a byte count above its largest) get
    the one-line answer of arrays that do not fit in memory."""
    result = _bench("--vs", "none", "--cell", "lstm", "--config", config, "--threads", "1",
                    "--repeats", "1", "--rounds", "1")
    assert result.exit_code == 1
    assert "not enough memory for the benchmark's arrays" in result.output, result.output
    assert "internal error" not in result.output and "ours ms" not in result.output


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_bench_bad_rounds_give_one_line_usage_errors(value):
    result = CliRunner().invoke(cli, ["bench", "--vs", "none", "--rounds", value])
    assert result.exit_code == 2  # click's usage error, printed as one line
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--rounds" in lines[0] and lines[0].startswith("Error:")


def test_bench_without_torch_says_how_to_get_it(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    result = CliRunner().invoke(cli, ["bench", "--cell", "lstm", "--config", "2,1,1,2"])
    assert result.exit_code == 1
    assert "torch is not installed" in result.output and "--vs none" in result.output
    # the pinned version's CPU build: from the package index itself it is the CUDA one
    assert "pip install torch==2.13.0 (its CPU build" in result.output
    assert "--index-url https://download.pytorch.org/whl/cpu)" in result.output


def test_bench_times_any_registered_cell_alone(tmp_path):
    """A plugin cell (the example package's, through its entry point) is timed alone,
    beside torch's comparison of the cells torch has; only an explicit --vs torch
    refuses it."""
    pytest.importorskip("recurrent_peephole", reason="examples/recurrent-peephole is not "
                        "installed (pip install -e examples/recurrent-peephole)")
    env = {k: v for k, v in os.environ.items() if k != "RECURRENT_NO_ENTRYPOINTS"}
    env.update(RECURRENT_PLUGINS="peephole", PYTHONSAFEPATH="1")

    def bench(*args):
        return subprocess.run([sys.executable, "-m", "recurrent", "bench", *args],
                              capture_output=True, text=True, env=env, cwd=tmp_path)

    out = tmp_path / "bench.json"
    result = bench("--vs", "none", "--cell", "peephole_lstm", "--config", "4,2,3,5",
                   "--threads", "1", "--repeats", "1", "--rounds", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    # --vs none asked for no torch side: no row says torch lacks its cell
    assert "torch has no such cell" not in result.stdout
    row = json.loads(out.read_text())["rows"][0]
    assert row["cell"] == "peephole_lstm" and row["ours"]["gflops"] > 0
    assert "torch" not in row
    result = bench("--vs", "torch", "--cell", "peephole_lstm", "--config", "4,2,3,5")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "Error: --cell peephole_lstm: no torch side to compare with (there is one for "
        "rnn_tanh, rnn_relu, lstm, gru, ln_lstm); time it alone with --vs none, or beside "
        "one of ours with --vs lstm (or any cell name)")

    # without --vs: torch beside the cells it has, the others alone, in one table
    pytest.importorskip("torch", reason="torch not installed")
    result = bench("--cell", "peephole_lstm,lstm", "--config", "4,2,3,5", "--threads", "1",
                   "--repeats", "1", "--rounds", "1", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = {row["cell"]: row for row in json.loads(out.read_text())["rows"]}
    assert "torch" not in rows["peephole_lstm"] and "ratio" not in rows["peephole_lstm"]
    assert rows["lstm"]["ratio"] > 0 and rows["lstm"]["max_rel_diff"] < 1e-3
    table = result.stdout.splitlines()
    assert any(line.startswith("peephole_lstm") and "timed alone" in line for line in table)
    assert any(line.startswith("lstm") and "timed alone" not in line for line in table)


def test_bench_compares_ln_lstm_with_its_equations_in_torch_ops(tmp_path):
    # torch.nn has no layer-normalised LSTM: the torch side is the same equations in
    # torch ops (what a torch user writes), checked to agree before timing
    pytest.importorskip("torch", reason="torch not installed")
    out = tmp_path / "bench.json"
    result = _bench("--cell", "ln_lstm,lstm", "--config", "5,3,4,6", "--threads", "1",
                    "--repeats", "2", "--rounds", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["cell"] for r in rows] == ["ln_lstm", "lstm"]
    assert all(r["max_rel_diff"] < 1e-5 and r["ratio"] > 0 for r in rows)


def test_agreement_allows_what_float32_rounding_itself_reaches(capfd):
    """ln_lstm normalises each step's recurrent product, which amplifies float32 rounding
    over the steps: at (200, 4, 16, 64) the two float32 sides differ by more than the fp32
    tolerance while each is as far from torch's float64 result. That is timed, with a note
    saying so; not refused as a wrong result."""
    pytest.importorskip("torch", reason="torch not installed")
    from recurrent_plugins.bench import TOLERANCE, Problem, check_agreement
    diff, agreement = check_agreement(Problem("ln_lstm", 200, 4, 16, 64), "infer", 1)
    assert diff > TOLERANCE["fp32"] and agreement == "float64"
    assert ("ln_lstm (200, 4, 16, 64), 1 thread(s): output differs from torch by"
            in capfd.readouterr().err)


def test_agreement_still_refuses_a_wrong_result():
    """A float32 result further from float64 than torch's float32 is: refused."""
    pytest.importorskip("torch", reason="torch not installed")
    import recurrent
    from recurrent_plugins.bench import Problem, check_agreement

    class OffByTenPercent(Problem):  # a kernel that is wrong by 10%
        def ours(self, mode, num_threads, precision="fp32"):
            run = super().ours(mode, num_threads, precision)
            return lambda: (run()[0] * 1.1, None)

    for name, size in (("ln_lstm", (200, 4, 16, 64)), ("lstm", (20, 3, 4, 8))):
        with pytest.raises(recurrent.UserError, match="output differs from torch"):
            check_agreement(OffByTenPercent(name, *size), "infer", 1)


def test_agreement_refuses_a_wrong_result_where_a_few_units_flip():
    """rnn_relu at (10, 4, 8, 16) beside torch's bf16: a few units' relu derivatives flip
    in bf16, so torch's dx is a quarter of its size from float64 at its largest
    difference, and our float32 dx is timed with a note. A dx wrong everywhere by half
    stays within that largest difference; it is refused, not timed."""
    pytest.importorskip("torch", reason="torch not installed")
    import recurrent
    from recurrent_plugins.bench import Problem, check_agreement

    class HalfDx(Problem):  # a backward that is wrong by half
        def ours(self, mode, num_threads, precision="fp32"):
            run = super().ours(mode, num_threads, precision)

            def train():
                out, dx = run()
                return out, dx * 0.5
            return train

    size = (10, 4, 8, 16)
    check_agreement(Problem("rnn_relu", *size), "train", 1, "bf16", "fp32")
    with pytest.raises(recurrent.UserError, match="dx differs from torch"):
        check_agreement(HalfDx("rnn_relu", *size), "train", 1, "bf16", "fp32")


def test_bench_times_a_cell_beside_another_of_ours(tmp_path):
    out = tmp_path / "bench.json"
    result = _bench("--cell", "ln_lstm,lstm", "--vs", "lstm", "--config", "5,4,3,6",
                    "--threads", "1", "--repeats", "2", "--rounds", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "ratio = median over rounds of cell/lstm block medians" in result.output
    assert "lstm ms" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [(r["cell"], r["baseline_cell"]) for r in rows] == [("ln_lstm", "lstm"),
                                                               ("lstm", "lstm")]
    for row in rows:
        assert "torch" not in row and row["baseline"]["median_ms"] > 0
        assert len(row["round_ratios"]) == 2
        assert row["ratio"] == pytest.approx(float(np.median(row["round_ratios"])))
    one_line = CliRunner().invoke(cli, ["bench", "--vs", "nope", "--cell", "lstm"])
    assert one_line.exit_code == 1
    assert "--vs: expected torch, none or a cell name; unknown cell 'nope'" in one_line.output


def test_bench_columns_line_up_under_a_long_vs_cell_name(tmp_path):
    """The other cell's ms figures end where their header ("rnn_tanh ms") ends."""
    out = tmp_path / "bench.json"
    result = _bench("--cell", "gru", "--vs", "rnn_tanh", "--config", "3,2,2,4", "--threads",
                    "1", "--repeats", "2", "--rounds", "2", "--json", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if line.startswith("cell "))
    end = header.index("rnn_tanh ms") + len("rnn_tanh ms")
    row_line = lines[lines.index(header) + 1]
    value = f"{json.loads(out.read_text())['rows'][0]['baseline']['median_ms']:.2f}"
    assert row_line[end - len(value):end] == value, (header, row_line)


@pytest.mark.parametrize("precision,mode,cells", [("bf16", "train", "rnn_tanh,gru"),
                                                  ("int8", "infer", "lstm,gru")])
def test_bench_against_torch_in_a_lower_precision(tmp_path, precision, mode, cells):
    """torch's bf16 autocast and int8 dynamic quantisation beside our float32: checked to
    agree within the lower precision's tolerance first, then timed, the precision and the
    dtype torch's output really had in the rows (autocast keeps a GRU in float32)."""
    pytest.importorskip("torch", reason="torch not installed")
    out = tmp_path / "bench.json"
    result = _bench("--cell", cells, "--config", "8,4,6,8", "--threads", "1",
                    "--repeats", "2", "--rounds", "2", "--mode", mode,
                    "--torch-precision", precision, "--json", str(out))
    assert result.exit_code == 0, result.output
    assert f"torch in {precision}, recurrent in fp32" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["cell"] for r in rows] == cells.split(",")
    for row in rows:
        assert row["torch_precision"] == precision and row["torch"]["median_ms"] > 0
        assert row["max_rel_diff"] <= 1e-1
    if precision == "bf16":
        assert [r["torch_output_dtype"] for r in rows] == ["bfloat16", "float32"]
        assert rows[0]["max_rel_diff"] > 1e-4  # bf16 really ran: not float32's agreement


def test_bench_bf16_lstm_runs_or_says_the_cpu_cannot():
    """torch's bf16 LSTM needs oneDNN's bf16 support: where the CPU lacks it, one line."""
    pytest.importorskip("torch", reason="torch not installed")
    result = _bench("--cell", "lstm", "--config", "8,4,6,8", "--threads", "1",
                    "--repeats", "1", "--rounds", "1", "--torch-precision", "bf16")
    if result.exit_code == 0:
        assert "torch in bf16" in result.output
    else:
        assert result.exit_code == 1 and "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and result.output.strip().endswith(errors[0])
        assert errors[0].startswith("Error: torch cannot run lstm train in bf16 on this CPU (")


def test_bench_lower_precision_refusals():
    one_line = [("--torch-precision", "int8"),  # int8 is for inference
                ("--torch-precision", "int8", "--mode", "infer", "--cell", "rnn_tanh"),
                ("--torch-precision", "bf16", "--vs", "none")]
    messages = []
    for args in one_line:
        result = _bench(*args, "--config", "4,2,3,4", "--threads", "1")
        assert result.exit_code == 1
        messages.append(result.output.strip())
    assert all(m.startswith("Error: --torch-precision") and "\n" not in m for m in messages)


@pytest.mark.parametrize("given, missing", [
    ((), "give --mode infer and --cell lstm,gru"),  # the default --cell has rnn_tanh
    (("--mode", "infer"), "(not rnn_tanh): give --cell lstm,gru"),
    (("--cell", "gru"), "give --mode infer")])
def test_bench_torch_int8_refusal_names_what_to_give(given, missing):
    """The refusal of --torch-precision int8 names the options the command lacks, and
    given them, it runs."""
    pytest.importorskip("torch", reason="torch not installed")
    args = ("--torch-precision", "int8", "--vs", "torch", "--config", "4,2,3,4",
            "--threads", "1", "--repeats", "1", "--rounds", "1", *given)
    result = _bench(*args)
    assert result.exit_code == 1 and missing in result.output, result.output
    advice = result.output.strip().rsplit(": give ", 1)[1].split(" and ")
    result = _bench(*args, *[word for option in advice for word in option.split()])
    assert result.exit_code == 0, result.output


def test_bench_our_int8_beside_our_fp32_and_torch_int8(tmp_path):
    """--precision int8: our int8 inference, checked against torch's int8 dynamic LSTM
    within int8's tolerance, timed in the same rounds as torch's and as our fp32."""
    pytest.importorskip("torch", reason="torch not installed")
    out = tmp_path / "bench.json"
    result = _bench("--cell", "lstm", "--config", "8,4,6,8", "--threads", "1",
                    "--repeats", "2", "--rounds", "2", "--mode", "infer", "--precision",
                    "int8", "--torch-precision", "int8", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "torch in int8, recurrent in int8" in result.output
    (row,) = json.loads(out.read_text())["rows"]
    assert row["precision"] == "int8" and 0 < row["max_rel_diff"] <= 1e-1
    assert row["fp32"]["median_ms"] > 0 and row["ratio_fp32"] > 0 and row["ratio"] > 0
    assert len(row["round_ratios"]) == 2


def test_bench_int8_is_for_inference():
    result = CliRunner().invoke(cli, ["bench", "--config", "4,2,3,5", "--precision", "int8"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --precision int8 is for inference: add --mode infer"


def test_bench_int8_beside_another_of_our_cells_runs_that_cell_in_int8_too(tmp_path):
    """--precision int8 --vs CELL: the baseline is one of ours, so it runs in int8 as
    well (the legend says "recurrent in int8"); a baseline without an int8 path (the
    example plugin's cell) is refused like a --cell without one."""
    args = ("--cell", "lstm", "--config", "4,2,3,5", "--threads", "1", "--repeats", "1",
            "--rounds", "1", "--mode", "infer", "--precision", "int8")
    for baseline in ("gru", "ln_lstm"):
        out = tmp_path / f"{baseline}.json"
        result = _bench(*args, "--vs", baseline, "--json", str(out))
        assert result.exit_code == 0, result.output
        (row,) = json.loads(out.read_text())["rows"]
        assert row["baseline_cell"] == baseline and row["precision"] == "int8"
        assert row["baseline"]["median_ms"] > 0 and row["fp32"]["median_ms"] > 0
    pytest.importorskip("recurrent_peephole",
                        reason="the example plugin recurrent-peephole is not installed")
    from test_example_plugin import _recurrent
    refused = _recurrent("bench", *args, "--vs", "peephole_lstm", cwd=tmp_path)
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout
    assert refused.stderr == ("Error: --precision int8: cell 'peephole_lstm' has no int8 "
                              "path\n")


def test_bench_baseline_gflops_count_the_baseline_cells_own_gates(tmp_path):
    """--vs CELL: each side's GFLOP/s is its own cell's work (lstm: 4 gates beside
    rnn_tanh's 1), not the timed cell's for both."""
    from recurrent_plugins.bench import Problem
    out = tmp_path / "bench.json"
    size = (4, 3, 2, 5)
    result = _bench("--cell", "rnn_tanh", "--vs", "lstm", "--config", ",".join(map(str, size)),
                    "--threads", "1", "--repeats", "1", "--rounds", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["rows"]
    work = {side: row[side]["gflops"] * row[side]["median_ms"] * 1e6
            for side in ("ours", "baseline")}
    assert work["ours"] == pytest.approx(Problem("rnn_tanh", *size).flops("train"))
    assert work["baseline"] == pytest.approx(Problem("lstm", *size).flops("train"))
    assert work["baseline"] == pytest.approx(4 * work["ours"])


def test_bench_refuses_an_unwritable_json_path_before_running(tmp_path):
    from helpers import one_line_error
    for path, reason in ((tmp_path / "missing" / "bench.json", "No such file or directory"),
                         (tmp_path, "is a directory")):
        result = _bench("--vs", "none", "--cell", "rnn_tanh", "--config", "2,1,1,2",
                        "--threads", "1", "--repeats", "1", "--rounds", "1",
                        "--json", str(path))
        one_line_error(result, f"--json {path}", reason)
        assert "BLAS kernels:" not in result.output  # refused before the benchmark ran
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_bench_refuses_a_json_link_into_a_read_only_folder_before_running(tmp_path):
    """--json names a symbolic link to an earlier result: the result replaces the file the
    link names, so a read-only folder of that file is refused before the benchmark runs,
    not after it, when its results would be lost."""
    from helpers import installed_env, read_only_run
    kept, links = tmp_path / "kept", tmp_path / "links"
    kept.mkdir()
    links.mkdir()
    args = ["--vs", "none", "--cell", "rnn_tanh", "--config", "2,1,1,2", "--threads", "1",
            "--repeats", "1", "--rounds", "1"]
    assert _bench(*args, "--json", kept / "bench.json").exit_code == 0
    before = (kept / "bench.json").read_bytes()
    (links / "bench.json").symlink_to(kept / "bench.json")
    result = read_only_run(kept, [sys.executable, "-m", "recurrent", "bench", *args,
                                  "--json", links / "bench.json"], installed_env())
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert result.stderr.strip().splitlines() == [
        f"Error: --json {links / 'bench.json'}: cannot write there "
        f"({'Read-only file system' if os.geteuid() == 0 else 'Permission denied'})"]
    assert (kept / "bench.json").read_bytes() == before
    assert sorted(os.listdir(kept)) == ["bench.json"]
    assert sorted(os.listdir(links)) == ["bench.json"]


def test_bench_refuses_an_empty_json_path_before_running(tmp_path, monkeypatch):
    """`--json ""` (a script's unset variable) names no file: refused in one line before
    the benchmark runs, not a run whose results go nowhere."""
    from helpers import one_line_error
    monkeypatch.chdir(tmp_path)
    result = _bench("--vs", "none", "--cell", "rnn_tanh", "--config", "2,1,1,2",
                    "--threads", "1", "--repeats", "1", "--rounds", "1", "--json", "")
    one_line_error(result, "--json is empty: give a path")
    assert "BLAS kernels:" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_sigterm_to_bench_stops_its_measuring_process_too(tmp_path):
    """`kill PID` of `recurrent bench` (a job scheduler's or `timeout`'s SIGTERM to that
    process alone) leaves as a Ctrl-C does, "Aborted." and exit status 143, and stops
    the measuring child instead of leaving it running with no one to read its rows."""
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err:
        bench = subprocess.Popen(
            [sys.executable, "-m", "recurrent", "bench", "--vs", "none", "--cell", "lstm",
             "--config", "50,64,256,256", "--threads", "1", "--rounds", "50", "--repeats",
             "200"], stdout=subprocess.PIPE, stderr=err, text=True, cwd=tmp_path)
    for line in bench.stdout:  # the legend follows the child's first message
        if line.startswith("mode train"):
            break
    with open(f"/proc/{bench.pid}/task/{bench.pid}/children") as f:
        (child,) = f.read().split()
    try:
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(timeout=60) == 128 + signal.SIGTERM
        assert not os.path.exists(f"/proc/{child}")  # stopped and reaped
    finally:
        if os.path.exists(f"/proc/{child}"):
            os.kill(int(child), signal.SIGKILL)
        bench.stdout.close()
    lines = err_path.read_text().strip().splitlines()
    assert lines[-1] == "Aborted." and "Traceback" not in "\n".join(lines)


@pytest.mark.parametrize("signum, to_group, error", [
    (signal.SIGINT, True, "interrupted (Ctrl-C)"),
    (signal.SIGTERM, False, "terminated (SIGTERM)")])
def test_bench_json_keeps_the_rows_measured_before_a_ctrl_c_or_sigterm(
        tmp_path, signum, to_group, error):
    """A sitting stopped by a Ctrl-C at the terminal (the whole process group) or a
    scheduler's SIGTERM (to bench alone) writes the rows it measured to --json, with the
    error saying how it stopped, as a sitting that fails does; it still ends "Aborted."
    with 128 + the signal."""
    from helpers import installed_env
    out = tmp_path / "bench.json"
    bench = subprocess.Popen(
        [sys.executable, "-m", "recurrent", "bench", "--vs", "none", "--cell", "rnn_tanh",
         "--config", "2,1,1,2", "--config", "400,32,128,256", "--threads", "1",
         "--rounds", "1", "--repeats", "3000", "--json", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        start_new_session=True, env=installed_env())
    try:
        for line in bench.stdout:  # the first size's row: the second one is being measured
            if line.startswith("rnn_tanh "):
                break
        if to_group:
            os.killpg(bench.pid, signum)
        else:
            bench.send_signal(signum)
        rest, err = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
    assert bench.returncode == 128 + signum, err
    assert [line for line in err.splitlines() if line.strip()] == ["Aborted."]
    assert f"wrote the 1 row measured to {out}" in rest
    written = json.loads(out.read_text())
    assert [(r["cell"], r["T"]) for r in written["rows"]] == [("rnn_tanh", 2)]
    assert written["error"] == error and written["spec"]["configs"][1] == [400, 32, 128, 256]


def test_bench_json_write_failure_is_a_user_error(tmp_path):
    """The file is written after the run: if its directory went away meanwhile (or the
    disk filled up), a one-line UserError, not an internal error; no temporary file."""
    import recurrent
    from recurrent_plugins.bench import _write_json
    gone = tmp_path / "gone"
    with pytest.raises(recurrent.UserError, match=r"--json .*bench\.json: cannot write there "
                                                  r"\(No such file or directory\)"):
        _write_json(str(gone / "bench.json"), {"rows": []})
    target = tmp_path / "bench.json"
    target.mkdir()  # os.replace cannot put a file over a directory
    with pytest.raises(recurrent.UserError, match="cannot write there"):
        _write_json(str(target), {"rows": []})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


def test_bench_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """As every file the CLI writes: synced before it takes the name, and a Ctrl-C at the
    rename leaves neither the file nor its temporary one."""
    import os

    from recurrent_plugins.bench import _write_json
    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    _write_json(str(tmp_path / "a.json"), {"rows": [1]})
    assert synced and json.loads((tmp_path / "a.json").read_text()) == {"rows": [1]}

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _write_json(str(tmp_path / "b.json"), {"rows": []})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_bench_json_keeps_the_rows_measured_before_a_failure(tmp_path, monkeypatch):
    # The child's real lines for one row are replayed, then it reports an error (as a
    # torch disagreement at a later size would): the row measured is written, not lost.
    import recurrent_plugins.bench as bench
    spec = {"cells": ["rnn_tanh"], "configs": [[2, 1, 1, 2]], "threads": [1], "mode": "infer",
            "vs": "none", "repeats": 1, "rounds": 1, "torch_precision": "fp32",
            "precision": "fp32"}
    child = subprocess.run([sys.executable, "-m", "recurrent_plugins.bench", json.dumps(spec)],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env={**os.environ, "PYTHONSAFEPATH": "1"})
    lines = child.stdout.splitlines(keepends=True)
    assert [json.loads(line)["kind"] for line in lines] == ["environment", "row"], child.stderr
    failure = json.dumps({"kind": "error", "message": "torch disagrees at 4,2,2,4"}) + "\n"

    class Replay:
        stdout = iter(lines + [failure])
        returncode = 1

        def __init__(self, *args, **kwargs):
            pass

        def wait(self):
            return 1

    monkeypatch.setattr(bench.subprocess, "Popen", Replay)
    path = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--vs", "none", "--cell", "rnn_tanh",
                                      "--config", "2,1,1,2", "--threads", "1", "--mode",
                                      "infer", "--repeats", "1", "--rounds", "1", "--json",
                                      str(path)])
    assert result.exit_code == 1 and "torch disagrees at 4,2,2,4" in result.stderr
    written = json.loads(path.read_text())
    assert len(written["rows"]) == 1 and written["error"] == "torch disagrees at 4,2,2,4"


def test_bench_json_keeps_a_file_that_is_not_an_earlier_result(tmp_path):
    """--json replaced whatever file it named; now only an earlier result (the user's data
    file or a run's config.json stays, and the benchmark does not start)."""
    mine = tmp_path / "data.json"
    mine.write_text('{"rows_of_mine": [1, 2]}\n', encoding="utf-8")
    result = _bench("--vs", "none", "--config", "4,2,3,5", "--threads", "1",
                    "--repeats", "1", "--rounds", "1", "--json", str(mine))
    assert result.exit_code == 1
    one_line_error(result, "not an earlier bench result")
    assert mine.read_text(encoding="utf-8") == '{"rows_of_mine": [1, 2]}\n'


def test_bench_json_refuses_a_named_pipe_without_opening_it(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    result = _bench("--vs", "none", "--config", "4,2,3,5", "--threads", "1", "--json",
                    str(fifo))
    assert result.exit_code == 1
    one_line_error(result, "not a regular file")


def test_a_size_that_cannot_be_allocated_prints_no_table(tmp_path, monkeypatch):
    """The one-line memory error of the measuring process (a size the check before it
    lets through: here the check finds no memory size) comes without the columns' header
    of a table that has no row; the environment lines still come first."""
    import recurrent_plugins.bench as bench
    monkeypatch.setattr(bench, "physical_memory", lambda: None)
    result = _bench("--vs", "none", "--cell", "rnn_tanh", "--config", "99999999999,1,1,1",
                    "--threads", "1", "--repeats", "1", "--rounds", "1")
    assert result.exit_code != 0
    assert "BLAS kernels:" in result.output and "ours ms" not in result.output
    assert "not enough memory for the benchmark's arrays" in result.output


def test_bench_json_is_never_written_inside_a_run_directory(tmp_path):
    """A new --json file inside a run directory is refused too, not only the run's own
    files: once written it would be a file of the run, which no later --json may replace."""
    from helpers import one_line_error
    run = tmp_path / "run"
    (run / "member-0").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(
        {"task": "char-lm", "config": {}, "task_state": {}, "model_spec": {}}))
    for path in (run / "bench.json", run / "member-0" / "bench.json"):
        result = _bench("--vs", "none", "--cell", "rnn_tanh", "--config", "2,1,1,2",
                        "--threads", "1", "--repeats", "1", "--rounds", "1",
                        "--json", str(path))
        one_line_error(result, f"--json {path} is inside the run directory {run}")
        assert "BLAS kernels:" not in result.output and not path.exists()


def test_bench_refuses_a_config_larger_than_the_memory_before_starting(monkeypatch):
    """A --config whose arrays alone exceed this computer's memory is refused in one line
    before the measuring process starts (which could otherwise be killed by the kernel
    mid-allocation, or push the machine into swap)."""
    from helpers import one_line_error
    import recurrent_plugins.bench as bench
    monkeypatch.setattr(bench, "physical_memory", lambda: 8 * 2**30)
    result = _bench("--cell", "lstm", "--config", "1000,1000,1000,1000", "--threads", "1")
    one_line_error(result, "not enough memory for the benchmark's arrays",
                   "--config 1000,1000,1000,1000", "this computer has 8.0 GiB")
    assert "BLAS kernels:" not in result.output
    # the bound counts what the problem holds: parameters, x, d_out and the outputs
    size = (1000, 1000, 1000, 1000)
    assert bench.least_bytes("lstm", size, "infer", False) >= 4 * 10**9 * 3


def test_bench_json_records_the_cpu_versions_and_thread_counts_of_each_side(
        tmp_path, monkeypatch):
    """The JSON says what ran: the CPU model, library versions, the thread count each side
    ran with (for auto, what each library chose), and which OPENBLAS variables the
    measuring process ran without."""
    pytest.importorskip("torch", reason="torch not installed")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    out = tmp_path / "bench.json"
    result = _bench("--cell", "rnn_tanh", "--config", "4,8,3,5", "--threads", "1,auto",
                    "--repeats", "1", "--rounds", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    # OPENBLAS_CORETYPE too where the machine sets it (it is left in the tests' environment)
    unset = {k: os.environ[k] for k in BLAS_ENV if k in os.environ}
    assert unset["OPENBLAS_L2_SIZE"] == "1048576"
    listed = ", ".join(f"{k}={v}" for k, v in unset.items())
    assert f"unset for the measurement (--keep-blas-env keeps them): {listed}\n" \
        in result.output
    payload = json.loads(out.read_text())
    env = payload["environment"]
    for key in ("cpu", "cpu_id", "isa", "cores", "python", "numpy", "scipy",
                "threadpoolctl", "torch", "recurrent", "blas", "vector_code"):
        assert env[key] is not None, key
    assert env["cpu"] and f"CPU: {env['cpu']}" in result.output
    assert payload["spec"]["blas_env_unset"] == unset
    assert payload["spec"]["keep_blas_env"] is False
    import torch
    for row in payload["rows"]:
        assert isinstance(row["ours_threads"], int) and row["ours_threads"] >= 1
        if row["threads"] == "auto":
            assert row["torch_threads"] == torch.get_num_threads()  # torch's own default
        else:
            assert row["ours_threads"] == row["torch_threads"] == row["threads"]


def test_bench_keep_blas_env_says_which_values_the_measurement_ran_with(
        tmp_path, monkeypatch):
    """With --keep-blas-env the OPENBLAS variables choose the BLAS kernels the bench
    prints: the output names them, as it names the ones it unsets without it."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    out = tmp_path / "bench.json"
    result = _bench("--cell", "rnn_tanh", "--vs", "none", "--config", "4,8,3,5",
                    "--threads", "1", "--repeats", "1", "--rounds", "1", "--keep-blas-env",
                    "--json", str(out))
    assert result.exit_code == 0, result.output
    assert ("kept for the measurement (--keep-blas-env): OPENBLAS_CORETYPE=Haswell, "
            "OPENBLAS_L2_SIZE=1048576\n") in result.output
    assert "unset for the measurement" not in result.output
    payload = json.loads(out.read_text())
    assert payload["environment"]["env"] == {"OPENBLAS_CORETYPE": "Haswell",
                                             "OPENBLAS_L2_SIZE": "1048576"}
    assert payload["spec"]["blas_env_unset"] == {}


@pytest.mark.parametrize("above_cores", [False, True], ids=["capped", "above-cores"])
def test_bench_sgemm_rate_of_an_auto_row_runs_on_the_threads_our_default_may_use(
        tmp_path, monkeypatch, above_cores):
    """A row's sgemm rate is measured on the thread count the row's sides may use: for
    auto the most threads recurrent's default takes, not every core, which would put a
    rate no side could reach beside the row. RECURRENT_NUM_THREADS caps it; above the
    cores it raises the ceiling, yet the default never takes more threads than the
    cores (resolve_threads), so the rate is then the cores'."""
    from recurrent.threads import available_cores
    cores = available_cores()
    monkeypatch.setenv("RECURRENT_NUM_THREADS", str(cores + 3 if above_cores else 1))
    auto = cores if above_cores else 1
    out = tmp_path / "bench.json"
    result = _bench("--cell", "rnn_tanh", "--vs", "none", "--config", "4,8,3,5",
                    "--threads", "auto,2", "--repeats", "1", "--rounds", "1",
                    "--json", str(out))
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())["rows"]
    assert {row["threads"]: row["sgemm_threads"] for row in rows} == {"auto": auto, 2: 2}
    assert f"sgemm 1024^3 in this run, GFLOP/s: auto ({auto}) thread(s) " in result.output


@pytest.mark.parametrize("args, message", [
    (["--threads", "1.5"], "--threads: expected comma-separated thread counts"),
    (["--config", "a,b,c,d"], "--config: expected T,B,I,H (four positive ints)"),
    (["--threads", "1,,2"], "--threads: expected comma-separated thread counts"),
    (["--config", "16,,32,64,128"], "--config: expected T,B,I,H (four positive ints)"),
    (["--cell", "lstm,"], "--cell: expected"),
])
def test_bench_malformed_lists_say_what_is_expected(args, message):
    from helpers import one_line_error
    one_line_error(CliRunner().invoke(cli, ["bench", "--vs", "none", *args]), message)


def test_bench_help_names_the_default_sizes():
    """--help lists the sizes a run without --config times, as T,B,I,H."""
    from recurrent_plugins.bench import DEFAULT_CONFIGS
    result = CliRunner().invoke(cli, ["bench", "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    help_text = " ".join(result.output.split())
    assert "issue" not in help_text
    for config in DEFAULT_CONFIGS:
        assert ",".join(map(str, config)) in help_text


def _documented_json_names():
    """The names benchmarks/README.md's `--json FILE` section puts in backticks."""
    import re
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "benchmarks", "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("`recurrent bench --json FILE` writes")
    section = text[start:text.index("\n## ", start)]
    return set(re.findall(r"`([A-Za-z_0-9]+)`", section))


@pytest.mark.parametrize("args", [
    ("--cell", "gru", "--vs", "lstm"),
    ("--cell", "lstm", "--vs", "none", "--mode", "infer", "--precision", "int8"),
])
def test_bench_json_writes_only_documented_keys(tmp_path, args):
    # every key of the --json file is one benchmarks/README.md describes
    out = tmp_path / "bench.json"
    result = _bench(*args, "--config", "3,2,3,4", "--threads", "1", "--repeats", "1",
                    "--rounds", "1", "--json", str(out))
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    written = set(payload) | set(payload["spec"]) | set(payload["environment"])
    for row in payload["rows"]:
        written |= set(row)
    assert written - _documented_json_names() == set()
