"""Helpers shared by the task tests (sentiment, forecast): run the CLI in-process, check a
one-line error, write small CSV files, and pick small real slices of the bundled data.

Plain functions, imported as `from helpers import ...` (pytest puts tests/ on sys.path, as
for train_toys.py); fixtures stay in each test module so their scope and size stay visible.
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
import shlex
import subprocess

import pytest
from click.testing import CliRunner

import recurrent

from recurrent.cli import cli

REVIEW_HEADER = ("text", "label")


class TaskPlugin:
    """A plugin registering one task object (recurrent.plugins.register_plugin)."""

    def __init__(self, task):
        self.task = task

    @recurrent.hookimpl
    def register_tasks(self, register):
        register(self.task)


def installed_env(**extra) -> dict:
    """The environment for a `python -m recurrent` subprocess: PYTHONSAFEPATH, so that it
    imports the installed (compiled) package, not the source tree a test runs from (CI
    installs non-editable), plus ``extra``."""
    return {**os.environ, "PYTHONSAFEPATH": "1", **extra}


def invoke(*args):
    """`recurrent ARGS...` through click's CliRunner (arguments may be paths or numbers)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def ok(result) -> str:
    """The stdout of a command that must have succeeded (else fail with its output)."""
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


def one_line_error(result, *fragments, bug=False, code=None):
    """The command failed (with exit status ``code`` when given) with exactly one
    non-blank stderr line, "Error: ..." holding every fragment, and printed no traceback;
    that line is the "internal error" line of a bug (one line too) only when ``bug`` says
    so. ``result``: invoke's, or a subprocess.CompletedProcess. Returns that line."""
    status = getattr(result, "exit_code", None)
    status = result.returncode if status is None else status
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    output = getattr(result, "output", None) or stderr
    assert status != 0 if code is None else status == code, (status, output)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in output + stderr
    assert ("internal error" in lines[0]) == bug, lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def advised(line: str) -> list[str]:
    """The arguments of the first command an error line advises (`recurrent ...` between
    backticks), split as a shell would split them, without "recurrent": to follow the
    advice as a user copying it would."""
    found = re.search(r"`recurrent ([^`]*)`", line)
    assert found, line
    return shlex.split(found.group(1))


TINY_RUN = ("--steps", 2, "--hidden", 8, "--embed-dim", 4, "--seq-len", 16, "--threads", 1,
            "--quiet")  # a char-lm run of a second: for tests of files and options


def tiny_text(directory):
    """A small text file for char-lm runs in ``directory``; returns its path."""
    path = directory / "text.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 60, encoding="utf-8")
    return path


def train_tiny(text, out, *extra):
    """`recurrent train char-lm` on ``text`` for TINY_RUN's two steps into ``out``, without
    loss.png unless ``extra`` asks for it."""
    plot = () if "--plot" in map(str, extra) else ("--no-plot",)
    return invoke("train", "char-lm", "--data", text, *TINY_RUN, *plot, "--out", out, *extra)


