"""The start of a data-parallel job: failures before the ranks' World exists (bad options,
a bad RECURRENT_MPI_TIMEOUT, `train --resume RUN` whose run directory only rank 0's
machine holds), a Ctrl-C while the run is being set up, and --ranks refused under
RECURRENT_NO_MPI. Run for real under the mpiexec of the `mpi` extra (MPICH)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from test_distributed import TINY, _env, _one_line, ctrl_c_at_line, recurrent_cmd

from recurrent.checkpoint import load_arrays

pytest.importorskip("mpi4py", reason="mpi4py not installed (the mpi extra)")
from recurrent.launch import mpiexec  # noqa: E402


def _run_job(command, tmp_path, timeout=60, stdin=None, **env):
    """Run ``command`` in its own session (``stdin``: its standard input, a file); on a
    timeout kill the whole session (mpiexec and the ranks it started) and fail, so a
    hanging job ends the test, not the suite."""
    proc = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=_env(tmp_path, **env), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{' '.join(map(str, command[:8]))} ... hung for {timeout} s")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


# ---- failures before the World exists are printed once ---------------------------------

def test_a_bad_option_under_mpiexec_is_printed_once(tmp_path):
    job = recurrent_cmd(["train", "char-lm", "--hidden", "-3", "--out", "bad"], tmp_path,
                        ranks=2)
    assert job.returncode == 2
    assert _one_line(job.stderr) == ("Error: Invalid value for '--hidden': -3 is not in "
                                     "the range x>=1.")
    assert not (tmp_path / "bad").exists()


def test_a_bad_mpi_timeout_is_printed_once(tmp_path):
    job = recurrent_cmd(["train", "char-lm", *TINY, "--out", "bad"], tmp_path, ranks=2,
                        RECURRENT_MPI_TIMEOUT="abc")
    assert job.returncode == 1
    assert _one_line(job.stderr) == "Error: RECURRENT_MPI_TIMEOUT='abc': expected seconds"


def test_independent_processes_under_a_launcher_each_print_their_error(tmp_path):
    job = recurrent_cmd(["train", "char-lm", "--hidden", "-3", "--out", "bad"], tmp_path,
                        ranks=2, RECURRENT_NO_MPI=1)
    assert job.returncode == 2
    lines = [line for line in job.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[0] == lines[1], job.stderr


@pytest.mark.parametrize("failing_rank", [0, 1])
def test_a_failure_on_one_rank_before_mpi_starts_stops_every_rank(tmp_path, failing_rank):
    """One rank meets an error before MPI is started (here its machine's bad
    RECURRENT_NUM_THREADS): the other ranks, already waiting for it in MPI's start, are
    told and stop; the job ends at once with one line naming the rank."""
    command = [sys.executable, "-m", "recurrent", "train", "char-lm", *TINY, "--out", "run"]
    bad = ["-env", "RECURRENT_NUM_THREADS", "abc"]
    ranks = [[mpiexec(), "-n", "1"], [":", "-n", "1"]]
    ranks[failing_rank] += bad
    job = _run_job([*ranks[0], *command, *ranks[1], *command], tmp_path, timeout=30,
                   PYTHONSAFEPATH="1")
    assert job.returncode != 0
    who = "rank 1: " if failing_rank else ""
    assert _one_line(job.stderr) == (f"Error: {who}RECURRENT_NUM_THREADS='abc': expected a "
                                     f"positive integer (the most threads a call uses); "
                                     f"unset it for the default")
    assert not (tmp_path / "run").exists()


# ---- `train --resume RUN` when only rank 0's machine has RUN ---------------------------

def _two_machines(tmp_path, first, second, args):
    """mpiexec with rank 0 working in ``first`` and rank 1 in ``second`` (two machines,
    each with its own files)."""
    command = [sys.executable, "-m", "recurrent", *args]
    return _run_job([mpiexec(), "-n", "1", "-wdir", str(tmp_path / first), *command, ":",
                     "-n", "1", "-wdir", str(tmp_path / second), *command], tmp_path)


def test_resume_without_a_task_needs_the_run_on_rank_0_only(tmp_path):
    for host in ("host-a", "host-b"):
        (tmp_path / host).mkdir()
    first = recurrent_cmd(["train", "char-lm", *TINY, "--steps", "4", "--out", "run"],
                          tmp_path / "host-a")
    assert first.returncode == 0, first.stderr
    job = _two_machines(tmp_path, "host-a", "host-b", ["train", "--resume", "run",
                                                        "--steps", "6", "--quiet"])
    assert job.returncode == 0, job.stderr
    assert job.stderr == "" and job.stdout.count("done after 6 steps") == 1, job.stdout
    _, meta = load_arrays(str(tmp_path / "host-a" / "run" / "last.npz"))
    assert meta["step"] == 6
    assert os.listdir(tmp_path / "host-b") == []
    # the run on rank 1's machine alone: rank 0 says so, once, and no rank waits (for the
    # 600 s default timeout: _run_job's 60 s would end the test first)
    job = _two_machines(tmp_path, "host-b", "host-a", ["train", "--resume", "run",
                                                        "--steps", "8", "--quiet"])
    assert job.returncode == 1
    assert _one_line(job.stderr) == "Error: run directory run does not exist"


# ---- Ctrl-C while a data-parallel run is set up ----------------------------------------

SLOW_BASELINES = '''
import sys, time
import recurrent
from recurrent_plugins.char_lm import CharLM

class SlowBaselinesLM(CharLM):
    name = "slow-baselines-lm"
    help = "char-lm whose baselines take a few seconds (tests only)"

    def baselines(self, state, split, config):
        print("fitting baselines", flush=True)
        time.sleep(4)
        return super().baselines(state, split, config)

@recurrent.hookimpl
def register_tasks(register):
    register(SlowBaselinesLM())
'''


@pytest.fixture
def slow_baselines_plugin(tmp_path):
    """A char-lm whose baselines (fitted by rank 0 during the setup) take 4 s, found
    through a real entry point on PYTHONPATH as tests/test_distributed.py's plugin is."""
    site = tmp_path / "site"
    info = site / "slow_baselines_lm-0.0.dist-info"
    info.mkdir(parents=True)
    (site / "slow_baselines_lm.py").write_text(SLOW_BASELINES)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-baselines-lm\n"
                                   "Version: 0.0\n")
    (info / "entry_points.txt").write_text("[recurrent]\nslow = slow_baselines_lm\n")
    return {"RECURRENT_NO_ENTRYPOINTS": "", "RECURRENT_PLUGINS": "slow"}


