"""Training's progress on a terminal is a bar on stderr; where stderr is a terminal with
no width (a pseudo-terminal no one sized), a bar cut to that width shows nothing, and the
run prints its step lines instead."""
import os
import pty
import subprocess
import sys
import threading

from helpers import installed_env


def test_a_terminal_without_a_width_gets_the_step_lines(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 80, encoding="utf-8")
    master, slave = pty.openpty()  # a new pseudo-terminal has 0 rows and 0 columns
    assert os.get_terminal_size(slave).columns == 0
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
            env=installed_env())
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    assert result.returncode == 0, b"".join(seen)
    steps = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/4", "2/4", "3/4", "4/4"], result.stdout
