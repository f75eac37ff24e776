"""A metrics.jsonl line with bytes that are not UTF-8 (a damaged disk block, an editor's
save in latin-1) made `train --resume` fail with "checkpoint RUN/last.npz is corrupted or
incomplete (UnicodeDecodeError ...)": the wrong file blamed, and a good checkpoint the
user may now delete. metrics.jsonl's reader skips lines it cannot read (as it does a
cut-off line), so the run resumes."""
import shutil

import pytest
from helpers import invoke, ok

from recurrent.checkpoint import LAST, METRICS


@pytest.fixture
def run(task_runs):
    """The session's tiny char-lm run (read only: a test that edits it copies it first)."""
    return task_runs["char-lm"]


def test_resume_reads_past_a_metrics_line_that_is_not_utf8(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    checkpoint = (copy / LAST).read_bytes()
    with open(copy / METRICS, "ab") as f:
        f.write(b'{"kind": "note", "text": "caf\xe9"}\n')
    result = invoke("train", "--resume", copy, "--steps", 3, "--quiet")
    assert "last.npz is corrupted" not in result.stderr, result.stderr
    ok(result)
    assert (copy / LAST).read_bytes() != checkpoint  # it trained on
    ok(invoke("eval", copy))


def test_a_line_that_is_not_utf8_is_skipped_not_mended(tmp_path):
    """Read with replacement characters, a bad byte inside a string parsed into a record
    holding U+FFFD; the damaged line is skipped like a cut-off one."""
    from recurrent.checkpoint import RunDir
    run = RunDir(str(tmp_path))
    (tmp_path / METRICS).write_bytes(b'{"step": 1, "loss": 0.5}\n'
                                     b'{"kind": "note", "text": "caf\xe9"}\n'
                                     b'{"step": 2, "loss": 0.4\xff}\n'
                                     b'{"step": 3, "loss": 0.3}\n')
    assert run.read_metrics() == [{"step": 1, "loss": 0.5}, {"step": 3, "loss": 0.3}]