def write_csv(path, header, rows) -> str:
    """A UTF-8 CSV file with a header row; returns its path as text."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def series_run(tmp_path, name, column, values, *options):
    """(data file, run directory): ``values`` written as a CSV of a step-number time
    column "t" and one value column (each value as Python's repr of the float, so it is
    read back exactly), and `recurrent train forecast` on it with ``options``."""
    data = write_csv(tmp_path / f"{name}.csv", ("t", column),
                     [[i, repr(float(v))] for i, v in enumerate(values)])
    run = tmp_path / "run"
    ok(invoke("train", "forecast", "--data", data, "--time-column", "t", *options,
              "--out", run))
    return data, run


def two_monthly_columns(n):
    """``n`` rows of (month-end date from 2000-01-31, a, b): two noisy seasonal columns
    (period 12), ``a`` trending upward."""
    import calendar

    import numpy as np
    rng = np.random.default_rng(0)
    t = np.arange(n)
    a = 100 + 10 * np.sin(2 * np.pi * t / 12) + 0.5 * t + rng.normal(0, 1, n)
    b = 5 + 2 * np.cos(2 * np.pi * t / 12) + rng.normal(0, 0.3, n)
    rows = []
    for i in range(n):
        year, month = 2000 + i // 12, i % 12 + 1
        day = calendar.monthrange(year, month)[1]
        rows.append([f"{year}-{month:02d}-{day:02d}", f"{a[i]:.3f}", f"{b[i]:.3f}"])
    return rows


def check_stream_as_grown_predict(run, tmp_path, first, added, steps, line_of):
    """`predict RUN --stream --data FIRST` fed one line per row of ``added`` (its text
    line_of(row)); each answer must equal `predict --data` on the file grown by the rows
    so far (rows: date, a, b), one answer per line."""
    import json

    import numpy as np
    data = write_csv(tmp_path / "recent.csv", ["date", "a", "b"], first)
    result = CliRunner().invoke(cli, ["predict", str(run), "--stream", "--data", data,
                                      "--steps", str(steps)],
                                input="".join(f"{line_of(row)}\n" for row in added))
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(added), result.stdout
    for k, answer in enumerate(answers, 1):
        grown = write_csv(tmp_path / f"grown{k}.csv", ["date", "a", "b"], first + added[:k])
        expected = json.loads(ok(invoke("predict", run, "--data", grown, "--steps", steps,
                                        "--json")))
        for column in ("a", "b"):
            np.testing.assert_allclose(answer["forecast"][column],
                                       expected["forecast"][column], rtol=1e-9)


def write_reviews(path, rows, header=REVIEW_HEADER) -> str:
    """A sentiment CSV: (text, label) rows under the task's default column names."""
    return write_csv(path, header, rows)


def bundled_reviews(per_class: int) -> list[tuple[str, str]]:
    """The first ``per_class`` fresh and then the first ``per_class`` rotten bundled Rotten
    Tomatoes snippets: a small, real, balanced slice."""
    from recurrent_plugins.sentiment.dataset import bundled_path, read_csv
    data = read_csv(bundled_path(), "text", "label")
    pairs = list(zip(data.texts, data.labels))
    return ([p for p in pairs if p[1] == "fresh"][:per_class]
            + [p for p in pairs if p[1] == "rotten"][:per_class])



def small_sentiment_ensemble(root):
    """A sentiment run of the default kind (an ensemble of 3 bidirectional GRUs, mean
    pooling, the wide part), small and trained a few steps, in ``root``/ens."""
    csv = write_reviews(root / "r.csv", bundled_reviews(60))
    run = root / "ens"
    ok(invoke("train", "sentiment", "--data", csv, "--out", run, "--ensemble", 3,
              "--steps", 4, "--hidden", 8, "--embed-dim", 4, "--threads", 1, "--quiet",
              "--no-plot", "--eval-every", 0))
    return run

def sunspot_rows() -> list[list]:
    """[[year, value], ...] of the bundled yearly sunspots series (1700-2008)."""
    from recurrent_plugins.forecast import series as dataio
    series = dataio.read_series(dataio.resolve_source("sunspots"), None, None)
    return [[int(t), float(v)] for t, v in zip(series.times, series.values[:, 0])]


def ctrl_c_around(monkeypatch, path_end, when):
    """Trainer.fit of the part whose run path ends with ``path_end`` gets a real SIGINT
    ``when``: "before" its fit (the part being set up, the outer handler installed),
    "finishing" (after its loop, in its own handler) or "after" its fit (between parts,
    even when it diverged)."""
    import signal

    from recurrent.trainer import Trainer
    fit, after = Trainer.fit, Trainer._after_training

    def ctrl_c():
        signal.raise_signal(signal.SIGINT)

    def wrapped_fit(self, resume=False):
        mine = self.run.path.endswith(path_end)
        if mine and when == "before":
            ctrl_c()
        try:
            return fit(self, resume=resume)
        finally:
            if mine and when == "after":
                ctrl_c()

    def wrapped_after(self):
        if self.run.path.endswith(path_end) and when == "finishing":
            ctrl_c()
        return after(self)

    monkeypatch.setattr(Trainer, "fit", wrapped_fit)
    monkeypatch.setattr(Trainer, "_after_training", wrapped_after)


