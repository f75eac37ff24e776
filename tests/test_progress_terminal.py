"""Training's progress on a terminal is a bar on stderr; where stderr is a terminal with
no width (a pseudo-terminal no one sized), a bar cut to that width shows nothing, and
where it is a dumb terminal (TERM=dumb), each carriage-return redraw of the bar shows as
a line of its own: both runs print their step lines instead."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

from helpers import installed_env


def _train_on_terminal(tmp_path, columns=None, **env):
    """A 4-step char-lm run whose stderr is a new pseudo-terminal, sized to ``columns``
    when given (else 0 rows and 0 columns); returns (the run's result, every byte the
    terminal received)."""
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 80, encoding="utf-8")
    master, slave = pty.openpty()
    if columns is not None:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    seen = []

    def drain():  # the terminal's output, so that the command never waits on it
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the last writer closed it
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "recurrent", "train", "char-lm", "--data", str(text),
             "--steps", "4", "--log-every", "1", "--hidden", "8", "--seq-len", "16",
             "--threads", "1", "--no-plot", "--out", str(tmp_path / "run")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, text=True,
            env=installed_env(**env))
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    return result, b"".join(seen)


def _step_numbers(stdout):
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("step ")]


def test_a_terminal_without_a_width_gets_the_step_lines(tmp_path):
    master, slave = pty.openpty()  # a new pseudo-terminal has 0 rows and 0 columns
    assert os.get_terminal_size(slave).columns == 0
    os.close(master)
    os.close(slave)
    result, terminal = _train_on_terminal(tmp_path)
    assert result.returncode == 0, terminal
    assert _step_numbers(result.stdout) == ["1/4", "2/4", "3/4", "4/4"], result.stdout


def test_a_dumb_terminal_gets_the_step_lines_not_a_redrawn_bar(tmp_path):
    result, terminal = _train_on_terminal(tmp_path, columns=80, TERM="dumb")
    assert result.returncode == 0, terminal
    assert _step_numbers(result.stdout) == ["1/4", "2/4", "3/4", "4/4"], result.stdout
    assert b"\r" not in terminal


def test_a_sized_terminal_gets_the_bar(tmp_path):
    result, terminal = _train_on_terminal(tmp_path, columns=80, TERM="xterm")
    assert result.returncode == 0, terminal
    assert _step_numbers(result.stdout) == [] and b"4/4" in terminal