def test_ctrl_c_during_the_setup_stops_every_rank_before_the_first_step(
        tmp_path, slow_baselines_plugin):
    code, out, err = ctrl_c_at_line(
        ["train", "slow-baselines-lm", *TINY[:-2], "--no-plot", "--steps", "100",
         "--log-every", "1", "--out", "run", "--ranks", "2"], tmp_path,
        _env(tmp_path, **slow_baselines_plugin), "fitting baselines", wait=0.5)
    assert code == 130, err
    assert "interrupted at step 0:" in out, out
    assert err.strip() == ""
    _, meta = load_arrays(str(tmp_path / "run" / "last.npz"))
    assert meta["step"] == 0


# ---- --ranks under RECURRENT_NO_MPI ----------------------------------------------------

def test_ranks_with_no_mpi_set_is_refused_before_launching(tmp_path):
    job = recurrent_cmd(["train", "char-lm", *TINY, "--ranks", "2", "--out", "run"],
                        tmp_path, RECURRENT_NO_MPI=1)
    assert job.returncode == 1
    line = _one_line(job.stderr)
    assert line.startswith("Error: --ranks 2: RECURRENT_NO_MPI=1 is set"), line
    assert "unset it" in line
    assert not (tmp_path / "run").exists()
    # --ranks 1 is one process anyway: nothing to refuse
    job = recurrent_cmd(["train", "char-lm", *TINY, "--steps", "2", "--ranks", "1",
                         "--out", "run"], tmp_path, RECURRENT_NO_MPI=1)
    assert job.returncode == 0, job.stderr


