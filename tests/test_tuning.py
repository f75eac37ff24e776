"""Kernel tuning (recurrent/tuning.py, recurrent/_kernels/tuning.pyx): every setting keeps
results bitwise equal across thread counts and close to the reference cells; the cache
file round-trips, is written atomically and is ignored (one line) when corrupt or made
for another machine or version; RECURRENT_TUNE=off and `recurrent tune --off` keep the
fixed defaults; `recurrent tune` and `recurrent info`.

Legend: T time, B batch, I input, H hidden.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import (file_size_limit, installed_env, invoke, ok, one_line_error,
                     read_only_run, tiny_text, train_tiny)

from recurrent import tuning
from recurrent.export import safetensors as st
from recurrent.layers import GRU, LSTM
from recurrent.plugins import get_cell
from recurrent.reference import get_reference_cell
from recurrent.tuning import Decision, Workload

CELLS = ("lstm", "gru", "rnn_tanh", "rnn_relu")
TOL = dict(rtol=1e-4, atol=2e-5)
# T * B = 200 rows: row blocks of 16 to 64 rows; H = 80: LSTM's G = 320 gate rows cut into
# 128- or 160-row gradient blocks; B = 20 on either side of the LSTM in-tile thresholds.
SIZE = (10, 20, 24, 80)
# one small decision, so that tests of the mechanism tune in well under a second
TINY = (Decision("row_parts", (8, 16), (Workload("gru", True, 4, 4, 8, 16),
                                        Workload("lstm", False, 4, 4, 8, 16))),)


@pytest.fixture
def tuning_on(monkeypatch, tmp_path):
    """Tuning on, with an empty cache directory of this test; defaults again afterwards."""
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RECURRENT_TUNE", "on")
    tuning.reset()
    yield tmp_path
    tuning.reset()


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(tuning, "DECISIONS", TINY)
    monkeypatch.setattr(tuning, "AUTO_BUDGET", 0.05)


@pytest.fixture
def settings_restored():
    yield
    tuning.reset()


def _problem(name, T, B, I, H, seed=0):  # noqa: E741
    cell = get_cell(name)
    rng = np.random.default_rng(seed)
    params = {k: np.zeros(s, np.float32) for k, s in cell.param_shapes(I, H).items()}
    cell.init_params(params, H, rng)
    x = rng.normal(size=(T, B, I)).astype(np.float32)
    states = tuple(rng.normal(scale=0.5, size=(B, H)).astype(np.float32)
                   for _ in cell.state_names)
    d_out = rng.normal(size=(T, B, H)).astype(np.float32)
    d_finals = tuple(rng.normal(size=(B, H)).astype(np.float32) for _ in cell.state_names)
    lengths = rng.integers(1, T + 1, size=B).astype(np.int64)
    lengths[0] = T
    return params, x, states, d_out, d_finals, lengths


def _run(cell, params, x, states, d_out, d_finals, lengths, num_threads):
    """Training (forward + backward) and inference results, as a flat dict."""
    out, finals, cache = cell.forward(x, states, params, lengths, num_threads)
    result = {"out": np.array(out)}
    result.update({f"final_{i}": np.array(f) for i, f in enumerate(finals)})
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dx, d_states = cell.backward(d_out, d_finals, cache, grads, num_threads)
    result["dx"] = dx
    result.update({f"d_state_{i}": d for i, d in enumerate(d_states)})
    result.update({f"grad_{k}": g for k, g in grads.items()})
    if hasattr(cell, "infer"):
        out, finals = cell.infer(x, states, params, lengths, num_threads)
        result["infer_out"] = np.array(out)
        result.update({f"infer_final_{i}": np.array(f) for i, f in enumerate(finals)})
    return result


def _candidate_settings():
    """Every candidate of every decision, with the other settings at their defaults, and
    the extremes the checks allow: the LSTM input part always / never in the tile, one
    inference step per chunk."""
    out = [{d.name: c} for d in tuning.DECISIONS for c in d.candidates]
    out += [{"lstm_in_tile_min_rows": 1, "row_parts": 1, "max_gate_block": 16,
             "infer_chunk_bytes": 4096},
            {"lstm_in_tile_min_rows": 1 << 40, "row_parts": 200}]
    # min_parallel_flops 0: the small problems here still run on two threads
    return [{"min_parallel_flops": 0, **s} if "min_parallel_flops" not in s else s
            for s in out]


SETTINGS = _candidate_settings()


def test_the_defaults_are_the_fixed_constants_and_tuning_off_uses_them(settings_restored):
    assert tuning.defaults() == {"lstm_in_tile_min_rows": 4, "row_parts": 16,
                                 "max_gate_block": 256, "infer_chunk_bytes": 4 << 20,
                                 "min_parallel_flops": 20_000_000}
    tuning.reset()
    layer = LSTM(3, 8, seed=0)
    layer(np.ones((2, 5, 3), np.float32))    # the first kernel call decides
    status = tuning.status()
    assert status["mode"] == "off" and status["note"] == "RECURRENT_TUNE=off"
    assert tuning.current() == tuning.defaults()
    assert not os.path.exists(os.path.join(os.environ["RECURRENT_CACHE_DIR"], "tuning"))


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(
    f"{k}={v}" for k, v in s.items() if k != "min_parallel_flops" or v))
@pytest.mark.parametrize("name", CELLS)
def test_every_candidate_matches_the_reference_and_is_bitwise_equal_across_threads(
        name, settings, settings_restored):
    problem = _problem(name, *SIZE)
    want = _run(get_reference_cell(name), *problem, num_threads=1)
    tuning._kernels().apply(settings)
    one = _run(get_cell(name), *problem, num_threads=1)
    two = _run(get_cell(name), *problem, num_threads=2)
    for key in one:
        np.testing.assert_array_equal(two[key], one[key], err_msg=key)
        np.testing.assert_allclose(one[key], want[key.replace("infer_", "")], err_msg=key,
                                   **TOL)


def test_a_tuned_layer_gives_the_same_bits_at_1_and_2_threads(tuning_on, tiny):
    # a real (tiny) tune, then a layer trained on its settings at 1 and 2 threads
    settings, _, path = tuning.tune_and_store(0.05, num_threads=2)
    tuning.reset()
    x = np.random.default_rng(3).normal(size=(12, 9, 5)).astype(np.float32)
    results = []
    for threads in (1, 2):
        layer = GRU(5, 24, num_layers=2, seed=1, num_threads=threads)
        out, h = layer(x)
        dx, _ = layer.backward(np.ones_like(out))
        results.append((out, h, dx, layer.grads()))
        assert tuning.status()["mode"] == "cache" and tuning.current() == settings
    (out1, h1, dx1, g1), (out2, h2, dx2, g2) = results
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(h1, h2)
    np.testing.assert_array_equal(dx1, dx2)
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key], err_msg=key)


def test_the_cache_round_trips_and_the_first_kernel_call_loads_it(tuning_on):
    path = tuning.cache_path()
    assert path.startswith(str(tuning_on))
    chosen = dict(tuning.defaults(), row_parts=8, max_gate_block=512)
    tuning.write_cache(path, chosen, {"threads": 1})
    assert tuning.read_cache(path) == chosen
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    assert tuning.current() == chosen
    status = tuning.status()
    assert status["mode"] == "cache" and status["path"] == path


def test_the_first_kernel_call_tunes_once_and_stores_the_result(tuning_on, tiny, capfd):
    path = tuning.cache_path()
    assert tuning.status()["mode"] == "pending"   # info does not tune
    assert not os.path.exists(path)
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    stored = tuning.read_cache(path)
    assert tuning.current() == stored and tuning.status()["mode"] == "cache"
    assert capfd.readouterr().err == ""           # the automatic run is silent
    with open(path) as f:
        data = json.load(f)
    assert data["key"] == tuning.machine_key()
    assert [d["name"] for d in data["decisions"]] == ["row_parts"]
    mtime = os.stat(path).st_mtime_ns
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    assert os.stat(path).st_mtime_ns == mtime     # once per process


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"settings": {"row_parts": 8}}',
                                     "\x00\xff"], ids=["syntax", "list", "no-key", "binary"])
def test_a_corrupt_cache_is_ignored_with_one_line_and_tuned_again(tuning_on, tiny, capfd,
                                                                   content):
    path = tuning.cache_path()
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="latin-1") as f:
        f.write(content)
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "ignoring the tuning cache" in err and path in err
    assert "Traceback" not in err
    assert tuning.read_cache(path) == tuning.current()   # replaced by a good one


@pytest.mark.parametrize("field, value", [("recurrent", "0.0.1"), ("cpu", "Other CPU 9000"),
                                          ("isa", ["sse4_2"]),
                                          ("cpu_id", {"cpu family": "25", "model": "1"})])
def test_a_cache_for_another_machine_or_version_is_ignored(tuning_on, field, value, capfd):
    path = tuning.cache_path()
    tuning.write_cache(path, dict(tuning.defaults(), row_parts=4), {})
    with open(path) as f:
        data = json.load(f)
    data["key"][field] = value
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.raises(tuning.CacheError, match="another CPU or recurrent version"):
        tuning.read_cache(path)
    status = tuning.status()
    assert status["mode"] == "pending" and tuning.current() == tuning.defaults()
    assert capfd.readouterr().err.count("\n") == 1


def test_cpus_sharing_a_model_string_are_told_apart_by_family_and_model(tmp_path):
    """A virtual machine's CPUs may all read "Intel(R) Xeon(R) Processor" (or ARM's none):
    /proc/cpuinfo's family, model and stepping (ARM: implementer, part) go into the key."""
    def cpuinfo(name, model):
        path = tmp_path / name
        path.write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n"
                        f"model\t\t: {model}\nmodel name\t: Intel(R) Xeon(R) Processor\n"
                        f"stepping\t: 1\nflags\t\t: fpu sse4_2 avx2 fma avx512f\n\n"
                        f"processor\t: 1\nmodel\t\t: 99\n")
        return tuning._cpu(str(path))
    a, b = cpuinfo("a", 143), cpuinfo("b", 167)
    assert a[0] == b[0] == "Intel(R) Xeon(R) Processor" and a[1] == ["sse4_2", "avx2", "fma",
                                                                      "avx512f"]
    assert a[2] == {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "143",
                    "stepping": "1"} and b[2]["model"] == "167"  # the first CPU's fields
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
                   "CPU part\t: 0xd0c\n")
    assert tuning._cpu(str(arm))[2] == {"CPU implementer": "0x41", "CPU part": "0xd0c"}
    assert tuning.machine_key()["cpu_id"] == tuning._cpu()[2]


