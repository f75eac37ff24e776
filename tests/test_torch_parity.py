"""Layers against torch.nn.RNN / LSTM / GRU with the same weights (float32, within 1e-5):
outputs, h_n, c_n, dx, d(h0, c0) and every weight gradient, with and without lengths
(torch: pack_padded_sequence(enforce_sorted=False)), 1 to 3 layers, uni/bidirectional.

torch packs only positive lengths: with rows of length 0, torch runs the other rows, which
must match, and the empty rows are checked by definition (zero outputs and dx, final states
= initial states, d initial states = d final states, no parameter gradient)."""
import numpy as np
import pytest

from conftest import TORCH_CELL_NAMES, cell_for
from recurrent.layers import Recurrent

torch = pytest.importorskip("torch", reason="torch is not installed")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

TOL = dict(rtol=1e-5, atol=1e-5)
SIZES = {"T5-B3": (5, 3, 4, 6), "B1": (4, 1, 3, 5), "T1": (1, 3, 3, 4)}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def torch_module(name, I, H, L, bidirectional, bias):
    kwargs = dict(num_layers=L, bidirectional=bidirectional, bias=bias)
    if name.startswith("rnn_"):
        return torch.nn.RNN(I, H, nonlinearity=name[4:], **kwargs)
    return {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[name](I, H, **kwargs)


def torch_run(module, x, states, lengths, d_out, d_states):
    """Forward + backward in torch; returns numpy out, final states, dx, d_states, grads."""
    T = x.shape[0]
    x = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s, requires_grad=True) for s in states]
    hx = states[0] if len(states) == 1 else tuple(states)
    if lengths is None:
        out, finals = module(x, hx)
    else:
        packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
        packed_out, finals = module(packed, hx)
        out, _ = pad_packed_sequence(packed_out, total_length=T)
    finals = [finals] if len(states) == 1 else list(finals)
    loss = (out * torch.tensor(d_out)).sum()
    loss = loss + sum((f * torch.tensor(d)).sum() for f, d in zip(finals, d_states))
    loss.backward()
    numpy = lambda t: t.detach().numpy()  # noqa: E731
    return (numpy(out), [numpy(f) for f in finals], numpy(x.grad),
            [numpy(s.grad) for s in states],
            {n: numpy(p.grad) for n, p in module.named_parameters()})


def compare(name, backend, L, bidirectional, with_lengths, size, bias=True, seed=0):
    """with_lengths: False (every row full), True (1..T) or "empty" (0..T, row 0 empty)."""
    T, B, I, H = SIZES[size]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    module = torch_module(name, I, H, L, bidirectional, bias)
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=L, bias=bias,
                      bidirectional=bidirectional, seed=seed)
    # A torch state_dict converted with .numpy() loads as-is.
    layer.load_state_dict({k: v.numpy() for k, v in module.state_dict().items()})

    D = 2 if bidirectional else 1
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    states = [rng.standard_normal((L * D, B, H)).astype(np.float32) for _ in layer.state_names]
    lengths = None
    if with_lengths == "empty":
        lengths = rng.integers(0, T + 1, size=B)
        lengths[0] = 0
    elif with_lengths:
        lengths = rng.integers(1, T + 1, size=B)
    if with_lengths and B > 1:
        lengths[-1] = T         # torch's padded output is as long as the longest row
    d_out = rng.standard_normal((T, B, D * H)).astype(np.float32)
    d_states = [rng.standard_normal((L * D, B, H)).astype(np.float32) for _ in states]

    state_arg = states[0] if len(states) == 1 else tuple(states)
    out, finals = layer(x, state=state_arg, lengths=lengths)
    finals = [finals] if len(states) == 1 else list(finals)
    dx, dstates = layer.backward(d_out, d_states[0] if len(states) == 1 else tuple(d_states))
    dstates = [dstates] if len(states) == 1 else list(dstates)
    grads = layer.grads()

    # torch runs the rows of positive length
    run = np.ones(B, bool) if lengths is None else lengths > 0
    if run.any():
        want_out, want_finals, want_dx, want_dstates, want_grads = torch_run(
            module, x[:, run], [s[:, run] for s in states],
            None if lengths is None else lengths[run].tolist(), d_out[:, run],
            [d[:, run] for d in d_states])
    else:
        want_grads = {n: np.zeros(p.shape, np.float32) for n, p in module.named_parameters()}
    if run.any():
        # torch pads to the longest row; rows are zero past their length either way.
        want_out = np.concatenate(
            [want_out, np.zeros((T - want_out.shape[0],) + want_out.shape[1:], np.float32)])
        np.testing.assert_allclose(out[:, run], want_out, **TOL, err_msg="out")
        for i, (got, want) in enumerate(zip(finals, want_finals)):
            np.testing.assert_allclose(got[:, run], want, **TOL, err_msg=f"final state {i}")
        np.testing.assert_allclose(dx[:, run], want_dx, **TOL, err_msg="dx")
        for i, (got, want) in enumerate(zip(dstates, want_dstates)):
            np.testing.assert_allclose(got[:, run], want, **TOL,
                                       err_msg=f"d initial state {i}")
    assert set(grads) == set(want_grads)
    for pname, want in want_grads.items():
        np.testing.assert_allclose(grads[pname], want, **TOL, err_msg=pname)
    # rows of length 0, by definition
    empty = ~run
    assert np.all(out[:, empty] == 0) and np.all(dx[:, empty] == 0)
    for i, (got, initial) in enumerate(zip(finals, states)):
        np.testing.assert_array_equal(got[:, empty], initial[:, empty], err_msg=f"state {i}")
    for i, (got, d_final) in enumerate(zip(dstates, d_states)):
        np.testing.assert_array_equal(got[:, empty], d_final[:, empty], err_msg=f"d state {i}")


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("with_lengths", [False, True, "empty"],
                         ids=["full", "lengths", "zero-length"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("L", [1, 2, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("name", TORCH_CELL_NAMES)
def test_matches_torch(name, L, bidirectional, with_lengths, size, backend):
    compare(name, backend, L, bidirectional, with_lengths, size)


@pytest.mark.parametrize("name", TORCH_CELL_NAMES)
def test_matches_torch_without_bias(name, backend):
    compare(name, backend, 2, True, "empty", "T5-B3", bias=False, seed=3)


@pytest.mark.parametrize("name", TORCH_CELL_NAMES)
def test_outputs_match_torch_in_float64(name, backend):
    T, B, I, H = 6, 4, 3, 5
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    module = torch_module(name, I, H, 2, True, True).double()
    layer = Recurrent(cell_for(name, backend), I, H, num_layers=2, bidirectional=True,
                      dtype=np.float64)
    layer.load_state_dict({k: v.numpy() for k, v in module.state_dict().items()})
    x = rng.standard_normal((T, B, I))
    lengths = np.array([6, 2, 5, 1])
    packed = pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), enforce_sorted=False)
    want, _ = pad_packed_sequence(module(packed)[0], total_length=T)
    out, _ = layer(x, lengths=lengths)
    np.testing.assert_allclose(out, want.detach().numpy(), rtol=1e-12, atol=1e-12)
