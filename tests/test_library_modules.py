"""recurrent used as a Python library: the argument checks of the layers' thread count and
of the parameter modules (Embedding, Dense), each misuse a one-line ValueError naming it."""
import numpy as np
import pytest

from recurrent.layers import GRU, LSTM
from recurrent.modules import Dense, Embedding
from recurrent.streams import StreamPool
from recurrent.threads import MAX_THREADS


@pytest.mark.parametrize("count", [MAX_THREADS + 1, 10**12])
def test_a_thread_count_beyond_a_c_int_is_refused_when_set(count):
    # The kernels take the count as a C int: a larger one must be refused where it is
    # set, not fail inside the first call as an OverflowError naming nothing.
    with pytest.raises(ValueError, match="num_threads: expected at most"):
        LSTM(3, 4, num_threads=count)
    layer = GRU(3, 4, seed=0)
    with pytest.raises(ValueError, match="num_threads: expected at most"):
        layer.num_threads = count
    with pytest.raises(ValueError, match="num_threads: expected at most"):
        StreamPool(layer, capacity=2, num_threads=count)


def test_the_largest_thread_count_runs():
    layer = GRU(3, 4, seed=0, num_threads=MAX_THREADS)
    out, _ = layer(np.ones((2, 5, 3), np.float32))
    layer.backward(np.ones_like(out))
    assert out.shape == (2, 5, 4)


@pytest.mark.parametrize("make", [lambda d: Embedding(5, 3, dtype=d),
                                  lambda d: Dense(3, 2, dtype=d)], ids=["embedding", "dense"])
@pytest.mark.parametrize("dtype", [np.int32, np.float16, "nonsense"])
def test_parameter_modules_refuse_a_dtype_other_than_float32_or_float64(make, dtype):
    # An integer dtype would truncate the N(0, 1) / uniform initial values to mostly
    # zeros; float16 has no kernels.
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        make(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_and_embedding_match_torch(dtype):
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    rng = np.random.default_rng(0)
    dense, linear = Dense(3, 2, dtype=dtype), torch.nn.Linear(3, 2, dtype=tdtype)
    dense.load_state_dict({k: v.detach().numpy() for k, v in linear.state_dict().items()})
    x = rng.standard_normal((4, 3)).astype(dtype)
    probe = rng.standard_normal((4, 2)).astype(dtype)
    x_t = torch.tensor(x, requires_grad=True)
    (linear(x_t) * torch.tensor(probe)).sum().backward()
    y = dense.forward(x)
    dx = dense.backward(probe)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, linear(x_t).detach().numpy(), atol=tol)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), atol=tol)
    for name, p in linear.named_parameters():
        np.testing.assert_allclose(dense.grads()[name], p.grad.numpy(), atol=tol)
    emb, torch_emb = Embedding(6, 2, dtype=dtype), torch.nn.Embedding(6, 2, dtype=tdtype)
    emb.load_state_dict({k: v.detach().numpy() for k, v in torch_emb.state_dict().items()})
    ids = np.array([[1, 3, 1], [5, 1, 0]])
    probe = rng.standard_normal((2, 3, 2)).astype(dtype)
    (torch_emb(torch.tensor(ids)) * torch.tensor(probe)).sum().backward()
    np.testing.assert_allclose(emb.forward(ids), torch_emb(torch.tensor(ids)).detach().numpy())
    emb.backward(probe)
    np.testing.assert_allclose(emb.grads()["weight"], torch_emb.weight.grad.numpy(), atol=tol)


def test_backward_before_forward_is_named():
    # Not an AttributeError on None (Embedding) or a numpy matmul error (Dense).
    with pytest.raises(ValueError, match="Embedding.backward: no forward pass"):
        Embedding(5, 3).backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="Dense.backward: no forward pass"):
        Dense(3, 2).backward(np.zeros((4, 2), np.float32))


def test_wrong_shapes_are_named():
    dense = Dense(3, 2)
    with pytest.raises(ValueError, match=r"Dense: x: expected shape \(N, 3\), got shape \(4, 5\)"):
        dense.forward(np.zeros((4, 5), np.float32))
    dense.forward(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"d_y: expected shape \(4, 2\)"):
        dense.backward(np.zeros((4, 3), np.float32))
    emb = Embedding(5, 3)
    emb.forward(np.array([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match=r"d_out: expected shape \(2, 2, 3\)"):
        emb.backward(np.zeros((4, 3), np.float32))