def test_out_of_range_settings_are_refused_and_change_nothing(settings_restored):
    kernels = tuning._kernels()
    for bad in ({"row_parts": 0}, {"nope": 3}, {"max_gate_block": 2.5}):
        with pytest.raises(ValueError):
            kernels.apply(bad)
        assert kernels.current() == tuning.defaults()


def test_tune_off_keeps_the_defaults_even_with_a_cache(tuning_on):
    path = tuning.cache_path()
    tuning.write_cache(path, dict(tuning.defaults(), row_parts=8), {})
    assert "kernel tuning is off" in ok(invoke("tune", "--off"))
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    assert tuning.status()["mode"] == "off" and tuning.current() == tuning.defaults()
    assert "tuning      off" in ok(invoke("info"))
    assert "cache in use" in ok(invoke("tune", "--on"))
    tuning.reset()
    LSTM(3, 8, seed=0)(np.ones((2, 5, 3), np.float32))
    assert tuning.current()["row_parts"] == 8


def test_the_tune_command_writes_the_cache_atomically(tuning_on):
    path = tuning.cache_path()
    tuning.write_cache(path, tuning.defaults(), {})
    before = os.stat(path).st_ino
    result = invoke("tune", "--budget", "0.01", "--threads", "1")
    out = ok(result)
    assert "lstm_in_tile_min_rows" in out and f"wrote {path}" in out
    assert "tuning lstm_in_tile_min_rows" in result.stderr        # progress on stderr
    assert "skipped" in out                                        # the budget was spent
    # a new file renamed over the old one, no temporary left behind
    assert os.stat(path).st_ino != before
    assert sorted(os.listdir(os.path.dirname(path))) == sorted(
        [os.path.basename(path), os.path.basename(path) + ".lock"])
    with open(path) as f:
        data = json.load(f)
    assert data["threads"] == 1 and data["settings"] == tuning.read_cache(path)
    info = ok(invoke("info"))
    assert f"cache in use: {path}" in info


