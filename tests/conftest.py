"""Shared fixtures. Entry-point autoload is off for the whole suite, so third-party plugins
installed in the environment cannot change test results; the result cache lives in a
temporary directory; kernel tuning is off."""
import atexit
import os
import shutil
import tempfile

os.environ["RECURRENT_NO_ENTRYPOINTS"] = "1"
# results cached per dataset (recurrent/cache.py) go to a directory of this session only
os.environ["RECURRENT_CACHE_DIR"] = tempfile.mkdtemp(prefix="recurrent-test-cache-")
atexit.register(shutil.rmtree, os.environ["RECURRENT_CACHE_DIR"], True)
# the kernels run their fixed default settings: no test waits for (or depends on) the
# automatic first-use tuning (recurrent/tuning.py); tests/test_tuning.py turns it on
os.environ["RECURRENT_TUNE"] = "off"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

CELL_NAMES = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
TORCH_CELL_NAMES = ("rnn_tanh", "rnn_relu", "lstm", "gru")  # the ones torch.nn has
BACKENDS = ("reference", "fast")


def cell_for(name, backend):
    """The cell object named ``name``: the plain-numpy reference, or the registered fast one."""
    if backend == "reference":
        from recurrent.reference import get_reference_cell
        return get_reference_cell(name)
    pytest.importorskip("recurrent_plugins.cells",
                        reason="the fast built-in cells (recurrent_plugins.cells) are not built")
    from recurrent.plugins import get_cell
    return get_cell(name)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run a test once with the reference cells and once with the fast built-in cells."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def every_region_threaded():
    """Small problems share their parallel regions between threads too (kernel_threads
    otherwise keeps work below min_parallel_flops on one thread). The process's settings
    are decided first, so that a layer's first call does not apply them over these."""
    from recurrent import tuning as kernel_tuning
    from recurrent._kernels import tuning
    kernel_tuning.ensure()
    saved = tuning.current()
    tuning.apply(dict(saved, min_parallel_flops=0))
    yield
    tuning.apply(saved)


@pytest.fixture(scope="session")
def task_runs(tmp_path_factory):
    """task name -> directory of a tiny real run of each built-in task, trained once for
    the session. Tests read these runs (or copy them before editing); none writes in them."""
    from helpers import (bundled_reviews, invoke, ok, reversal_tsv, tiny_text, train_tiny,
                         write_reviews)
    small = ("--hidden", 8, "--threads", 1, "--quiet", "--no-plot")
    root = tmp_path_factory.mktemp("task_runs")
    made = {"char-lm": root / "char", "forecast": root / "fc", "sentiment": root / "sent",
            "seq2seq": root / "s2s"}
    ok(train_tiny(tiny_text(root), made["char-lm"]))
    ok(invoke("train", "forecast", "--model", "hybrid", "--window", 8, "--steps", 2,
              *small, "--out", made["forecast"]))
    reviews = write_reviews(root / "reviews.csv", bundled_reviews(60))
    ok(invoke("train", "sentiment", "--data", reviews, "--steps", 2, "--ensemble", 1,
              "--embed-dim", 4, *small, "--out", made["sentiment"]))
    tsv, _ = reversal_tsv(root / "pairs.tsv", "abcd", 800)
    ok(invoke("train", "seq2seq", "--data", tsv, "--steps", 2, "--embed-dim", 4, *small,
              "--out", made["seq2seq"]))
    return made