def reversal_tsv(path, letters: str, draws: int, seed: int = 0):
    """A source<TAB>target file of distinct random words over ``letters`` (2-6 long,
    from ``draws`` draws) and their reversals, at ``path``: (path, the sorted words)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    words = sorted({"".join(rng.choice(list(letters), rng.integers(2, 7)))
                    for _ in range(draws)})
    path.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    return path, words


def plot_runs(root) -> dict:
    """Tiny seq2seq and forecast runs in ``root`` for `predict --plot` tests: {"s2s": (run,
    inputs), "fc": (run, inputs)}, the inputs predict takes for each."""
    import random
    rng = random.Random(0)
    words = ["".join(rng.choice("abcde") for _ in range(rng.randint(2, 6)))
             for _ in range(200)]
    pairs = root / "pairs.tsv"
    pairs.write_text("".join(f"{w}\t{' '.join(w.upper())}\n" for w in words),
                     encoding="utf-8")
    s2s, fc = root / "s2s", root / "fc"
    ok(invoke("train", "seq2seq", "--data", pairs, "--steps", 2, "--hidden", 8, "--embed-dim",
              4, "--threads", 1, "--quiet", "--no-plot", "--out", s2s))
    ok(invoke("train", "forecast", "--steps", 2, "--hidden", 8, "--window", 8, "--inputs",
              "level", "--model", "rnn", "--threads", 1, "--quiet", "--no-plot",
              "--out", fc))
    return {"s2s": (s2s, ["abc"]), "fc": (fc, [])}


def file_size_limit(limit: int):
    """A subprocess preexec_fn limiting the files the child writes to ``limit`` bytes
    (ulimit -f), a write past it failing with EFBIG rather than killing the child: a full
    disk at that point of the write."""
    import resource
    import signal

    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def read_only_run(directory, command, env) -> subprocess.CompletedProcess:
    """Run ``command`` (its output captured as text) with the tree under ``directory``
    read-only: its folders' write permission taken away for a user other than root, and
    for root, whom permissions do not stop, a read-only bind mount in a mount namespace
    of the command's own (the test is skipped where that cannot be made)."""
    directory = os.fspath(directory)
    if os.geteuid() != 0:
        folders = [directory] + [os.path.join(d, n) for d, names, _ in os.walk(directory)
                                 for n in names]
        for folder in folders:
            os.chmod(folder, 0o555)
        try:
            return subprocess.run(command, env=env, capture_output=True, text=True)
        finally:
            for folder in folders:
                os.chmod(folder, 0o755)
    mount = 'mount --bind -o ro "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    wrapper = ["unshare", "--mount", "sh", "-c", mount, directory]
    probe_file = os.path.join(directory, "probe")
    try:
        probe = subprocess.run(wrapper + ["touch", probe_file], capture_output=True,
                               text=True)
    except FileNotFoundError:
        pytest.skip("no unshare command to mount a read-only folder as root")
    if os.path.exists(probe_file) or "Read-only file system" not in probe.stderr:
        if os.path.exists(probe_file):
            os.remove(probe_file)
        pytest.skip(f"cannot mount a read-only folder here: {probe.stderr.strip()}")
    return subprocess.run(wrapper + [str(c) for c in command], env=env,
                          capture_output=True, text=True)