def test_tune_json_prints_what_it_wrote_and_the_settings_runs_then_use(tuning_on, tiny,
                                                                       tmp_path):
    """`tune --json`: stdout is one JSON document (the progress stays on stderr) naming the
    file written, the settings stored there, the defaults and each decision; a run
    started afterwards records those settings."""
    result = invoke("tune", "--budget", "0.05", "--threads", "1", "--json")
    report = json.loads(ok(result))
    assert "tuning row_parts" in result.stderr
    path = tuning.cache_path()
    assert report["path"] == path and report["threads"] == 1 and report["in_use"]
    assert report["settings"] == tuning.read_cache(path)
    assert report["defaults"] == tuning.defaults()
    assert [d["name"] for d in report["decisions"]] == ["row_parts"]
    assert report["decisions"][0]["chosen"] == report["settings"]["row_parts"]
    tuning.reset()
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    with open(run / "config.json") as f:
        kernel = json.load(f)["kernel"]
    assert kernel == {name: report["settings"][name] for name in tuning.RESULT_SETTINGS}


@pytest.mark.parametrize("args, fragment", [
    (["--budget", "0"], "--budget"), (["--budget", "inf"], "--budget"),
    (["--budget", "nan"], "--budget"), (["--threads", "0"], "--threads"),
    (["--off", "--budget", "3"], "--on/--off"), (["--on", "--json"], "--on/--off")])
