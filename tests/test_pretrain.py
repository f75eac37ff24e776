"""Language-model pretraining (recurrent/pretrain.py) on real text, and the sentiment task's
--pretrain-epochs: what it learns, which parameters it sets, reproducibility."""
import numpy as np
import pytest
from helpers import bundled_reviews, invoke, ok, write_reviews

from recurrent.config import TrainingConfig
from recurrent.errors import UserError
from recurrent.lengths import reversal_index, reverse_rows
from recurrent.pretrain import next_token_batch, pretrain_language_model
from recurrent.runs import start_run
from recurrent_plugins.sentiment import TASK
from recurrent_plugins.sentiment.text import length_buckets, pad_batch


def test_reverse_rows_reverses_each_row_of_ids_within_its_length():
    x = np.array([[1, 4, 7], [2, 5, 0], [3, 0, 0]])  # (T=3, B=3), rows 123, 45, 7
    rev = reversal_index(np.array([3, 2, 1]), 3)
    np.testing.assert_array_equal(reverse_rows(x, rev), [[3, 5, 7], [2, 4, 0], [1, 0, 0]])


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


def test_the_reverse_model_predicts_each_previous_token():
    """Rows "a 2" with a drawn from ten tokens: the next token is always 2 (the forward
    model learns it), the previous one is any of ten (the reverse model cannot do better
    than log 10 nats): the reverse model reads the rows reversed."""
    rng = np.random.default_rng(0)
    first = rng.integers(3, 13, size=1024)

    def batches(order):
        for rows in np.array_split(order.permutation(1024), 32):
            yield np.stack([first[rows], np.full(len(rows), 2)]), np.full(len(rows), 2)

    _, losses = pretrain_language_model(_config(threads=1, lr=0.02), 13, 8, batches, 3)
    assert losses[0][-1] < 0.1
    assert np.log(10) - 0.1 < losses[1][-1] < np.log(10) + 0.3


def test_both_directions_read_one_embedding(snippets):
    """The embedding is the forward model's: the forward half is the one a
    unidirectional run gets; the reverse half differs from it."""
    _, state, sequences = snippets
    vocab = len(state["vocab"])
    both, _ = pretrain_language_model(_config(threads=1), vocab, 16, _batches(sequences), 1)
    forward, _ = pretrain_language_model(_config(threads=1, bidirectional=False), vocab, 16,
                                         _batches(sequences), 1)
    assert set(forward) == {n for n in both if not n.endswith("_reverse")}
    for name in forward:
        np.testing.assert_array_equal(both[name], forward[name])
    assert not np.allclose(both["rnn.weight_hh_l0"], both["rnn.weight_hh_l0_reverse"])


def test_a_unidirectional_run_gets_every_layer(snippets):
    _, state, sequences = snippets
    values, _ = pretrain_language_model(_config(threads=1, bidirectional=False, layers=2),
                                        len(state["vocab"]), 8, _batches(sequences[:200]), 1)
    assert {n for n in values if n.startswith("rnn.weight_hh")} == \
        {"rnn.weight_hh_l0", "rnn.weight_hh_l1"}


def test_a_diverging_language_model_is_one_line(snippets):
    _, state, sequences = snippets
    with pytest.raises(UserError, match=r"^pretraining the forward language model stopped: "
                                        r".*\(try a lower --lr or --clip-norm\)$"):
        pretrain_language_model(_config(threads=1, optimizer="sgd", lr=1e30, clip_norm=0),
                                len(state["vocab"]), 16, _batches(sequences), 1)


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
                                               layers=2, pretrain_epochs=1, ensemble=1))
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


@pytest.mark.parametrize("signame, code, how", [("SIGINT", 130, "interrupted"),
                                                 ("SIGTERM", 143, "terminated (SIGTERM)")])
def test_a_ctrl_c_while_pretraining_stops_it_saving_nothing(snippets, tmp_path, monkeypatch,
                                                           signame, code, how):
    # A first Ctrl-C (or a SIGTERM, the same request) stops pretraining at its next
    # batch, and the part being set up (here the second of two ensemble members) is
    # left without a checkpoint: a half-pretrained model is no state a resume could
    # continue. The member before it stays saved, and --resume trains the second from
    # its start: the run equals one never interrupted.
    import signal

    from recurrent import pretrain
    data = snippets[0]
    args = ["--data", data, "--threads", "1", "--quiet", "--no-plot", "--steps", "2",
            "--hidden", "8", "--embed-dim", "8", "--pretrain-epochs", "2", "--ensemble", "2"]
    step, calls = pretrain.train_step, []

    def counted(*a, **k):
        calls.append(1)
        if len(calls) == cut_at:
            signal.raise_signal(getattr(signal, signame))
        return step(*a, **k)

    cut_at = 0
    monkeypatch.setattr(pretrain, "train_step", counted)
    ok(invoke("train", "sentiment", "--out", tmp_path / "whole", *args))
    per_member = len(calls) // 2
    calls.clear()
    cut_at = per_member + 2  # the second batch of the second member's pretraining
    run = tmp_path / "cut"
    result = invoke("train", "sentiment", "--out", run, *args)
    assert result.exit_code == code, result.stderr
    assert result.output.splitlines()[-1] == (
        f"{how} while pretraining of member 2/2, before its first step: nothing of it "
        f"saved; continue with `recurrent train sentiment --resume {run}`")
    assert len(calls) == cut_at
    assert (run / "member-0" / "best.npz").exists()
    assert not list((run / "member-1").glob("*.npz"))
    cut_at = 0
    ok(invoke("train", "--resume", run))
    for member in ("member-0", "member-1"):
        whole, cut = (np.load(tmp_path / name / member / "best.npz")
                      for name in ("whole", "cut"))
        assert sorted(whole.files) == sorted(cut.files)
        for key in whole.files:
            np.testing.assert_array_equal(whole[key], cut[key])
