"""The seq2seq task's batching on a user's own TSV: a pair is grouped and capped
by the steps pair_batch pads it to (the longer of its source and its target + EOS), so a
target much longer than its source (a number -> its words, an abbreviation -> its
expansion) does not pad the short pairs batched with it to its length."""
import random

import numpy as np
import pytest

from recurrent_plugins.seq2seq import data
from recurrent_plugins.sentiment.text import MAX_BATCH_SLOTS, length_buckets

LONG = 3000  # target symbols: 128 short pairs padded to it would exceed MAX_BATCH_SLOTS


def _source_in(split):
    """A short source ("x" + digits) that the hashed split puts in ``split``."""
    return next(f"x{k}" for k in range(10_000) if data.split_of(f"x{k}") == split)


@pytest.fixture()
def prepared(tmp_path):
    pytest.importorskip("sacrebleu", reason="sacrebleu not installed (the seq2seq extra)")
    from recurrent_plugins.seq2seq.task import Seq2Seq
    rng = random.Random(5)
    words = sorted({"".join(rng.choice("abcdef") for _ in range(rng.randint(2, 6)))
                    for _ in range(4000)})
    lines = [f"{w}\t{w[::-1]}" for w in words]
    long_target = "".join(rng.choice("abcdef") for _ in range(LONG))
    for split in ("train", "valid"):
        lines.append(f"{_source_in(split)}\t{long_target}")
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = Seq2Seq()
    config = {"data": str(path), "batch_size": 128}
    return task, task.prepare(config), config


def test_padded_steps_are_the_longer_side_with_eos():
    assert data.padded_steps([[5], [5, 6, 7, 9]], [[4, 8, 9], [4]]).tolist() == [4, 4]
    batch = data.pair_batch([[5], [5, 6, 7, 9]], [[4, 8, 9], [4]])
    assert batch["x"].shape[0] == data.padded_steps([[5, 6, 7, 9]], [[4]]).max()


def test_a_long_target_is_not_batched_with_short_pairs_in_training(prepared):
    task, state, config = prepared
    batches = list(task.batches(state, "train", config, np.random.default_rng(0)))
    assert sum(b["x"].shape[1] for b in batches) == len(task.pairs(state, "train", config))
    long_batches = [b for b in batches if b["x"].shape[0] > LONG]
    assert len(long_batches) == 1
    for b in batches:
        T, B, _ = b["x"].shape
        assert B == 1 or T * B <= MAX_BATCH_SLOTS, (T, B)


def test_a_long_target_is_not_batched_with_short_pairs_in_evaluation(prepared):
    """evaluate()'s loss pass on the valid split (which holds the other long target):
    every forward batch within the cap, and the figures those batches give."""
    from recurrent.seq2seq import Seq2SeqModel
    task, state, config = prepared
    model = Seq2SeqModel(task.model_spec(state, config), hidden_size=4, seed=0).runner()
    shapes = []
    forward = model.forward

    def recording(x, **kwargs):
        shapes.append(x.shape[:2])
        return forward(x, **kwargs)

    model.forward = recording
    out = task.evaluate(state, "valid", {**config, "max_eval": 0}, model)
    assert sum(B for _, B in shapes) == out["pairs"] == len(task.pairs(state, "valid", config))
    assert max(T for T, _ in shapes) > LONG
    assert all(B == 1 or T * B <= MAX_BATCH_SLOTS for T, B in shapes), shapes
    assert np.isfinite(out["loss"]) and 0 <= out["exact"] <= 1


def test_a_run_saved_before_batch_by_keeps_its_source_length_batches(prepared):
    """A state without "batch_by" (runs made before it) batches training by source length
    as it did, so a resumed run continues on the batches it began."""
    task, state, config = prepared
    assert state["batch_by"] == "padded"
    old = {k: v for k, v in state.items() if k != "batch_by"}
    task.check_state(old, task.model_spec(old, config))
    sources, _, rows = task._batch_rows(old, "train", config, np.random.default_rng(0))
    expected = length_buckets(np.array([len(s) for s in sources]), 128,
                              np.random.default_rng(0))
    assert [r.tolist() for r in rows] == [r.tolist() for r in expected]
    _, _, new_rows = task._batch_rows(state, "train", config, np.random.default_rng(0))
    assert [r.tolist() for r in new_rows] != [r.tolist() for r in expected]