def test_the_tune_command_refuses_bad_options_in_one_line(tuning_on, args, fragment):
    one_line_error(invoke("tune", *args), fragment)


def test_tune_with_a_directory_where_its_file_goes_fails_before_measuring(tuning_on, tiny):
    """A directory at the cache file's path (the file cannot be renamed over it): one
    line naming it, printed before anything is measured (no progress line), and the
    directory left as it was."""
    path = tuning.cache_path()
    os.makedirs(path)
    result = invoke("tune", "--budget", "0.05", "--threads", "1")
    one_line_error(result, f"tune: cannot write the tuning cache at {path}: Is a directory")
    assert os.listdir(path) == []


def test_tune_and_store_checks_the_file_before_measuring(tuning_on, tiny):
    """The same check for the automatic tune of a first kernel call (tune_and_store),
    which would otherwise spend its budget before the write fails."""
    path = tuning.cache_path()
    os.makedirs(path)
    progress = []
    with pytest.raises(IsADirectoryError):
        tuning.tune_and_store(0.05, 1, progress=progress.append, reuse=True)
    assert progress == []


def test_tune_on_says_tuning_stays_off_while_the_environment_turns_it_off(tuning_on,
                                                                          monkeypatch):
    ok(invoke("tune", "--off"))
    monkeypatch.setenv("RECURRENT_TUNE", "off")
    out = ok(invoke("tune", "--on"))
    assert not os.path.exists(os.path.join(tuning_on, "tuning", "off"))  # the switch is gone
    assert "tuning is on" not in out                                     # but it is not on
    assert "stays off" in out and "RECURRENT_TUNE=off" in out
    assert "tuning      off (RECURRENT_TUNE=off)" in ok(invoke("info"))


