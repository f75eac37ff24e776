"""The layers (recurrent/layers.py) over the reference cells and the fast built-in cells:
finite-difference gradients in float64, fast vs reference, sequence vs steps, padding
invariance, threads, dropout, init, state_dict, bind, and every ValueError path."""
import numpy as np
import pytest

from conftest import CELL_NAMES, cell_for
from recurrent.layers import GRU, LSTM, RNN, Recurrent
from recurrent.reference import get_reference_cell

T, B, I, H = 4, 3, 3, 4


def as_list(state):
    return list(state) if isinstance(state, tuple) else [state]


def pack(layer, arrays):
    return arrays[0] if len(layer.state_names) == 1 else tuple(arrays)


def random_state(layer, rng, B=B):
    rows = layer.num_layers * layer.num_directions
    return pack(layer, [0.5 * rng.standard_normal((rows, B, H)) for _ in layer.state_names])


def weighted_loss(layer, x, state, lengths, d_out, d_finals):
    out, finals = layer(x, state=state, lengths=lengths)
    return np.sum(out * d_out) + sum(np.sum(f * d) for f, d in zip(as_list(finals), d_finals))


def check_directional_derivative(loss, array, analytic, rng, what):
    """Compare <analytic, v> with the central difference of ``loss`` along a random v."""
    v = rng.standard_normal(array.shape)
    saved = array.copy()
    eps = 1e-6
    array[...] = saved + eps * v
    plus = loss()
    array[...] = saved - eps * v
    minus = loss()
    array[...] = saved
    numeric = (plus - minus) / (2 * eps)
    expected = float(np.sum(analytic * v))
    assert abs(numeric - expected) <= 1e-6 * max(1.0, abs(expected)), \
        f"{what}: analytic {expected} vs numeric {numeric}"


