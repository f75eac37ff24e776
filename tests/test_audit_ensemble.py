"""Mutation audit, round 2: how recurrent/ensemble.py combines its members when it steps
(char-lm sampling reads EnsembleModel.step), checked against each member run on its own.

The existing tests check forward() and the StreamPool; step() was left open: an ensemble
that stepped every member but combined only the first's output, or handed every member
the first member's state, passed them. Here each member's own whole-sequence forward
gives its softmax per step; the ensemble's step must give the mean of those (cross
entropy's combine: the log of the mean probability), step after step."""
import numpy as np
import pytest

from recurrent.ensemble import EnsembleModel, MemberStates
from recurrent.model import SequenceModel
from recurrent.plugins import get_loss


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _members():
    spec = {"input": "tokens", "vocab_size": 7, "embed_dim": 4, "output_size": 7,
            "output": "sequence"}
    return [SequenceModel(spec, cell="lstm", hidden_size=5, seed=s) for s in (0, 1, 2)]


def test_step_is_the_mean_of_the_members_probabilities_with_their_own_states():
    members = _members()
    for m in members:
        m.eval()
    x = np.array([[1, 4], [3, 3], [6, 0], [2, 5]])  # (T=4, B=2) token ids
    # each member on its own, the whole sequence at once: (T, B, V) probabilities
    expected = np.mean([_softmax(m.forward(x, need_grad=False)[0]) for m in members], axis=0)
    ensemble = EnsembleModel(members, get_loss("cross_entropy"))
    state = None
    for t in range(len(x)):
        y, state = ensemble.step(x[t], state)
        assert isinstance(state, MemberStates) and len(state) == 3
        np.testing.assert_allclose(_softmax(y), expected[t], atol=1e-5)
    # the members differ, so a combination of the first alone would be caught
    first = _softmax(members[0].forward(x, need_grad=False)[0])
    assert np.abs(first - expected).max() > 1e-3


def test_forward_without_a_combine_rule_is_the_plain_mean():
    members = _members()
    for m in members:
        m.eval()
    x = np.array([[1, 4], [3, 3], [6, 0]])
    outs = [m.forward(x, need_grad=False)[0].astype(np.float64) for m in members]
    y, _ = EnsembleModel(members, get_loss("mse")).forward(x)
    np.testing.assert_allclose(y, sum(outs) / 3, atol=1e-6)


def test_fit_summary_clipped_fraction_is_weighted_by_each_members_steps(monkeypatch):
    """The ensemble's clipped fraction is that of all its steps: members of 10 and 30
    steps that clipped half and a tenth of theirs clipped (5 + 3) / 40 = 0.2 of the
    steps (not (0.5 + 0.1) / 2 = 0.3, nor 8 / 2)."""
    from recurrent import ensemble, in_turn

    summaries = [{"status": "done", "step": 10, "clipped_fraction": 0.5},
                 {"status": "early-stopped", "step": 30, "clipped_fraction": 0.1}]
    monkeypatch.setattr(in_turn, "train", lambda *a, **k: (summaries, None))
    trainer = object.__new__(ensemble.EnsembleTrainer)
    trainer.size, trainer.config, trainer.echo = 2, {"quiet": True}, print
    trainer.plan = trainer.config  # the options of this invocation (runs._resumed's)

    class Root:
        is_root = False
    trainer.world = Root()
    trainer.run = type("Run", (), {"path": "RUN"})()
    out = trainer.fit()
    assert out["step"] == 40
    assert out["clipped_fraction"] == pytest.approx(0.2)
    assert out["steps_text"] == "2 members of 10, 30 steps (1 stopped early)"


def test_trainer_counts_every_members_parameters(monkeypatch):
    """The parameter count an ensemble's training reports is K times a member's (each
    member is a whole model of the same spec)."""
    from recurrent import ensemble, in_turn

    monkeypatch.setattr(in_turn, "num_params", lambda config, spec: 1234)
    trainer = object.__new__(ensemble.EnsembleTrainer)
    trainer.size = 3
    trainer._infos = [{"config": {}, "model_spec": {}}] * 3
    assert trainer.num_params == 3 * 1234
