"""`recurrent predict RUN --stream` started with a standard input or output in non-blocking
mode (O_NONBLOCK: a mode of the open file, which a program that started recurrent may have
set on a descriptor it shares with it, or a terminal left in it): the stream waits for
lines that have not arrived yet rather than take "nothing yet" for the end of the input
or of a line (ending at once with status 0, or answering a line cut in two), and waits
for a full pipe to drain rather than drop the answers that do not fit, as Python's text
and buffered layers do without an error."""
import array
import fcntl
import json
import os
import subprocess
import sys
import termios
import time

from helpers import installed_env


def non_blocking_pipe(end: int):
    """(read end, write end) of a pipe whose ``end`` (0: read, 1: write) is non-blocking."""
    ends = os.pipe()
    fd = ends[end]
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return ends


def stream(run, cwd, **pipes):
    return subprocess.Popen([sys.executable, "-m", "recurrent", "predict", str(run),
                             "--stream"], stderr=subprocess.PIPE, cwd=cwd,
                            env=installed_env(), **pipes)


def still_running(proc, seconds=2) -> bool:
    """Whether ``proc`` is still running ``seconds`` from now: a stream waiting for its
    reader or its next line is; one that took "nothing yet" for the end (the fault) has
    ended by then. The answers checked afterwards do not depend on the time."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def test_a_non_blocking_stdin_is_read_line_by_line_as_the_lines_arrive(task_runs, tmp_path):
    read, write = non_blocking_pipe(0)
    proc = stream(task_runs["sentiment"], tmp_path, stdin=read, stdout=subprocess.PIPE)
    os.close(read)
    try:
        with os.fdopen(write, "wb", buffering=0) as lines:
            assert still_running(proc)  # waiting for a first line, with none there
            lines.write(b"a good")
            assert still_running(proc)  # waiting for the end of that line
            lines.write(b" film\n")
            assert json.loads(proc.stdout.readline())["text"] == "a good film"
            lines.write(b"dull\nlast, without a line break")
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [json.loads(line)["text"] for line in out.splitlines()] == [
        "dull", "last, without a line break"]


def test_a_non_blocking_stdout_gets_every_answer_however_slow_its_reader(task_runs, tmp_path):
    count = 3000  # answers of more than a pipe holds
    read, write = non_blocking_pipe(1)
    proc = stream(task_runs["sentiment"], tmp_path, stdin=subprocess.PIPE, stdout=write)
    os.close(write)
    try:
        proc.stdin.write(b"a good film\n" * count)
        proc.stdin.close()
        # nothing is read until the pipe is half full and the stream has had the time to
        # fill it and go on
        half = fcntl.fcntl(read, fcntl.F_GETPIPE_SZ) // 2
        held = array.array("i", [0])
        while proc.poll() is None and held[0] < half:
            fcntl.ioctl(read, termios.FIONREAD, held)
            time.sleep(0.01)
        assert still_running(proc)  # waiting for the reader
        with os.fdopen(read, "rb") as answers:
            out = answers.read()
        proc.wait(120)
    finally:
        proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    lines = out.splitlines()
    assert len(lines) == count
    assert all(json.loads(line)["text"] == "a good film" for line in lines)
