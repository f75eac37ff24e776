"""clip_grad_norm / clip_grad_value: PyTorch's semantics over dicts, lists and flat buffers."""
import math

import numpy as np
import pytest

from recurrent.clip import clip_grad_norm, clip_grad_value


def _grads(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return {"weight_ih": rng.normal(size=(8, 3)).astype(dtype),
            "weight_hh": rng.normal(size=(8, 2)).astype(dtype),
            "bias": rng.normal(size=8).astype(dtype)}


def _concat(arrays):
    return np.concatenate([a.astype(np.float64).ravel() for a in arrays])


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_norm_clip_against_numpy(norm_type, max_norm):
    grads = _grads(np.float64)
    flat = _concat(grads.values())
    want_norm = np.linalg.norm(flat, ord=norm_type)
    total = clip_grad_norm(grads, max_norm, norm_type)
    assert total == pytest.approx(want_norm, rel=1e-12)
    scale = min(1.0, max_norm / (want_norm + 1e-6))
    np.testing.assert_allclose(_concat(grads.values()), flat * scale, rtol=1e-12)
    if max_norm < want_norm:
        assert np.linalg.norm(_concat(grads.values()), ord=norm_type) == pytest.approx(
            max_norm, rel=1e-5)


def test_containers_and_flat_buffer_agree():
    as_dict = _grads()
    as_list = [a.copy() for a in as_dict.values()]
    flat = _concat(as_dict.values()).astype(np.float32)
    # the numpy path: Fortran-ordered matrices and a strided vector (copies, not views)
    noncontiguous = [np.asfortranarray(a.copy()) if a.ndim > 1 else np.repeat(a, 2)[::2]
                     for a in as_dict.values()]
    assert not any(a.flags.c_contiguous for a in noncontiguous)
    norms = [clip_grad_norm(g, 1.0) for g in (as_dict, as_list, flat, noncontiguous)]
    assert norms == pytest.approx([norms[0]] * 4, rel=1e-6)
    np.testing.assert_allclose(_concat(as_dict.values()), flat, rtol=1e-6)
    np.testing.assert_allclose(_concat(as_list), flat, rtol=1e-6)
    np.testing.assert_allclose(_concat(noncontiguous), flat, rtol=1e-6)


def test_none_entries_are_skipped_and_empty_input_has_norm_zero():
    grads = {"a": np.array([3.0, 4.0]), "b": None}
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(grads["a"], [3 / (5 + 1e-6), 4 / (5 + 1e-6)])
    assert clip_grad_norm([], 1.0) == 0.0


def test_nonfinite_norm_raises_when_asked_else_propagates():
    grads = [np.array([1.0, np.nan], np.float32), np.array([2.0], np.float32)]
    with pytest.raises(FloatingPointError, match="nan"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    assert grads[1][0] == 2.0  # nothing was scaled
    assert math.isnan(clip_grad_norm(grads, 1.0))
    assert np.isnan(grads[1][0])
    inf = [np.array([np.inf, 1.0])]
    assert clip_grad_norm(inf, 1.0, norm_type="inf") == math.inf
    assert np.isnan(inf[0][0]) and inf[0][1] == 0.0  # as torch: scaled by 0


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm(_grads(), 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(_grads(), -1.0)
    with pytest.raises(ValueError, match="float numpy array"):
        clip_grad_norm([np.arange(3)], 1.0)
    with pytest.raises(ValueError, match="grads must be"):
        clip_grad_norm("weights", 1.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip_grad_value(_grads(), -0.1)
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        clip_grad_value(frozen, 0.5)


def test_value_clip_clamps_in_place_and_keeps_nan():
    g = np.array([[-3.0, -0.2, 0.0], [0.4, 7.0, np.nan]], np.float32)
    clip_grad_value({"g": g}, 0.5)
    np.testing.assert_array_equal(g, np.array([[-0.5, -0.2, 0.0], [0.4, 0.5, np.nan]],
                                              np.float32))


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.3, 100.0])
def test_norm_clip_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch", reason="torch not installed")
    grads = _grads()
    params = [torch.nn.Parameter(torch.zeros(a.shape)) for a in grads.values()]
    for p, a in zip(params, grads.values()):
        p.grad = torch.from_numpy(a.copy())
    want = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type).item()
    got = clip_grad_norm(grads, max_norm, norm_type)
    assert got == pytest.approx(want, rel=1e-6)
    for p, a in zip(params, grads.values()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_value_clip_matches_torch():
    torch = pytest.importorskip("torch", reason="torch not installed")
    grads = [a * 3 for a in _grads().values()]
    params = [torch.nn.Parameter(torch.zeros(a.shape)) for a in grads]
    for p, a in zip(params, grads):
        p.grad = torch.from_numpy(a.copy())
    torch.nn.utils.clip_grad_value_(params, 1.25)
    clip_grad_value(grads, 1.25)
    for p, a in zip(params, grads):
        np.testing.assert_array_equal(a, p.grad.numpy())
