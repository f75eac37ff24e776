"""--threads above the cores this process may use (or --ranks times --threads above them):
the count is taken, with one note on stderr saying that threads beyond the cores take
turns on them (threads.oversubscription_note); none within the cores; --quiet keeps it.
Counts are set from the machine's real cores, so each test holds on any machine."""
import os
import subprocess
import sys

import pytest

from helpers import installed_env, invoke, ok, tiny_text

from recurrent.threads import available_cores

CORES = available_cores()
SMALL = ("--steps", 2, "--hidden", 8, "--embed-dim", 4, "--seq-len", 16, "--no-plot")


def _notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note:")]


def _train(tmp_path, *extra):
    return invoke("train", "char-lm", "--data", tiny_text(tmp_path), *SMALL,
                  "--out", tmp_path / "run", *extra)


def test_train_notes_threads_above_the_cores_once(tmp_path):
    result = _train(tmp_path, "--threads", CORES + 1)
    ok(result)
    assert _notes(result.stderr) == [
        f"note: --threads {CORES + 1} runs {CORES + 1} kernel threads on {CORES} available "
        f"core{'s' if CORES > 1 else ''}; threads beyond the cores take turns on them and "
        f"every step waits for the slowest, so fewer threads can run faster"]
    assert (tmp_path / "run" / "config.json").is_file()  # a note, not a refusal


def test_train_says_nothing_within_the_cores(tmp_path):
    result = _train(tmp_path, "--threads", CORES)
    ok(result)
    assert _notes(result.stderr) == []


def test_quiet_train_still_notes_once(tmp_path):
    """--quiet keeps errors and notes on stderr (its help says so)."""
    result = _train(tmp_path, "--threads", CORES + 1, "--quiet")
    ok(result)
    assert len(_notes(result.stderr)) == 1


def test_a_refused_train_prints_its_error_alone(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "loss.png").write_bytes(b"")
    result = _train(tmp_path, "--threads", CORES + 1)
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"Error: {tmp_path / 'run'} already has a loss.png, which the run's loss plot would "
        f"replace (with --no-plot too: a resume may draw it); choose another --out"]


def test_bench_notes_the_largest_count_above_the_cores_once():
    result = invoke("bench", "--cell", "lstm", "--config", "2,1,2,2", "--threads",
                    f"1,{CORES + 1},auto", "--vs", "none", "--repeats", 1, "--rounds", 1)
    ok(result)
    notes = _notes(result.stderr)
    assert len(notes) == 1 and notes[0].startswith(
        f"note: --threads {CORES + 1} runs {CORES + 1} kernel threads on {CORES} "), notes


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
    from recurrent.launch import mpiexec
    if mpiexec() is None:
        pytest.skip("no mpiexec next to the interpreter or on PATH (the mpi extra "
                    "installs MPICH's)")
    return mpiexec()


def _job(tmp_path, launcher, *extra, code=0):
    """`recurrent train char-lm` of SMALL run under ``launcher`` (a list) in tmp_path,
    into tmp_path/run; it ends with exit status ``code``."""
    env = installed_env()
    env.pop("RECURRENT_NUM_THREADS", None)
    job = subprocess.run([*launcher, sys.executable, "-m", "recurrent", "train", "char-lm",
                          "--data", str(tiny_text(tmp_path)), *map(str, SMALL),
                          *map(str, extra), "--out", "run"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert job.returncode == code, job.stderr
    assert os.path.isfile(tmp_path / "run" / "config.json") == (code == 0)
    return job


@pytest.mark.parametrize("threads", [CORES, CORES + 1])
def test_ranks_times_threads_above_the_cores_is_noted_once(tmp_path, threads):
    """Said once for all the ranks, also when each rank's --threads alone is above the
    cores."""
    _mpiexec()
    job = _job(tmp_path, [], "--threads", threads, "--ranks", 2)
    assert _notes(job.stderr) == [
        f"note: --ranks 2 --threads {threads} runs {2 * threads} kernel threads on {CORES} "
        f"available core{'s' if CORES > 1 else ''}; threads beyond the cores take turns on "
        f"them and every step waits for the slowest, so fewer threads can run faster"]


def test_a_job_mpiexec_started_is_noted_once_for_all_its_ranks(tmp_path):
    """mpiexec -n 2 without --ranks: its first rank says it, counting the threads of
    the ranks on its host."""
    job = _job(tmp_path, [_mpiexec(), "-n", "2"], "--threads", CORES)
    assert _notes(job.stderr) == [
        f"note: mpiexec's 2 ranks with --threads {CORES} run {2 * CORES} kernel threads on "
        f"{CORES} available core{'s' if CORES > 1 else ''}; threads beyond the cores take "
        f"turns on them and every step waits for the slowest, so fewer threads can run "
        f"faster"]


def test_a_refused_ranks_run_prints_its_error_alone(tmp_path):
    """A refusal the ranks meet (a loss.png the run would replace) is the one line
    printed, as in one process."""
    _mpiexec()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "loss.png").write_bytes(b"")
    job = _job(tmp_path, [], "--threads", CORES + 1, "--ranks", 2, code=1)
    assert [line for line in job.stderr.splitlines() if line.strip()] == [
        "Error: run already has a loss.png, which the run's loss plot would replace (with "
        "--no-plot too: a resume may draw it); choose another --out"]
