"""The recurrent-dropout and zoneout masks a layer hands its cell, checked against the
layer's options (recurrent/masks.py, recurrent/layers.py; README "Recurrent dropout and
zoneout", docs/training.md):

- training (a forward that backward follows): "recurrent" (B, H) holds 0 with probability
  recurrent_dropout and 1 / (1 - p) elsewhere; "zoneout" one (T, B, H) array per state,
  1 with probability zoneout, else 0; both follow the layer's seed.
- evaluation, need_grad=False and single steps: no recurrent dropout, and zoneout's
  expectation, k = p everywhere: s_t = p s_{t-1} + (1 - p) candidate_t.

The layer runs for real over a reference cell (recurrent/reference.py) that also keeps a
copy of the masks argument of each call; the real compiled layers (LSTM, GRU, RNN) are
compared with the reference cell's forward given the masks the rules above prescribe.

Legend: T time, B batch, I input, H hidden.
"""
import numpy as np
import pytest

from recurrent.layers import GRU, LSTM, RNN, Recurrent
from recurrent.layout import param_name
from recurrent.masks import variational_mask, zoneout_mask
from recurrent.reference import get_reference_cell

CELL_NAMES = ("rnn_tanh", "rnn_relu", "lstm", "gru", "ln_lstm")
DTYPES = (np.float64, np.float32)
# many mask entries per call, so that a share is within a few standard errors of its rate
T, B, I, H = 8, 128, 3, 40
P_RECURRENT, P_ZONEOUT = 0.3, 0.2


def _recording(name, flags_dtype=None):
    """The reference cell ``name`` (its real arithmetic runs) keeping a copy of the masks
    argument of every forward call in .calls (None when the layer passes none).
    flags_dtype: declare zoneout_flags for that dtype, so the layer hands bool flags."""
    base = type(get_reference_cell(name))

    class Recording(base):
        def __init__(self):
            super().__init__()
            self.calls = []
            if flags_dtype is not None:
                self.zoneout_flags = (flags_dtype,)

        def forward(self, x, states, params, lengths, num_threads=1, masks=None):
            self.calls.append(None if masks is None else {
                kind: (tuple(None if k is None else np.array(k) for k in value)
                       if kind == "zoneout" else np.array(value))
                for kind, value in masks.items()})
            return super().forward(x, states, params, lengths, num_threads, masks=masks)

    return Recording()


def _x(dtype, seed=0, T=T, B=B):
    return np.random.default_rng(seed).standard_normal((T, B, I)).astype(dtype)


def _assert_rate(share, p, n, what):
    """share of n independent draws is p within 4 binomial standard errors."""
    se = np.sqrt(p * (1 - p) / n)
    assert abs(share - p) < 4 * se, f"{what}: share {share:.4f}, expected {p} +- {4 * se:.4f}"


# ---- training: the rates ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_training_recurrent_dropout_mask_drops_p_and_scales_the_rest(name, dtype):
    cell = _recording(name)
    layer = Recurrent(cell, I, H, seed=0, dtype=dtype, recurrent_dropout=P_RECURRENT)
    layer(_x(dtype))
    (masks,) = cell.calls
    assert set(masks) == {"recurrent"}          # no zoneout asked for
    m = masks["recurrent"]
    assert m.shape == (B, H) and m.dtype == dtype
    dropped = m == 0
    _assert_rate(dropped.mean(), P_RECURRENT, m.size, f"{name} recurrent dropout zeros")
    kept = m[~dropped]
    np.testing.assert_allclose(kept, 1 / (1 - P_RECURRENT), rtol=np.finfo(dtype).eps, atol=0)
    assert np.all(kept == kept[0])