def unreadable_run(folder, *args):
    """`recurrent ARGS...` in a subprocess to which ``folder`` cannot be entered (reading
    a file in it fails with EACCES): its permissions taken away, and for root, whom
    permissions do not stop, the capabilities that pass over them dropped (setpriv; the
    test is skipped where that cannot be made). Its result as invoke's: exit_code,
    stdout, stderr, output."""
    import sys
    from types import SimpleNamespace
    folder = os.fspath(folder)
    wrapper = []
    if os.geteuid() == 0:
        wrapper = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search",
                   "--inh-caps=-all"]
    os.chmod(folder, 0)
    try:
        try:
            probe = subprocess.run(wrapper + ["ls", folder], capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip("no setpriv command to take read permission from root")
        if probe.returncode == 0:
            pytest.skip(f"cannot make {folder} unreadable here")
        done = subprocess.run(wrapper + [sys.executable, "-m", "recurrent"]
                              + [str(a) for a in args], capture_output=True, text=True,
                              env=installed_env())
    finally:
        os.chmod(folder, 0o755)
    return SimpleNamespace(exit_code=done.returncode, stdout=done.stdout, stderr=done.stderr,
                           output=done.stdout + done.stderr)


def checkpoint_params(run, name="last.npz") -> dict:
    """The "param/..." arrays of checkpoint ``name`` of the run directory ``run``."""
    from recurrent.checkpoint import load_arrays
    arrays, _ = load_arrays(str(run / name))
    return {k: v for k, v in arrays.items() if k.startswith("param/")}


def same_params(a, b) -> bool:
    """Whether two checkpoint_params results hold the same arrays, bit for bit."""
    import numpy as np
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def expected_int8_path(vector_code: str) -> str:
    """The int8 products' variant (recurrent._kernels.int8.instruction_path) a process
    whose vector code is ``vector_code`` must run on this CPU, RECURRENT_VECTOR_LEVEL
    other than avx2: AVX-512 VNNI where the AVX-512 level is in use and the CPU has
    AVX512_VNNI, else AVX-VNNI where the CPU and the build have it, else AVX2."""
    if vector_code == "portable":
        return "portable"
    from recurrent import tuning
    from recurrent._kernels import int8
    isa = tuning.machine_key()["isa"]
    if vector_code == "avx512" and "avx512_vnni" in isa:
        return "avx512_vnni"
    if "avx_vnni" in isa and int8.avx_vnni_built():
        return "avx_vnni"
    return "avx2"


@contextlib.contextmanager
def registered_plugin(plugin, name, **kwargs):
    """``plugin`` registered with recurrent's plugins under ``name`` for the with block
    (the test's own cells, losses or tasks), unregistered after it even on failure."""
    from recurrent import plugins
    plugins.register_plugin(plugin, name, **kwargs)
    try:
        yield
    finally:
        plugins.unregister_plugin(name)


def read_token_pool(vocab_size, embed_dim, hidden_size, wide_bigrams, capacity, ids):
    """A StreamPool over a small mean-pooled token model with a wide part (seed 0), whose
    stream "a" is open and has read ``ids``: (pool, that stream's state)."""
    import recurrent
    from recurrent.model import SequenceModel
    spec = {"input": "tokens", "vocab_size": vocab_size, "embed_dim": embed_dim,
            "output": "mean", "output_size": 2, "wide_bigrams": wide_bigrams}
    pool = recurrent.StreamPool(SequenceModel(spec, hidden_size=hidden_size, seed=0),
                                capacity=capacity)
    pool.open("a")
    pool.read("a", ids)
    return pool, pool.state("a")


def random_seq2seq(attention, cell, layers, bidirectional, seed=0, zoneout=0.0):
    """A fresh encoder-decoder (source vocabulary 7, target 9) whose parameters are
    drawn wider than the initialisation's, so that its decisions are not near ties."""
    import numpy as np

    from recurrent.seq2seq import Seq2SeqModel
    spec = {"model": "seq2seq", "source_vocab": 7, "target_vocab": 9, "embed_dim": 3,
            "attention": attention, "bos": 1, "eos": 2, "output": "sequence",
            "output_size": 9}
    model = Seq2SeqModel(spec, cell=cell, hidden_size=4, num_layers=layers,
                         bidirectional=bidirectional, seed=seed, num_threads=1,
                         zoneout=zoneout).eval()
    model.params[...] = np.random.default_rng(seed).normal(0, 0.6, model.params.shape)
    model.params_changed()
    return model


def padded_sources(sources):
    """(S, B) int64 source ids padded with 0 (S >= 1), and their lengths."""
    import numpy as np

    from recurrent.seq2seq.model import source_lengths
    src = np.zeros((max(1, max(map(len, sources))), len(sources)), np.int64)
    for b, row in enumerate(sources):
        src[:len(row), b] = row
    return src, source_lengths(src)