@pytest.mark.parametrize("lengths", [None, [2, 4, 1], [2, 0, 4]],
                         ids=["full", "lengths", "zero-length"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradients_match_central_differences(name, L, bidirectional, lengths, backend, rng):
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=L,
                      bidirectional=bidirectional, dtype=np.float64, seed=1)
    D = layer.num_directions
    x = rng.standard_normal((T, B, I))
    state = random_state(layer, rng)
    lengths = None if lengths is None else np.array(lengths)
    d_out = rng.standard_normal((T, B, D * H))
    d_finals = [rng.standard_normal((L * D, B, H)) for _ in layer.state_names]

    layer(x, state=state, lengths=lengths)
    dx, dstate = layer.backward(d_out, pack(layer, d_finals))
    loss = lambda: weighted_loss(layer, x, state, lengths, d_out, d_finals)  # noqa: E731

    check_directional_derivative(loss, x, dx, rng, "x")
    for i, (s, ds) in enumerate(zip(as_list(state), as_list(dstate))):
        check_directional_derivative(loss, s, ds, rng, f"state {i}")
    grads = layer.grads()
    for pname, p in layer.params().items():
        check_directional_derivative(loss, p, grads[pname], rng, pname)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_gradients_through_dropout_match_central_differences(name, backend, rng):
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=3, dropout=0.4,
                      bidirectional=True, dtype=np.float64, seed=5)
    x = rng.standard_normal((T, B, I))
    d_out = rng.standard_normal((T, B, 2 * H))

    def run():
        # The same dropout masks on every call: re-seed the layer's dropout generator.
        layer.reseed_dropout(0)
        return layer(x)

    eval_out, _ = layer.eval()(x)
    layer.train()
    out, _ = run()
    assert np.any(out != eval_out)
    dx, _ = layer.backward(d_out)
    loss = lambda: float(np.sum(run()[0] * d_out))  # noqa: E731
    check_directional_derivative(loss, x, dx, rng, "x")
    grads = layer.grads()
    for pname in ("weight_ih_l1", "weight_hh_l2_reverse"):
        check_directional_derivative(loss, layer.params()[pname], grads[pname], rng, pname)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("config", ["L1-uni", "L2-bi-lengths", "L2-uni-lengths", "L2-bi-zero",
                                    "B1", "B1-zero", "T1"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_fast_cells_match_reference(name, config, dtype, rng):
    fast = cell_for(name, "fast")
    L = 1 if config in ("L1-uni", "B1", "B1-zero", "T1") else 2
    bidirectional = "bi" in config or config == "T1"
    T_, B_ = {"B1": (5, 1), "B1-zero": (5, 1), "T1": (1, 3)}.get(config, (5, 4))
    lengths = rng.integers(1, T_ + 1, size=B_) if "lengths" in config else None
    if "zero" in config:    # rows of length 0: row 0, and row 2 when there is one
        lengths = rng.integers(0, T_ + 1, size=B_)
        lengths[0::2] = 0
    layers = [Recurrent(cell, I, H, num_layers=L, bidirectional=bidirectional, dtype=dtype,
                        seed=2) for cell in (fast, get_reference_cell(name))]
    D = layers[0].num_directions
    x = rng.standard_normal((T_, B_, I)).astype(dtype)
    state = random_state(layers[0], rng, B_)
    d_out = rng.standard_normal((T_, B_, D * H)).astype(dtype)
    d_finals = pack(layers[0], [rng.standard_normal((L * D, B_, H)) for _ in
                                layers[0].state_names])
    results = []
    for layer in layers:
        out, finals = layer(x, state=state, lengths=lengths)
        dx, dstate = layer.backward(d_out, d_finals)
        results.append([out, *as_list(finals), dx, *as_list(dstate), *layer.grads().values()])
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    if name == "ln_lstm" and dtype == np.float32:
        # both sides round in float32, and layer normalisation over H = 4 units divides by
        # a row's standard deviation, which amplifies that rounding (float64 stays tight)
        tol = dict(rtol=1e-4, atol=1e-4)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, **tol)
        assert got.dtype == dtype


@pytest.mark.parametrize("name", CELL_NAMES)
def test_sequence_equals_loop_of_single_steps(name, backend, rng):
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=2, dropout=0.3, seed=3).eval()
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    state = pack(layer, [s.astype(np.float32) for s in as_list(random_state(layer, rng))])
    out, finals = layer(x, state=state)
    carried = state
    for t in range(T):
        out_t, carried = layer.step(x[t], carried)
        np.testing.assert_allclose(out_t, out[t], rtol=1e-6, atol=1e-6)
    for f, c in zip(as_list(finals), as_list(carried)):
        np.testing.assert_allclose(f, c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_rows_of_length_zero_output_zeros_and_keep_their_state(name, bidirectional, backend,
                                                               rng):
    # Through stacked layers and both directions, with inter-layer dropout in training:
    # zero outputs and dx, final states = initial states, d initial states = d final
    # states. In eval mode the other rows get what they get without the empty ones.
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=2, dropout=0.3,
                      bidirectional=bidirectional, dtype=np.float64, seed=4)
    D = layer.num_directions
    x = rng.standard_normal((5, 4, I))
    lengths = np.array([0, 5, 0, 2])
    state = random_state(layer, rng, B=4)
    d_out = rng.standard_normal((5, 4, D * H))
    d_finals = [rng.standard_normal((2 * D, 4, H)) for _ in layer.state_names]

    def run(rows, lengths):
        layer.zero_grad()
        out, finals = layer(x[:, rows], lengths=lengths[rows],
                            state=pack(layer, [s[:, rows] for s in as_list(state)]))
        dx, d_state = layer.backward(d_out[:, rows], pack(layer, [d[:, rows] for d in d_finals]))
        return out, as_list(finals), dx, as_list(d_state), layer.grads()

    for training in (True, False):
        layer.train(training)
        out, finals, dx, d_state, grads = run(slice(None), lengths)
        assert np.all(out[:, [0, 2]] == 0) and np.all(dx[:, [0, 2]] == 0)
        for f, s, ds, d in zip(finals, as_list(state), d_state, d_finals):
            np.testing.assert_array_equal(f[:, [0, 2]], s[:, [0, 2]])
            np.testing.assert_array_equal(ds[:, [0, 2]], d[:, [0, 2]])
    grads = {k: v.copy() for k, v in grads.items()}
    out2, finals2, dx2, d_state2, grads2 = run([1, 3], lengths)
    np.testing.assert_allclose(out[:, [1, 3]], out2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx[:, [1, 3]], dx2, rtol=1e-10, atol=1e-12)
    for a, b in zip(finals + d_state, finals2 + d_state2):
        np.testing.assert_allclose(a[:, [1, 3]], b, rtol=1e-10, atol=1e-12)
    for k, g in grads2.items():
        np.testing.assert_allclose(grads[k], g, rtol=1e-10, atol=1e-12, err_msg=k)
    # a batch whose every row is empty: no parameter gradient at all
    out, finals, dx, d_state, grads = run(slice(None), np.zeros(4, np.int64))
    assert np.all(out == 0) and np.all(dx == 0)
    assert all(np.all(g == 0) for g in grads.values())
    for f, s, ds, d in zip(finals, as_list(state), d_state, d_finals):
        np.testing.assert_array_equal(f, s)
        np.testing.assert_array_equal(ds, d)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_result_of_a_row_does_not_depend_on_longer_rows_in_its_batch(name, bidirectional,
                                                                     backend, rng):
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=2,
                      bidirectional=bidirectional, dtype=np.float64, seed=4)
    D = layer.num_directions
    n = 3                                               # the short row's length
    row = rng.standard_normal((n, 1, I))
    d_row = rng.standard_normal((n, 1, D * H))

    out_alone, fin_alone = layer(row)
    dx_alone, _ = layer.backward(d_row)
    grads_alone = {k: v.copy() for k, v in layer.grads().items()}
    layer.zero_grad()

    # The same row, zero-padded to 6 steps with garbage, in a batch with longer rows.
    x = rng.standard_normal((6, 3, I))
    x[:n, 1:2] = row
    x[n:, 1] = 1e3
    lengths = np.array([6, n, 5])
    out, fin = layer(x, lengths=lengths)
    d_out = np.zeros((6, 3, D * H))
    d_out[:n, 1:2] = d_row
    d_out[n:, 1] = 7.0                                  # ignored past the row's length
    dx, _ = layer.backward(d_out)

    np.testing.assert_allclose(out[:n, 1], out_alone[:, 0], rtol=1e-12, atol=1e-14)
    assert np.all(out[n:, 1] == 0)
    for f, a in zip(as_list(fin), as_list(fin_alone)):
        np.testing.assert_allclose(f[:, 1], a[:, 0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx[:n, 1], dx_alone[:, 0], rtol=1e-10, atol=1e-12)
    assert np.all(dx[n:, 1] == 0)
    # Only the short row carries gradient: zero out the other rows' d_out and compare grads.
    layer.zero_grad()
    layer(x, lengths=lengths)
    only_row = np.zeros_like(d_out)
    only_row[:, 1] = d_out[:, 1]
    layer.backward(only_row)
    for k, g in layer.grads().items():
        np.testing.assert_allclose(g, grads_alone[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_reverse_direction_starts_at_each_rows_last_valid_step(rng):
    layer = Recurrent(get_reference_cell("rnn_tanh"), I, H, bidirectional=True,
                      dtype=np.float64, seed=0)
    x = rng.standard_normal((5, 2, I))
    out, h_n = layer(x, lengths=[5, 3])
    # The reverse half of row 1 is the reverse cell run over x[2], x[1], x[0] alone.
    rev_params = {k[:-len("_l0_reverse")]: v for k, v in layer.params().items()
                  if k.endswith("_reverse")}
    cell = get_reference_cell("rnn_tanh")
    rev_out, (rev_h,), _ = cell.forward(x[2::-1, 1:2].copy(), (np.zeros((1, H)),),
                                        rev_params, np.array([3]), 1)
    np.testing.assert_allclose(out[:3, 1, H:], rev_out[::-1, 0], rtol=1e-12)
    np.testing.assert_allclose(h_n[1, 1], rev_h[0], rtol=1e-12)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_thread_counts_agree_and_each_is_deterministic(name, backend):
    def run(threads):
        layer = Recurrent(cell_for(name, backend), I, H, num_layers=2, bidirectional=True,
                          seed=6, num_threads=threads)
        assert layer.num_threads == threads
        x = np.random.default_rng(0).standard_normal((6, 5, I)).astype(np.float32)
        out, finals = layer(x, lengths=np.array([6, 2, 0, 1, 4]))
        dx, dstate = layer.backward(np.ones_like(out))
        return [out, *as_list(finals), dx, *as_list(dstate), *layer.grads().values()]

    one, two = run(1), run(2)
    for a, b in zip(one, run(1)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(two, run(2)):
        np.testing.assert_array_equal(a, b)
    # Across thread counts only BLAS rounding may differ: OpenBLAS picks its kernels by
    # block size, so a row can round by an ulp differently in a GEMM over fewer rows.
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-6)


def test_the_thread_count_is_resolved_once_per_public_call_with_blas_pinned(monkeypatch,
                                                                            rng):
    # The layer's public methods resolve the count (resolve_threads) and keep BLAS on one
    # thread; cells get it as an int and lengths as int64 (B,); backward reuses forward's.
    from threadpoolctl import threadpool_info, threadpool_limits

    import recurrent.layers as layers_module

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    seen, resolved = [], []

    class Spy(type(get_reference_cell("gru"))):
        def forward(self, x, states, params, lengths, num_threads):
            seen.append(("forward", num_threads, lengths.dtype, lengths.shape, blas_threads()))
            return super().forward(x, states, params, lengths, num_threads)

        def backward(self, d_out, d_finals, cache, grads, num_threads):
            seen.append(("backward", num_threads, None, None, blas_threads()))
            return super().backward(d_out, d_finals, cache, grads, num_threads)

    def resolve(num_threads, batch, hidden):
        resolved.append((num_threads, batch, hidden))
        return 3

    monkeypatch.setattr(layers_module, "resolve_threads", resolve)
    layer = Recurrent(Spy(), I, H, num_layers=2, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    with threadpool_limits(limits=2, user_api="blas"):
        out, _ = layer(x, lengths=[4, 0, 2])
        layer.backward(np.ones_like(out))
        layer.step(x[0])
        assert all(n == 2 for n in blas_threads())       # restored after each call
    assert resolved == [(None, B, H), (None, B, H)]      # forward and step, not backward
    assert [s[0] for s in seen] == ["forward"] * 2 + ["backward"] * 2 + ["forward"] * 2
    for _, num_threads, dtype, shape, blas in seen:
        assert num_threads == 3 and type(num_threads) is int
        assert all(n == 1 for n in blas)
        assert dtype in (None, np.int64) and shape in (None, (B,))


def test_dropout_only_in_training_mode_and_seeded(rng):
    cell = get_reference_cell("gru")
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    layer = Recurrent(cell, I, H, num_layers=2, dropout=0.5, seed=8)
    plain = Recurrent(cell, I, H, num_layers=2, dropout=0.0, seed=8)
    np.testing.assert_array_equal(layer.state_dict()["weight_hh_l1"],
                                  plain.state_dict()["weight_hh_l1"])
    train_a, _ = layer(x)
    train_b, _ = layer(x)
    assert np.any(train_a != train_b)                    # a fresh mask each call
    again, _ = Recurrent(cell, I, H, num_layers=2, dropout=0.5, seed=8)(x)
    np.testing.assert_array_equal(again, train_a)        # seeded
    assert layer.eval() is layer and not layer.training
    np.testing.assert_array_equal(layer(x)[0], plain(x)[0])
    np.testing.assert_array_equal(layer(x)[0], layer(x)[0])
    layer.train()
    assert layer.training
    # Dropout acts on the input of layer 2 only: layer 1's result is untouched.
    single = Recurrent(cell, I, H, num_layers=2, dropout=0.5, seed=8)
    _, h_n = single(x)
    np.testing.assert_array_equal(h_n[0], plain(x)[1][0])
    assert np.any(h_n[1] != plain(x)[1][1])


def test_reseed_dropout_repeats_the_masks(rng):
    layer = Recurrent(get_reference_cell("rnn_tanh"), I, H, num_layers=3, dropout=0.5, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    layer.reseed_dropout([7, 100])
    first, _ = layer(x)
    layer(x)
    layer.reseed_dropout([7, 100])
    np.testing.assert_array_equal(layer(x)[0], first)


def test_full_lengths_equal_no_lengths(rng):
    layer = Recurrent(get_reference_cell("gru"), I, H, bidirectional=True, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    np.testing.assert_array_equal(layer(x, lengths=np.full(B, T, np.int32))[0], layer(x)[0])


def test_dropout_keeps_the_expected_fraction():
    layer = Recurrent(get_reference_cell("rnn_relu"), 2, H, num_layers=2, dropout=0.25,
                      seed=0)
    mask = layer._dropout_mask((200, 50, H))
    assert abs(np.mean(mask == 0) - 0.25) < 0.01
    np.testing.assert_allclose(mask[mask != 0], 1 / 0.75, rtol=1e-6)


def test_grads_accumulate_and_zero_grad_resets(rng):
    layer = Recurrent(get_reference_cell("lstm"), I, H, dtype=np.float64, seed=0)
    x = rng.standard_normal((T, B, I))
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    once = {k: v.copy() for k, v in layer.grads().items()}
    with pytest.raises(ValueError, match="backward: no forward pass"):
        layer.backward(np.ones_like(out))          # one backward per forward
    layer(x)
    layer.backward(np.ones_like(out))
    for k, g in layer.grads().items():
        np.testing.assert_allclose(g, 2 * once[k])
    layer.zero_grad()
    assert all(np.all(g == 0) for g in layer.grads().values())


def test_parameter_names_shapes_and_order():
    layer = Recurrent(get_reference_cell("gru"), 3, 5, num_layers=2, bidirectional=True)
    shapes = layer.param_shapes()
    assert list(shapes)[:8] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
        "bias_hh_l0_reverse"]
    assert shapes["weight_ih_l0"] == (15, 3) and shapes["weight_ih_l1"] == (15, 10)
    assert shapes["bias_hh_l1_reverse"] == (15,) and len(shapes) == 16
    assert list(layer.state_dict()) == list(shapes) == list(layer.grads())
    no_bias = Recurrent(get_reference_cell("gru"), 3, 5, bias=False)
    assert list(no_bias.param_shapes()) == ["weight_ih_l0", "weight_hh_l0"]


def test_without_bias_the_biases_stay_zero_through_training_steps(rng):
    layer = Recurrent(get_reference_cell("lstm"), I, H, bias=False, dtype=np.float64, seed=0)
    with_zero_bias = Recurrent(get_reference_cell("lstm"), I, H, dtype=np.float64)
    sd = layer.state_dict()
    sd.update(bias_ih_l0=np.zeros(4 * H), bias_hh_l0=np.zeros(4 * H))
    with_zero_bias.load_state_dict(sd)
    x = rng.standard_normal((T, B, I))
    for _ in range(2):
        out, _ = layer(x)
        layer.backward(np.ones_like(out))
    np.testing.assert_allclose(out, with_zero_bias(x)[0], rtol=1e-12)


def test_init_schemes(rng):
    H_ = 8
    uniform = Recurrent(get_reference_cell("lstm"), 3, H_, num_layers=2, seed=0)
    for p in uniform.params().values():
        assert np.abs(p).max() <= 1 / np.sqrt(H_)
    assert np.abs(uniform.params()["weight_hh_l1"]).max() > 0.3
    same = Recurrent(get_reference_cell("lstm"), 3, H_, num_layers=2, seed=0)
    other = Recurrent(get_reference_cell("lstm"), 3, H_, num_layers=2, seed=1)
    for k, v in uniform.state_dict().items():
        np.testing.assert_array_equal(v, same.state_dict()[k])
        assert np.any(v != other.state_dict()[k])

    ortho = Recurrent(get_reference_cell("gru"), 3, H_, init="orthogonal", seed=0,
                      dtype=np.float64)
    w_hh = ortho.params()["weight_hh_l0"]
    for g in range(3):
        block = w_hh[g * H_:(g + 1) * H_]
        np.testing.assert_allclose(block @ block.T, np.eye(H_), atol=1e-12)
    assert np.all(ortho.params()["bias_ih_l0"] == 0)
    assert np.abs(ortho.params()["weight_ih_l0"]).max() <= np.sqrt(6 / (3 + H_))

    glorot = Recurrent(get_reference_cell("rnn_tanh"), 3, H_, init="glorot", seed=0)
    assert np.abs(glorot.params()["weight_hh_l0"]).max() <= np.sqrt(6 / (2 * H_))
    assert np.all(glorot.params()["bias_hh_l0"] == 0)

    fb = Recurrent(get_reference_cell("lstm"), 3, H_, forget_bias=1.0, seed=0)
    b_ih, b_hh = fb.params()["bias_ih_l0"], fb.params()["bias_hh_l0"]
    assert np.all(b_ih[H_:2 * H_] == 1) and np.all(b_hh[H_:2 * H_] == 0)
    assert np.any(b_ih[:H_] != 0)


def test_state_dict_round_trip_and_copies(rng):
    a = Recurrent(get_reference_cell("gru"), I, H, num_layers=2, seed=0)
    b = Recurrent(get_reference_cell("gru"), I, H, num_layers=2, seed=1)
    sd = a.state_dict()
    sd["weight_ih_l0"][:] = 0                      # a copy: the layer is not changed
    assert np.any(a.params()["weight_ih_l0"] != 0)
    b.load_state_dict(a.state_dict())
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    # float64 values load into a float32 layer.
    b.load_state_dict({k: v.astype(np.float64) for k, v in a.state_dict().items()})
    assert b.params()["weight_ih_l0"].dtype == np.float32


def test_bind_moves_storage_into_a_flat_buffer(rng):
    layer = Recurrent(get_reference_cell("lstm"), I, H, num_layers=2, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    before, _ = layer(x)
    shapes = layer.param_shapes()
    sizes = [int(np.prod(s)) for s in shapes.values()]
    flat, flat_grad = np.zeros(sum(sizes), np.float32), np.zeros(sum(sizes), np.float32)
    offsets = np.cumsum([0] + sizes)
    views = lambda buf: {n: buf[o:o + k].reshape(s) for (n, s), o, k in  # noqa: E731
                         zip(shapes.items(), offsets, sizes)}
    layer.bind(views(flat), views(flat_grad))
    np.testing.assert_array_equal(layer(x)[0], before)     # values copied over
    out, _ = layer(x)
    layer.backward(np.ones_like(out))
    assert np.any(flat_grad != 0)
    np.testing.assert_array_equal(flat_grad[:sizes[0]], layer.grads()["weight_ih_l0"].ravel())
    flat *= 0.5                                              # the layer reads the buffer
    assert np.any(layer(x)[0] != before)
    with pytest.raises(ValueError, match="float32"):
        layer.bind({n: np.zeros(s) for n, s in shapes.items()}, views(flat_grad))
    with pytest.raises(ValueError, match="missing weight_hh_l1"):
        layer.bind({n: v for n, v in views(flat).items() if n != "weight_hh_l1"},
                   views(flat_grad))


@pytest.mark.parametrize("cls,name,state_count", [(LSTM, "lstm", 2), (GRU, "gru", 1),
                                                  (RNN, "rnn_tanh", 1)])
def test_named_layers_resolve_registered_cells(cls, name, state_count, rng):
    pytest.importorskip("recurrent_plugins.cells",
                        reason="the fast built-in cells (recurrent_plugins.cells) are not built")
    layer = cls(I, H, num_layers=2, seed=0)
    assert layer.cell.name == name
    out, state = layer(rng.standard_normal((T, B, I)).astype(np.float32))
    assert out.shape == (T, B, H) and len(as_list(state)) == state_count
    assert RNN(I, H, nonlinearity="relu").cell.name == "rnn_relu"
    import recurrent
    assert (recurrent.Recurrent, recurrent.RNN, recurrent.LSTM, recurrent.GRU) == \
        (Recurrent, RNN, LSTM, GRU)
    assert Recurrent("gru", I, H).cell.name == "gru"


def test_output_and_state_shapes(rng):
    layer = Recurrent(get_reference_cell("lstm"), I, H, num_layers=3, bidirectional=True)
    out, (h_n, c_n) = layer(rng.standard_normal((5, 2, I)))
    assert out.shape == (5, 2, 2 * H) and out.dtype == np.float32
    assert h_n.shape == c_n.shape == (6, 2, H)
    # The top layer's forward half of out at the last step is h_n of its forward unit.
    np.testing.assert_array_equal(out[-1, :, :H], h_n[4])
    np.testing.assert_array_equal(out[0, :, H:], h_n[5])
    dx, (dh, dc) = layer.backward(np.ones_like(out))
    assert dx.shape == (5, 2, I) and dh.shape == dc.shape == (6, 2, H)


# -- every ValueError path -----------------------------------------------------------------

@pytest.fixture
def lstm():
    return Recurrent(get_reference_cell("lstm"), I, H, num_layers=2)


@pytest.mark.parametrize("x,message", [
    (np.zeros((T, I)), r"x: expected shape \(T, B, 3\).*got shape \(4, 3\)"),
    (np.zeros((T, B, 5)), r"x: expected shape \(T, B, 3\).*got shape \(4, 3, 5\)"),
    (np.zeros((0, B, I)), r"x: expected shape .*got shape \(0, 3, 3\)"),
    (np.zeros((T, B, I), np.int64), "x: expected a float array, got dtype int64"),
    (np.full((T, B, I), np.nan), "x: contains NaN or infinity"),
])
def test_bad_x(lstm, x, message):
    with pytest.raises(ValueError, match=message):
        lstm(x)


@pytest.mark.parametrize("lengths,message", [
    (np.array([1.0, 2.0, 3.0]), "lengths: expected an integer array, got dtype float64"),
    (np.array([1, 2]), r"lengths: expected shape \(3,\), got shape \(2,\)"),
    (np.array([[1, 2, 3]]), r"lengths: expected shape \(3,\), got shape \(1, 3\)"),
    (np.array([-1, 2, 3]), r"lengths: expected values in 0..4 \(T\), got values from -1 to 3"),
    (np.array([1, 5, 3]), r"lengths: expected values in 0..4 \(T\), got values from 1 to 5"),
])
def test_bad_lengths(lstm, lengths, message):
    with pytest.raises(ValueError, match=message):
        lstm(np.zeros((T, B, I)), lengths=lengths)


def test_bad_state_and_gradients(lstm):
    x = np.zeros((T, B, I), np.float32)
    h = np.zeros((2, B, H), np.float32)
    with pytest.raises(TypeError):  # state and lengths are keyword-only
        lstm(x, (h, h))
    with pytest.raises(ValueError, match="state: expected a tuple of 2 arrays"):
        lstm(x, state=h)
    with pytest.raises(ValueError, match=r"state\[1\]: expected shape \(2, 3, 4\).*"
                                         r"got shape \(1, 3, 4\)"):
        lstm(x, state=(h, h[:1]))
    with pytest.raises(ValueError, match=r"state\[0\]: contains NaN"):
        lstm(x, state=(h + np.inf, h))
    with pytest.raises(ValueError, match="backward: no forward pass"):
        lstm.backward(np.zeros((T, B, H)))
    lstm(x)
    with pytest.raises(ValueError, match=r"d_out: expected shape \(4, 3, 4\).*"
                                         r"got shape \(4, 3, 8\)"):
        lstm.backward(np.zeros((T, B, 2 * H)))
    with pytest.raises(ValueError, match="d_state: expected a tuple of 2 arrays"):
        lstm.backward(np.zeros((T, B, H)), h)
    with pytest.raises(ValueError, match=r"d_state\[0\]: expected shape \(2, 3, 4\)"):
        lstm.backward(np.zeros((T, B, H)), (h[0], None))
    gru = Recurrent(get_reference_cell("gru"), I, H)
    with pytest.raises(ValueError, match=r"state: expected shape \(1, 3, 4\)"):
        gru(x, state=np.zeros((B, H)))


def test_nested_sequences_of_different_lengths_name_the_argument(lstm):
    """Lists whose rows differ in length are not arrays; the error names the argument
    (numpy's own, raised by np.asarray, names none)."""
    ragged = [[[0.0] * I] * B, [[0.0] * I] * (B - 1)]
    h = np.zeros((2, B, H))
    for call, name in [
        (lambda: lstm(ragged), "x"),
        (lambda: lstm(np.zeros((T, B, I)), lengths=[[1, 2], [3]]), "lengths"),
        (lambda: lstm(np.zeros((T, B, I)), state=(h, ragged)), r"state\[1\]"),
        (lambda: lstm.step([[0.0] * I, [0.0] * (I - 1)]), "x_t"),
    ]:
        with pytest.raises(ValueError, match=f"^{name}: expected an array, got nested "
                                             f"sequences of different lengths$"):
            call()
    lstm(np.zeros((T, B, I)))
    with pytest.raises(ValueError, match="^d_out: expected an array, got nested"):
        lstm.backward([np.zeros((B, H))] * (T - 1) + [np.zeros((B - 1, H))])


@pytest.mark.parametrize("change", ["load_state_dict", "params_changed"])
def test_backward_after_the_parameters_changed_is_refused(change, rng):
    """Cells read the parameters again in backward: after a change between forward and
    backward (an optimizer step calls params_changed()) the gradients would mix the new
    weights with the old activations, so backward refuses, without touching the
    gradients, until forward runs again."""
    layer = LSTM(I, H, seed=0)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    out, _ = layer(x)
    if change == "load_state_dict":
        layer.load_state_dict(LSTM(I, H, seed=1).state_dict())
    else:
        layer.params()["weight_hh_l0"] *= 2
        layer.params_changed()
    with pytest.raises(ValueError, match="^backward: the parameters changed after the "
                                         "forward pass"):
        layer.backward(np.ones_like(out))
    assert not any(g.any() for g in layer.grads().values())
    out, _ = layer(x)
    dx, _ = layer.backward(np.ones_like(out))
    fresh = LSTM(I, H, seed=0)
    fresh.load_state_dict(layer.state_dict())
    fresh_out, _ = fresh(x)
    fresh_dx, _ = fresh.backward(np.ones_like(fresh_out))
    np.testing.assert_array_equal(dx, fresh_dx)


def test_bad_step_calls(lstm):
    with pytest.raises(ValueError, match=r"x_t: expected shape \(B, 3\).*got shape \(4, 3, 3\)"):
        lstm.step(np.zeros((T, B, I)))
    with pytest.raises(ValueError, match="x_t: expected a float array"):
        lstm.step(np.zeros((B, I), np.int32))
    bi = Recurrent(get_reference_cell("gru"), I, H, bidirectional=True)
    with pytest.raises(ValueError, match="step: a bidirectional layer"):
        bi.step(np.zeros((B, I)))


@pytest.mark.parametrize("kwargs,message", [
    (dict(input_size=0), "input_size: expected a positive integer, got 0"),
    (dict(hidden_size=2.5), "hidden_size: expected a positive integer, got 2.5"),
    (dict(num_layers=True), "num_layers: expected a positive integer"),
    (dict(dropout=1.0), r"dropout: expected a probability in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), "dropout: expected a probability"),
    (dict(dtype=np.int32), "dtype: expected float32 or float64, got int32"),
    (dict(dtype="nonsense"), "dtype: expected float32 or float64"),
    (dict(init="he"), "init: expected one of uniform, orthogonal, glorot, got 'he'"),
    (dict(num_threads=0), "num_threads: expected a positive integer, got 0"),
    (dict(cell=object()), "cell: expected a cell name or an object following"),
    (dict(cell=type(get_reference_cell("gru"))), "cell: .*got the class GRUCell"),
    (dict(cell="gru", forget_bias=1.0), "forget_bias: cell 'gru' has no forget gate"),
    (dict(bias=False, forget_bias=1.0), "forget_bias: the layer was built with bias=False"),
])
def test_bad_constructor_arguments(kwargs, message):
    args = dict(cell="lstm", input_size=I, hidden_size=H)
    args.update(kwargs)
    if isinstance(args["cell"], str):
        args["cell"] = get_reference_cell(args["cell"])
    with pytest.raises(ValueError, match=message):
        Recurrent(**args)


def test_bad_names():
    with pytest.raises(ValueError, match="nonlinearity: expected 'tanh' or 'relu', got 'gelu'"):
        RNN(I, H, nonlinearity="gelu")
    pytest.importorskip("recurrent_plugins.cells",
                        reason="the fast built-in cells (recurrent_plugins.cells) are not built")
    with pytest.raises(ValueError, match="cell: unknown cell 'nope'; known cells: .*lstm"):
        Recurrent("nope", I, H)


def test_load_state_dict_lists_every_problem(lstm):
    sd = lstm.state_dict()
    del sd["bias_hh_l1"]
    sd["weight_ih_l0"] = np.zeros((16, 5), np.float32)
    sd["weight_ih_l9"] = np.zeros((16, 4), np.float32)
    with pytest.raises(ValueError) as err:
        lstm.load_state_dict(sd)
    text = str(err.value)
    assert "missing bias_hh_l1" in text and "unexpected weight_ih_l9" in text
    assert "weight_ih_l0 has shape (16, 5), expected (16, 3)" in text
    sd = lstm.state_dict()
    sd["weight_hh_l0"] = sd["weight_hh_l0"].astype(np.int64)
    with pytest.raises(ValueError, match="weight_hh_l0 has dtype int64"):
        lstm.load_state_dict(sd)
    sd = lstm.state_dict()
    sd["bias_ih_l0"][0] = np.nan
    before = lstm.state_dict()
    with pytest.raises(ValueError, match="bias_ih_l0 contains NaN"):
        lstm.load_state_dict(sd)
    for k, v in lstm.state_dict().items():           # nothing half-loaded
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="state_dict: expected a dict"):
        lstm.load_state_dict([1, 2])


def test_a_third_party_cell_with_extra_parameter_kinds_works_in_a_layer(rng):
    peephole = pytest.importorskip("recurrent_peephole",
                                   reason="the example plugin recurrent-peephole is not installed")
    cell = peephole.PeepholeLSTMCell()
    layer = Recurrent(cell, I, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=0)
    shapes = layer.param_shapes()
    assert shapes["peephole_f_l1_reverse"] == (H,) and len(shapes) == 4 * 7
    x = rng.standard_normal((T, B, I))
    lengths = np.array([4, 1, 3])
    d_out = rng.standard_normal((T, B, 2 * H))
    layer(x, lengths=lengths)
    dx, _ = layer.backward(d_out)
    loss = lambda: float(np.sum(layer(x, lengths=lengths)[0] * d_out))  # noqa: E731
    check_directional_derivative(loss, x, dx, rng, "x")
    grads = layer.grads()
    for pname in ("peephole_o_l0", "peephole_i_l1_reverse", "weight_hh_l1"):
        check_directional_derivative(loss, layer.params()[pname], grads[pname], rng, pname)