@pytest.mark.parametrize("flags", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_training_zoneout_keeps_each_state_with_probability_p(name, dtype, flags):
    cell = _recording(name, flags_dtype=dtype if flags else None)
    layer = Recurrent(cell, I, H, seed=0, dtype=dtype, zoneout=P_ZONEOUT)
    layer(_x(dtype))
    (masks,) = cell.calls
    assert set(masks) == {"zoneout"}            # no recurrent dropout asked for
    zone = masks["zoneout"]
    assert len(zone) == len(cell.state_names)
    for i, k in enumerate(zone):
        assert k.shape == (T, B, H) and k.dtype == (np.bool_ if flags else dtype)
        assert set(np.unique(k).tolist()) <= {0, 1}
        _assert_rate(k.astype(np.float64).mean(), P_ZONEOUT, k.size,
                     f"{name} zoneout of {cell.state_names[i]}")
        assert not np.array_equal(k[0], k[1])   # drawn per step
    if len(zone) == 2:                          # an LSTM's h and c: drawn independently
        assert not np.array_equal(zone[0], zone[1])


@pytest.mark.parametrize("name", CELL_NAMES)
def test_training_both_options_at_once_keep_their_own_rates(name):
    cell = _recording(name)
    layer = Recurrent(cell, I, H, seed=1, dtype=np.float64, recurrent_dropout=P_RECURRENT,
                      zoneout=P_ZONEOUT)
    layer(_x(np.float64))
    (masks,) = cell.calls
    m, zone = masks["recurrent"], masks["zoneout"]
    _assert_rate((m == 0).mean(), P_RECURRENT, m.size, f"{name} recurrent dropout zeros")
    assert np.all(m[m != 0] == 1 / (1 - P_RECURRENT))
    for k in zone:
        _assert_rate(k.mean(), P_ZONEOUT, k.size, f"{name} zoneout")


# ---- evaluation, need_grad=False, steps: the expectation ---------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_evaluation_hands_zoneouts_expectation_and_no_recurrent_dropout(name, dtype):
    cell = _recording(name)
    layer = Recurrent(cell, I, H, seed=0, dtype=dtype, recurrent_dropout=P_RECURRENT,
                      zoneout=P_ZONEOUT)
    x = _x(dtype, T=5, B=6)
    expectation = np.full((1, 6, H), P_ZONEOUT, dtype)
    layer(x, need_grad=False)                   # training mode, nothing kept for backward
    layer.eval()
    layer(x)
    layer.step(x[0])
    assert len(cell.calls) == 3
    for masks in cell.calls:
        assert set(masks) == {"zoneout"}
        assert len(masks["zoneout"]) == len(cell.state_names)
        for k in masks["zoneout"]:
            assert k.dtype == dtype
            np.testing.assert_array_equal(k, expectation)
    # recurrent dropout alone: nothing at all in evaluation
    cell = _recording(name)
    layer = Recurrent(cell, I, H, seed=0, dtype=dtype, recurrent_dropout=P_RECURRENT)
    layer.eval()
    layer(x)
    assert cell.calls == [None]


def _layer(name, **kwargs):
    """The real layer class of a built-in cell (its compiled cell)."""
    if name.startswith("rnn_"):
        return RNN(I, H, nonlinearity=name[4:], **kwargs)
    if name == "ln_lstm":
        return Recurrent("ln_lstm", I, H, **kwargs)
    return {"lstm": LSTM, "gru": GRU}[name](I, H, **kwargs)


def _reference_stack(name, layer, x, states, lengths, masks_of):
    """The stack computed layer by layer with recurrent.reference's forward, from the
    layer's own parameters: (out, final states (L, B, H) each). masks_of(k): the masks
    argument of layer k."""
    ref = get_reference_cell(name)
    weights = layer.state_dict()
    finals = []
    for k in range(layer.num_layers):
        params = {kind: weights[param_name(kind, k)]
                  for kind in ref.param_shapes(1, 1)}
        x, f, _ = ref.forward(x, tuple(s[k] for s in states), params, lengths, 1,
                              masks=masks_of(k))
        finals.append(f)
    return x, tuple(np.stack(parts) for parts in zip(*finals))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_evaluation_output_is_the_reference_with_zoneouts_expectation(name):
    """eval and need_grad=False: each state s_t = p s_{t-1} + (1 - p) candidate_t, no
    recurrent dropout (README: evaluation uses the expectation)."""
    L, Tn, Bn = 2, 6, 5
    layer = _layer(name, num_layers=L, dtype=np.float64, seed=2,
                   recurrent_dropout=P_RECURRENT, zoneout=P_ZONEOUT)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((Tn, Bn, I))
    states = tuple(0.5 * rng.standard_normal((L, Bn, H)) for _ in layer.state_names)
    lengths = np.array([6, 2, 0, 5, 6])
    expectation = {"zoneout": tuple(np.full((1, Bn, H), P_ZONEOUT)
                                    for _ in layer.state_names)}
    want_out, want_finals = _reference_stack(name, layer, x, states, lengths,
                                             lambda k: expectation)
    packed = states[0] if len(states) == 1 else states
    no_grad = layer(x, state=packed, lengths=lengths, need_grad=False)
    layer.eval()
    evaluated = layer(x, state=packed, lengths=lengths)
    for out, finals in (no_grad, evaluated):
        finals = (finals,) if len(states) == 1 else finals
        np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
        for got, want in zip(finals, want_finals):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # and zoneout does change the result (the comparison can tell)
    plain, _ = _reference_stack(name, layer, x, states, lengths, lambda k: None)
    assert not np.allclose(plain, want_out, rtol=1e-3, atol=1e-3)


# ---- training: the seed -----------------------------------------------------------------

@pytest.mark.parametrize("option", ["recurrent_dropout", "zoneout"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_training_output_is_the_reference_with_the_seeds_masks(name, option):
    """A training forward of the real layer equals the reference cell given the masks
    drawn from the reseeded generator by masks.py's rule (variational_mask; zoneout_mask
    once per state, in state order)."""
    p = P_RECURRENT if option == "recurrent_dropout" else P_ZONEOUT
    layer = _layer(name, dtype=np.float64, seed=3, **{option: p})
    x = _x(np.float64, seed=5, T=6, B=24)
    lengths = np.arange(24) % 7
    layer.reseed_dropout(17)
    out, _ = layer(x, lengths=lengths)
    rng = np.random.default_rng(17)
    if option == "recurrent_dropout":
        masks = {"recurrent": variational_mask(rng, 24, H, p, np.float64)}
    else:
        masks = {"zoneout": tuple(zoneout_mask(rng, 6, 24, H, p, np.float64)
                                  for _ in layer.state_names)}
    zeros = tuple(np.zeros((1, 24, H)) for _ in layer.state_names)
    want, _ = _reference_stack(name, layer, x, zeros, lengths, lambda k: masks)
    np.testing.assert_allclose(out, want, rtol=1e-10, atol=1e-12)


def _draws(cell, layer, x, seed=None):
    """The masks of every cell call of one training forward (after reseeding, if given)."""
    if seed is not None:
        layer.reseed_dropout(seed)
    cell.calls.clear()
    layer(x)
    return list(cell.calls)


def _same(a, b, kind):
    """Whether two lists of recorded masks hold identical ``kind`` masks."""
    def flat(calls):
        return [arr for masks in calls
                for arr in (masks[kind] if kind == "zoneout" else (masks[kind],))]
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(flat(a), flat(b)))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_training_draws_follow_the_seed_and_differ_between_units(name):
    x = _x(np.float32, T=4, B=6)

    def build(seed):
        cell = _recording(name)
        return cell, Recurrent(cell, I, H, num_layers=2, bidirectional=True, seed=seed,
                               recurrent_dropout=P_RECURRENT, zoneout=P_ZONEOUT)

    cell, layer = build(0)
    a = _draws(cell, layer, x, seed=7)
    again, other, later = (_draws(cell, layer, x, seed=7), _draws(cell, layer, x, seed=8),
                           _draws(cell, layer, x))
    first = [_draws(*build(seed), x) for seed in (3, 3, 4)]  # the layer's seed argument
    assert len(a) == 4                          # one call per layer and direction
    for kind in ("recurrent", "zoneout"):
        assert _same(a, again, kind), kind
        assert not _same(a, other, kind), kind
        assert not _same(a, later, kind), kind  # the generator moves on between calls
        for i in range(4):                      # each unit draws its own masks
            for j in range(i):
                assert not _same([a[i]], [a[j]], kind), (kind, i, j)
        assert _same(first[0], first[1], kind) and not _same(first[0], first[2], kind), kind