@pytest.mark.parametrize("value, out", [("1", True), ("yes", True), ("TRUE", True),
                                        ("", False), ("0", False), ("false", False),
                                        (" No ", False), ("off", False)])
def test_no_mpi_reads_false_values_as_off(monkeypatch, value, out):
    """RECURRENT_NO_MPI=false asked for MPI and opted out of it; read as RECURRENT_TUNE
    reads off."""
    from recurrent import distributed
    monkeypatch.setenv("RECURRENT_NO_MPI", value)
    assert distributed.opted_out() is out


# ---- --ranks beyond what this machine can start -----------------------------------------

def test_more_ranks_than_the_machine_can_start_are_refused_before_launching(tmp_path):
    """No machine holds 2**31 - 1 ranks: refused in one line before mpiexec starts any."""
    job = recurrent_cmd(["train", "char-lm", *TINY, "--ranks", "2147483647", "--out", "run"],
                        tmp_path, timeout=60)
    assert job.returncode == 1
    line = _one_line(job.stderr)
    assert line.startswith("Error: --ranks 2147483647: more ranks than this machine can "
                           "start: "), line
    assert line.endswith(" or fewer") or line.endswith("(without --ranks)"), line
    assert job.stdout == ""
    assert not (tmp_path / "run").exists()


def test_more_ranks_than_cores_still_train(tmp_path):
    job = recurrent_cmd(["train", "char-lm", *TINY, "--ranks", "4", "--out", "run"], tmp_path)
    assert job.returncode == 0, job.stderr
    assert job.stdout.startswith("done after 8 steps"), job.stdout
    assert (tmp_path / "run" / "config.json").exists()


def test_ranks_beyond_the_users_process_limit_are_refused(tmp_path):
    """RLIMIT_NPROC (ulimit -u) of 1, which this process alone fills: no rank can start.
    The check runs as another user where this is root, whom the limit does not bind."""
    script = """if True:
        import os, resource
        from recurrent.errors import UserError
        from recurrent.capacity import check_room
        if os.getuid() == 0:
            os.setgid(65534)
            os.setuid(65534)
        hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        resource.setrlimit(resource.RLIMIT_NPROC, (1, hard))
        try:
            check_room(2)
        except UserError as e:
            print(e)
    """
    job = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path, env=_env(tmp_path))
    assert job.returncode == 0, job.stderr
    assert job.stdout.strip() == ("--ranks 2: more ranks than this machine can start: the "
                                  "user's process limit (ulimit -u) of 1 leaves room for 0 "
                                  "more; train on one process (without --ranks)"), job.stdout


# ---- cgroup limits: a container's (or systemd slice's) memory and pids limits ------------

def _cgroups(tmp_path, monkeypatch, proc_cgroup, files):
    """Point check_room at a cgroup tree under ``tmp_path``: ``proc_cgroup``, the text of
    /proc/self/cgroup; ``files``, {path under the cgroup root: contents}."""
    from recurrent import capacity
    root = tmp_path / "cgroup"
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    root.mkdir(exist_ok=True)
    (tmp_path / "proc-self-cgroup").write_text(proc_cgroup)
    monkeypatch.setattr(capacity, "CGROUP_ROOT", str(root))
    monkeypatch.setattr(capacity, "PROC_CGROUP", str(tmp_path / "proc-self-cgroup"))
    if (capacity._available_memory() or 1 << 62) < 1 << 30:
        pytest.skip("MemAvailable below the cgroup limits these tests set")


def _refusal(ranks):
    from recurrent.errors import UserError
    from recurrent.capacity import check_room
    with pytest.raises(UserError) as refused:
        check_room(ranks)
    return str(refused.value)


MiB = 1 << 20


