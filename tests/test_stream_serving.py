"""`recurrent predict RUN --stream` as a long-running serving process: a line holding bytes
that are not UTF-8 is that line's error whatever decoder the locale gives stdin (with a
strict one it ended the whole stream, answers to lines read with it included), and a
seq2seq line's memory does not grow with the square of its length (the decoder kept
attention weights of every output step over every source symbol, which the answer never
reads), and a stream started with its standard input closed reads no lines (it failed
as an internal error). A line that needs more memory than the process may have is that
line's error and the stream goes on, as recurrent.predict_stream refuses such an input;
a seq2seq line with symbols outside the vocabulary is refused in a message of bounded
length, whatever the line's."""
import json
import os
import resource
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from helpers import installed_env

import recurrent
from recurrent import cli
from recurrent.runs import load_model
from recurrent.seq2seq import Seq2SeqModel, greedy, search


def test_a_line_that_is_not_utf8_is_refused_under_a_strict_stdin_decoder(task_runs, tmp_path):
    # PYTHONIOENCODING=utf-8 decodes stdin strictly, as every UTF-8 locale but C.UTF-8 does
    proc = subprocess.run([sys.executable, "-m", "recurrent", "predict",
                           str(task_runs["sentiment"]), "--stream"],
                          input=b"good\n\xff bad\ngood\n", capture_output=True, cwd=tmp_path,
                          env=installed_env(PYTHONIOENCODING="utf-8"), timeout=120)
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    answers = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(answers) == 3, answers
    assert answers[1] == {"error": "the line is not UTF-8 text (byte 0xff)"}
    assert answers[0]["text"] == answers[2]["text"] == "good"
    assert stderr.splitlines() == ["Error: line 2: the line is not UTF-8 text (byte 0xff)"]


def test_a_long_seq2seq_stream_line_keeps_no_attention_weights(task_runs):
    run, _, task = cli._open_run(task_runs["seq2seq"])
    model, info = load_model(run, "best")
    answer = task.predict_stream(info["task_state"], info["config"], model.runner(), {})
    line = "abcd" * 500  # 2000 symbols: up to 4010 output steps under the default limit
    tracemalloc.start()
    try:
        output = answer(line)["output"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(output) > 1000  # the tiny run does not end early: what is measured is there
    # the weights of len(output) steps over 2000 symbols would be more than 16 MB
    assert peak < 8e6, peak


@pytest.mark.parametrize("beam", [1, 3])
def test_decoding_without_attention_finds_the_same_hypotheses(beam):
    spec = {"model": "seq2seq", "source_vocab": 7, "target_vocab": 6, "embed_dim": 3,
            "attention": "general", "bos": 1, "eos": 2, "output": "sequence",
            "output_size": 6}
    model = Seq2SeqModel(spec, hidden_size=4, seed=0).eval()
    src = np.array([[3, 4, 5, 6], [4, 5, 6, 0], [5, 3, 0, 0]]).T  # (S, B), 0 pads
    decode = (lambda **kw: greedy(model, src, **kw)) if beam == 1 else \
        (lambda **kw: search(model, src, beam=beam, **kw))
    full, bare = decode(), decode(attention=False)
    assert full.attention is not None and bare.attention is None
    for name in ("tokens", "lengths", "finished", "scores", "normalised"):
        np.testing.assert_array_equal(getattr(bare, name), getattr(full, name))


def test_a_stream_started_with_stdin_closed_reads_no_lines(task_runs, tmp_path):
    # a supervisor may start it with file descriptor 0 closed: Python's sys.stdin is None
    proc = subprocess.run([sys.executable, "-m", "recurrent", "predict",
                           str(task_runs["char-lm"]), "--stream"],
                          stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0),
                          capture_output=True, text=True, cwd=tmp_path, env=installed_env(),
                          timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_a_line_too_large_for_memory_is_that_lines_error(task_runs, tmp_path):
    # 1500 MB of address space holds the command but not a 10-million-symbol source's
    # encoder states
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1500 * 2**20, 1500 * 2**20))
    lines = b"abcd\n" + b"abcd" * 2_500_000 + b"\ndcba\n"
    proc = subprocess.run([sys.executable, "-m", "recurrent", "predict",
                           str(task_runs["seq2seq"]), "--stream"],
                          input=lines, capture_output=True, cwd=tmp_path, env=installed_env(),
                          preexec_fn=limit, timeout=300)
    stderr = proc.stderr.decode()
    assert proc.returncode == 1, stderr
    answers = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [a.get("input") for a in answers] == ["abcd", None, "dcba"], stderr
    assert "not enough memory" in answers[1]["error"]
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith("Error: line 2: not enough memory"), stderr


def test_a_long_seq2seq_line_of_unknown_symbols_is_refused_in_a_short_message(task_runs):
    answer = recurrent.predict_stream(task_runs["seq2seq"])
    line = "abcd" * 50_000 + "efghijklmn"  # the run knows a-d only
    with pytest.raises(recurrent.UserError) as refused:
        answer(line)
    message = str(refused.value)
    assert len(message) < 300, message[:300]
    assert "(200010 characters)" in message
    assert message.endswith("never saw in training: 'e', 'f', 'g', 'h', 'i' and 5 more")
    assert answer("abcd")["input"] == "abcd"  # the stream goes on
