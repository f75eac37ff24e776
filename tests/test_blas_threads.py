"""The command line runs BLAS on one thread (recurrent/threads.py): what calls BLAS
outside the kernels, here the sentiment task's L-BFGS fits of its baselines and wide part,
gives the same bits whatever thread count OpenBLAS would pick from the machine's cores
(before, the bundled reviews' wide weights differed between OPENBLAS_NUM_THREADS=1 and 2)."""
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from helpers import invoke, ok, write_reviews
from recurrent_plugins.sentiment import baselines as bl


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def many_word_reviews(path, rows=600, words=3000, seed=0):
    """Reviews of random words whose label follows a marker word."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(words)]
    out = []
    for r in range(rows):
        label = ("pos", "neg")[r % 2]
        text = [vocab[j] for j in rng.integers(0, words, 14)]
        text.insert(int(rng.integers(0, 14)), "great" if label == "pos" else "dull")
        out.append((" ".join(text), label))
    return write_reviews(path, out)


def test_every_command_runs_blas_on_one_thread(tmp_path, monkeypatch):
    data = many_word_reviews(tmp_path / "reviews.csv")
    seen = []
    fit = bl.LogisticRegression.fit

    def recording_fit(self, *args, **kwargs):
        seen.append(blas_threads())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(bl.LogisticRegression, "fit", recording_fit)
    with threadpool_limits(limits=2, user_api="blas"):
        ok(invoke("train", "sentiment", "--data", data, "--steps", 2, "--ensemble", 1,
                  "--threads", 1, "--quiet", "--out", tmp_path / "run"))
        after = blas_threads()
    assert seen and all(set(counts) == {1} for counts in seen)
    assert set(after) == {2}  # the caller's setting is back


def test_info_shows_the_blas_threads_outside_the_pin():
    """info runs inside the pin like every command, but reports the count BLAS has for
    the rest of the process (it read 1 whatever the machine's setting)."""
    import json
    with threadpool_limits(limits=2, user_api="blas"):
        shown = json.loads(ok(invoke("info", "--json")))["blas"]
    assert shown and {lib["num_threads"] for lib in shown} == {2}


def test_info_says_recurrent_runs_blas_on_one_thread():
    """The text names both counts: the one recurrent's commands and kernels use, and the
    library's own outside them."""
    with threadpool_limits(limits=2, user_api="blas"):
        lines = [line for line in ok(invoke("info")).splitlines() if line.startswith("blas")]
    assert lines and all("run on 1 thread by recurrent (2 otherwise" in line
                         for line in lines)