def test_tune_off_on_a_full_disk_names_the_switch_and_leaves_tuning_on(tmp_path):
    """`tune --off` whose switch cannot be written (a file-size limit of 0: the write fails
    as on a full disk) is one line naming the switch and the cause, and no switch file is
    left behind: tuning stays on, as the failure says."""
    result = subprocess.run([sys.executable, "-m", "recurrent", "tune", "--off"],
                            capture_output=True, text=True, preexec_fn=file_size_limit(0),
                            env=installed_env(RECURRENT_CACHE_DIR=str(tmp_path)))
    marker = tmp_path / "tuning" / "off"
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"Error: tune --off: cannot write {marker}: "
                                     f"File too large")
    assert os.listdir(tmp_path / "tuning") == []


def test_tune_off_when_already_off_writes_nothing_so_a_full_disk_does_not_fail_it(tmp_path):
    """The switch is already off: `tune --off` says so and leaves the marker as it is, so
    a write that would fail (a file-size limit of 0, as a full disk) never happens."""
    env = installed_env(RECURRENT_CACHE_DIR=str(tmp_path))
    subprocess.run([sys.executable, "-m", "recurrent", "tune", "--off"], env=env, check=True,
                   capture_output=True)
    marker = tmp_path / "tuning" / "off"
    before = os.stat(marker)
    result = subprocess.run([sys.executable, "-m", "recurrent", "tune", "--off"],
                            capture_output=True, text=True, preexec_fn=file_size_limit(0),
                            env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(f"kernel tuning is already off: the fixed defaults are "
                                    f"used ({marker})")
    after = os.stat(marker)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert os.listdir(tmp_path / "tuning") == ["off"]


@pytest.mark.parametrize("switch", ["--off", "--on"])
def test_a_switch_already_in_place_succeeds_on_a_read_only_cache(tmp_path, switch):
    """Turning off what is off (or on what is on) changes nothing, so a read-only cache
    directory is no reason to fail: the command says the state is already so, and the
    directory is as it was."""
    env = installed_env(RECURRENT_CACHE_DIR=str(tmp_path))
    # the tuning folder exists (a read-only file system refuses an unlink in it even of a
    # file that is not there), and the switch is in the position asked
    for before in dict.fromkeys(["--off", switch]):
        subprocess.run([sys.executable, "-m", "recurrent", "tune", before], env=env,
                       check=True, capture_output=True)
    contents = sorted(str(p) for p in tmp_path.rglob("*"))
    result = read_only_run(tmp_path, [sys.executable, "-m", "recurrent", "tune", switch],
                           dict(env, RECURRENT_TUNE="on"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(f"kernel tuning is already {switch[2:]}: ")
    assert sorted(str(p) for p in tmp_path.rglob("*")) == contents
    info = subprocess.run([sys.executable, "-m", "recurrent", "info"], check=True,
                          env={**env, "RECURRENT_TUNE": "on"}, capture_output=True,
                          text=True).stdout
    assert ("tuning      off (`recurrent tune --off`" in info) == (switch == "--off"), info


def test_info_says_tuning_is_off_under_the_test_suite():
    assert "tuning      off (RECURRENT_TUNE=off)" in ok(invoke("info"))


def test_processes_starting_together_tune_once(tmp_path):
    # two processes, no cache: one tunes under the lock, the other waits and loads its file
    script = ("import sys, numpy as np; from recurrent import tuning; "
              "from recurrent.tuning import Decision, Workload; "
              "tuning.DECISIONS = (Decision('row_parts', (8, 16), "
              "(Workload('gru', True, 4, 4, 8, 16),)),); tuning.AUTO_BUDGET = 0.3; "
              "from recurrent.layers import GRU; GRU(3, 8)(np.ones((2, 2, 3), np.float32)); "
              "s = tuning.status(); print(s['mode'], s['settings']['row_parts'])")
    # PYTHONSAFEPATH: `-c` must import the installed package, not an uncompiled source tree
    # in the working directory
    env = dict(os.environ, RECURRENT_CACHE_DIR=str(tmp_path), RECURRENT_TUNE="on",
               PYTHONSAFEPATH="1")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(err == "" for _, err in outs), outs
    assert outs[0][0] == outs[1][0] and outs[0][0].startswith("cache ")
    files = os.listdir(tmp_path / "tuning")
    assert len([f for f in files if f.endswith(".json")]) == 1
    assert not [f for f in files if f.endswith(".tmp")]


@pytest.mark.parametrize("args", [["--budget", "0.05"], ["--off"]])
def test_a_cache_folder_that_cannot_be_made_is_named_with_its_reason(tuning_on, tiny,
                                                                     monkeypatch, args):
    """A cache directory below a regular file: one line naming the path and the system's
    reason, not "[Errno 20]", before `tune` says what it would measure."""
    blocker = tuning_on / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(blocker / "cache"))
    tuning.reset()
    line = one_line_error(invoke("tune", *args), "Error: tune")
    assert line.endswith(f"cannot write the tuning cache at {blocker / 'cache'}: "
                         f"Not a directory")


def test_the_automatic_tune_names_a_cache_folder_it_cannot_make_with_its_reason(
        tuning_on, tiny, monkeypatch, capsys):
    """A layer's first call below a cache directory that cannot be made: the defaults, and
    one line naming the path and the system's reason, not "[Errno 20]"."""
    blocker = tuning_on / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RECURRENT_CACHE_DIR", str(blocker / "cache"))
    tuning.reset()
    tuning.ensure()
    assert tuning.status()["mode"] == "off"
    err = capsys.readouterr().err
    assert err == (f"recurrent: kernel tuning skipped (cannot write the tuning cache at "
                   f"{blocker / 'cache'}: Not a directory); using the defaults\n")


def _trained_arrays(run):
    with np.load(run / "last.npz") as data:
        return {k: data[k] for k in data.files if k != "meta"}


def test_a_run_keeps_the_kernel_settings_it_started_with_after_a_tune(tuning_on, tmp_path):
    # the float32 LSTM's input part inside the register tiles (always) or hoisted (never)
    # rounds differently: a tune between a run's start and its resume must not move it
    path = tuning.cache_path()
    started = dict(tuning.defaults(), lstm_in_tile_min_rows=1)
    retuned = dict(tuning.defaults(), lstm_in_tile_min_rows=1 << 30)
    text = tiny_text(tmp_path)
    args = ("--cell", "lstm", "--batch-size", 4, "--eval-every", 3, "--seed", 3,
            "--schedule", "constant")
    runs = {}
    for name, steps in (("whole", 6), ("part", 3)):
        tuning.write_cache(path, started, {"threads": 1})
        tuning.reset()  # a new process reads the cache
        ok(train_tiny(text, tmp_path / name, *args, "--steps", steps))
        runs[name] = tmp_path / name
    recorded = json.loads((runs["part"] / "config.json").read_text())["kernel"]
    assert recorded == {name: started[name] for name in tuning.RESULT_SETTINGS}
    tuning.write_cache(path, retuned, {"threads": 1})
    tuning.reset()
    ok(invoke("train", "--resume", runs["part"], "--steps", 6, "--quiet"))
    want, got = _trained_arrays(runs["whole"]), _trained_arrays(runs["part"])
    assert want.keys() == got.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # a run started under the new tuning records it, and trains on it
    tuning.reset()
    ok(train_tiny(text, tmp_path / "after", *args, "--steps", 6))
    assert json.loads((tmp_path / "after" / "config.json").read_text())["kernel"][
        "lstm_in_tile_min_rows"] == 1 << 30
    assert any(not np.array_equal(_trained_arrays(tmp_path / "after")[key], want[key])
               for key in want)


@pytest.mark.parametrize("record, fragment", [
    ([1, 2], '"kernel" is not a record of'),
    ({"row_parts": 8}, '"kernel" is not a record of'),
    ({"lstm_in_tile_min_rows": 0}, "out of range")])
def test_a_damaged_kernel_record_is_refused_in_one_line(tmp_path, record, fragment):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    info = json.loads((run / "config.json").read_text())
    info["kernel"] = record
    (run / "config.json").write_text(json.dumps(info))
    for args in (("eval", run), ("train", "--resume", run, "--steps", 3)):
        one_line_error(invoke(*args), str(run / "config.json"), fragment)


def test_a_run_made_before_the_record_uses_the_settings_in_force(tmp_path, settings_restored):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    info = json.loads((run / "config.json").read_text())
    del info["kernel"]
    (run / "config.json").write_text(json.dumps(info))
    ok(invoke("train", "--resume", run, "--steps", 4))
    ok(invoke("eval", run))


# every candidate of the settings a run does not record, and the extremes the checks allow
UNRECORDED = [{d.name: c} for d in tuning.DECISIONS if not d.changes_results
              for c in d.candidates] + [{"row_parts": 1}, {"row_parts": 200},
                                        {"infer_chunk_bytes": 4096}]


@pytest.mark.parametrize("settings", UNRECORDED,
                         ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
@pytest.mark.parametrize("name", CELLS + ("ln_lstm",))
def test_settings_a_run_does_not_record_leave_results_bitwise_unchanged(name, settings,
                                                                        settings_restored):
    # they are tuned per machine, so a run's numbers must not follow them: the hoisted row
    # blocks compute each row alone, sums over rows (the layer-normalised LSTM's bias and
    # gain gradients) use blocks of their own, and inference's chunks hold whole steps
    problem = _problem(name, *SIZE)
    tuning._kernels().apply({})
    want = _run(get_cell(name), *problem, num_threads=1)
    tuning._kernels().apply(dict(settings, min_parallel_flops=settings.get(
        "min_parallel_flops", 0)))
    got = _run(get_cell(name), *problem, num_threads=2)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_an_exported_run_imports_with_its_kernel_record(tmp_path, settings_restored):
    run = tmp_path / "run"
    ok(train_tiny(tiny_text(tmp_path), run))
    info = json.loads((run / "config.json").read_text())
    info["kernel"] = {"lstm_in_tile_min_rows": 1 << 30, "max_gate_block": 512}
    (run / "config.json").write_text(json.dumps(info))
    ok(invoke("export", run, "--format", "safetensors", "--out", tmp_path / "run.safetensors"))
    ok(invoke("import", tmp_path / "run.safetensors", "--out", tmp_path / "back"))
    back = json.loads((tmp_path / "back" / "config.json").read_text())
    assert back["kernel"] == info["kernel"]
    ok(invoke("export", tmp_path / "back", "--format", "safetensors",
              "--out", tmp_path / "again.safetensors"))
    assert (tmp_path / "again.safetensors").read_bytes() == \
        (tmp_path / "run.safetensors").read_bytes()
    # a file whose record is damaged is refused before any run directory is made
    tensors, meta = st.read(str(tmp_path / "run.safetensors"))
    st.write(str(tmp_path / "bad.safetensors"), tensors,
             dict(meta, kernel={"lstm_in_tile_min_rows": 0}))
    one_line_error(invoke("import", tmp_path / "bad.safetensors", "--out", tmp_path / "bad"),
                   "bad.safetensors", "out of range")
    assert not (tmp_path / "bad").exists()