def test_a_v2_memory_limit_of_a_parent_cgroup_refuses_ranks(tmp_path, monkeypatch):
    """The slice's memory.max binds the scope below it, whose own is "max"; page cache not
    recently used (inactive_file) is reclaimed under the limit, so it leaves room."""
    slice_ = "user.slice/user-1000.slice"
    _cgroups(tmp_path, monkeypatch, "0::/user.slice/user-1000.slice/session-4.scope\n", {
        f"{slice_}/memory.max": f"{1024 * MiB}\n",
        f"{slice_}/memory.current": f"{(1024 - 256 + 100) * MiB}\n",
        f"{slice_}/memory.stat": f"anon {600 * MiB}\nfile {300 * MiB}\n"
                                 f"active_file {200 * MiB}\ninactive_file {100 * MiB}\n",
        f"{slice_}/session-4.scope/memory.max": "max\n",
        f"{slice_}/session-4.scope/memory.current": f"{500 * MiB}\n",
        f"{slice_}/session-4.scope/pids.max": "max\n",
        f"{slice_}/session-4.scope/pids.current": "7\n"})
    from recurrent.capacity import check_room
    check_room(8)
    assert _refusal(9) == ("--ranks 9: more ranks than this machine can start: each rank "
                           "needs at least 32 MiB of memory and the container's memory "
                           "limit (cgroup memory.max) leaves 256 MiB; give --ranks 8 or "
                           "fewer")


def test_a_v1_memory_limit_is_read_at_the_mount_root_in_a_container(tmp_path, monkeypatch):
    """Inside a container the path /proc/self/cgroup names is not under the container's
    mount, whose root holds the container's own limit."""
    _cgroups(tmp_path, monkeypatch,
             "12:pids:/docker/0f3c9a\n4:memory:/docker/0f3c9a\n1:name=systemd:/docker/0f3c9a\n"
             "0::/system.slice/containerd.service\n", {
                 "memory/memory.limit_in_bytes": f"{600 * MiB}\n",
                 "memory/memory.usage_in_bytes": f"{500 * MiB}\n",
                 "memory/memory.stat": f"cache {100 * MiB}\ntotal_inactive_file 0\n"})
    assert _refusal(64) == ("--ranks 64: more ranks than this machine can start: each rank "
                            "needs at least 32 MiB of memory and the container's memory "
                            "limit (cgroup memory.limit_in_bytes) leaves 100 MiB; give "
                            "--ranks 3 or fewer")


def test_a_v1_pids_limit_refuses_ranks(tmp_path, monkeypatch):
    _cgroups(tmp_path, monkeypatch, "8:pids:/docker/0f3c9a\n5:memory:/docker/0f3c9a\n", {
        "pids/docker/0f3c9a/pids.max": "20\n",
        "pids/docker/0f3c9a/pids.current": "15\n",
        "memory/docker/0f3c9a/memory.limit_in_bytes": "9223372036854771712\n",
        "memory/docker/0f3c9a/memory.usage_in_bytes": f"{500 * MiB}\n"})
    from recurrent.capacity import check_room
    check_room(5)
    assert _refusal(6) == ("--ranks 6: more ranks than this machine can start: the "
                           "container's process limit (cgroup pids.max) leaves room for 5 "
                           "more; give --ranks 5 or fewer")


@pytest.mark.parametrize("proc_cgroup, files", [
    ("0::/\n", {"memory.max": "max\n", "memory.current": f"{900 * MiB}\n",
                "pids.max": "max\n", "pids.current": "300\n"}),
    ("4:memory:/\n8:pids:/\n0::/\n", {
        "memory/memory.limit_in_bytes": "9223372036854771712\n",
        "memory/memory.usage_in_bytes": f"{900 * MiB}\n",
        "pids/pids.max": "max\n", "pids/pids.current": "300\n"}),
    # A limit whose usage cannot be read is no limit known.
    ("0::/app\n", {"app/memory.max": f"{64 * MiB}\n", "app/pids.max": "1\n"}),
], ids=["v2", "v1", "unreadable"])
def test_cgroups_without_a_limit_refuse_nothing(tmp_path, monkeypatch, proc_cgroup, files):
    _cgroups(tmp_path, monkeypatch, proc_cgroup, files)
    from recurrent.capacity import check_room
    check_room(8)
    assert "cgroup" not in _refusal(2147483647)
