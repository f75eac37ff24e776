"""Language-model pretraining (recurrent/pretrain.py) on real text, and the sentiment task's
--pretrain-epochs: what it learns, which parameters it sets, reproducibility."""
import numpy as np
import pytest
from helpers import bundled_reviews, write_reviews

from recurrent.config import TrainingConfig
from recurrent.pretrain import next_token_batch, pretrain_language_model, reverse_rows
from recurrent.runs import start_run
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.text import length_buckets, pad_batch


def test_reverse_rows_reverses_each_row_within_its_length():
    x = np.array([[1, 4, 7], [2, 5, 0], [3, 0, 0]])  # (T=3, B=3), rows 123, 45, 7
    out = reverse_rows(x, np.array([3, 2, 1]))
    np.testing.assert_array_equal(out, [[3, 5, 7], [2, 4, 0], [1, 0, 0]])
    np.testing.assert_array_equal(reverse_rows(out, np.array([3, 2, 1])), x)


def test_next_token_batch_shifts_by_one_and_drops_single_tokens():
    x = np.array([[1, 4], [2, 0], [3, 0]])
    inputs, targets, lengths = next_token_batch(x, np.array([3, 1]))
    np.testing.assert_array_equal(inputs, [[1, 4], [2, 0]])
    np.testing.assert_array_equal(targets, [[2, 0], [3, 0]])
    np.testing.assert_array_equal(lengths, [2, 0])


@pytest.fixture(scope="module")
def snippets(tmp_path_factory):
    """The training texts of 500 + 500 bundled review snippets, as the task encodes them."""
    data = write_reviews(tmp_path_factory.mktemp("rt") / "slice.csv", bundled_reviews(500))
    state = TASK.prepare({"data": data})
    sequences, _ = TASK.split_rows(state, "train", {})
    return data, state, sequences


def _batches(sequences, batch_size=32):
    lengths = np.array([len(s) for s in sequences])

    def batches(rng):
        for rows in length_buckets(lengths, batch_size, rng):
            yield pad_batch([sequences[i] for i in rows])
    return batches


def _config(**changes):
    return TrainingConfig(dict(TrainingConfig.resolve(TASK, {"quiet": True}), hidden=16,
                               **changes))


def test_language_models_learn_the_texts(snippets):
    """Both directions' training loss falls epoch after epoch and ends far below a uniform
    guess over the vocabulary (log V nats per token)."""
    _, state, sequences = snippets
    vocab = len(state["vocab"])
    values, losses = pretrain_language_model(_config(threads=1), vocab, 16,
                                             _batches(sequences), 3)
    assert len(losses) == 2
    for per_epoch in losses:
        assert all(b < a for a, b in zip(per_epoch, per_epoch[1:]))
        assert per_epoch[-1] < np.log(vocab) - 1.0
    names = set(values)
    assert "embedding.weight" in names
    assert {"rnn.weight_ih_l0", "rnn.weight_hh_l0_reverse"} <= names
    assert not any(n.startswith(("head.", "wide.")) for n in names)


def test_the_reverse_model_reads_the_forward_embedding_and_predicts_backwards(snippets):
    """The reverse half is trained on reversed rows: its weights differ from the forward
    half's; the embedding is the forward model's (kept fixed while the reverse one
    trains): one direction alone gives the same embedding."""
    _, state, sequences = snippets
    vocab = len(state["vocab"])
    both, _ = pretrain_language_model(_config(threads=1), vocab, 16, _batches(sequences), 1)
    forward, _ = pretrain_language_model(_config(threads=1, bidirectional=False), vocab, 16,
                                         _batches(sequences), 1)
    np.testing.assert_array_equal(both["embedding.weight"], forward["embedding.weight"])
    np.testing.assert_array_equal(both["rnn.weight_hh_l0"], forward["rnn.weight_hh_l0"])
    assert "rnn.weight_hh_l0_reverse" not in forward
    assert not np.allclose(both["rnn.weight_hh_l0"], both["rnn.weight_hh_l0_reverse"])


def test_pretraining_is_a_function_of_the_seed_and_not_of_the_threads(snippets):
    _, state, sequences = snippets
    vocab = len(state["vocab"])
    runs = [pretrain_language_model(_config(threads=t, seed=s), vocab, 16,
                                    _batches(sequences), 1)[0]
            for t, s in ((1, 3), (2, 3), (1, 4))]
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])
    assert not np.array_equal(runs[0]["rnn.weight_ih_l0"], runs[2]["rnn.weight_ih_l0"])


def test_sentiment_starts_from_the_pretrained_values(snippets, tmp_path):
    """--pretrain-epochs: a fresh run's embedding and RNN are the language models' values
    (for any cell and depth: an LSTM of two layers here; the upper layer of a bidirectional
    stack reads both directions and starts fresh), the wide part still the NB
    classifier's, and training goes on from there."""
    data, state, sequences = snippets
    base = {p.name: p.default for p in TASK.options()}
    config = TrainingConfig.resolve(TASK, dict(base, data=data, threads=1, quiet=True,
                                               steps=1, hidden=8, embed_dim=8, cell="lstm",
                                               layers=2, pretrain_epochs=1))
    expected = TASK.initial_params(TASK.prepare(config), config)
    trainer = start_run(TASK, config, str(tmp_path / "run"), echo=lambda line: None)
    trainer._initial_params()
    params = trainer.model.named_params
    rnn = [n for n in params if n.startswith("rnn.")]
    assert len(rnn) == 16  # 4 tensors x 2 layers x 2 directions
    first = [n for n in rnn if "_l0" in n]
    assert len(first) == 8 and not set(rnn) - set(first) & set(expected)
    for name in first + ["embedding.weight", "wide.weight"]:
        np.testing.assert_array_equal(params[name], expected[name])
    trainer.fit()
