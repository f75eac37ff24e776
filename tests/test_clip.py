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


# --- value clipping off the kernels' path, and the inf-norm's NaN -----------------------
# The kernels take C-contiguous float32/float64 arrays only; clip.py sends every other
# float array (Fortran order, strided or reversed views, float16) through numpy, in place.

_LAYOUTS = {  # name: (dtype, base shape, base order, the view of the base that is clipped)
    "fortran-f32": (np.float32, (7, 5), "F", lambda b: b),
    "columns-f32": (np.float32, (7, 10), "C", lambda b: b[:, ::2]),
    "fortran-f64": (np.float64, (7, 5), "F", lambda b: b),
    "reversed-f64": (np.float64, (35,), "C", lambda b: b[::-1]),
    "transposed-f64": (np.float64, (5, 7, 3), "C", lambda b: b.transpose(2, 0, 1)),
    "contiguous-f16": (np.float16, (7, 5), "C", lambda b: b),
    "rows-f16": (np.float16, (14, 5), "C", lambda b: b[::2]),
    "contiguous-f64": (np.float64, (7, 5), "C", lambda b: b),   # the kernel, in double
}


def _layout(name, clip_value, seed=3):
    """(base, view): the view holds values beyond +-clip_value, exactly +-clip_value, -0.0,
    NaN and +-inf; the rest of the base holds large values that must stay as they are."""
    dtype, shape, order, view_of = _LAYOUTS[name]
    rng = np.random.default_rng(seed)
    base = np.asarray(rng.normal(scale=3.0, size=shape), dtype=dtype, order=order)
    view = view_of(base)
    assert np.shares_memory(view, base)
    specials = [np.nan, np.inf, -np.inf, clip_value, -clip_value, -0.0, 40.0, -40.0]
    for i, v in enumerate(specials):
        view[np.unravel_index(3 * i + 1, view.shape)] = v
    return base, view


@pytest.mark.parametrize("clip_value", [1.25, 0.3])   # 0.3: not a float16 (or binary) value
@pytest.mark.parametrize("name", list(_LAYOUTS))
def test_value_clip_of_any_layout_and_dtype_is_in_place_and_matches_numpy(name, clip_value):
    dtype, _, _, view_of = _LAYOUTS[name]
    base, view = _layout(name, clip_value)
    if name != "contiguous-f64":
        assert view.dtype == np.float16 or not view.flags.c_contiguous  # the numpy path
    want_base = base.copy(order="K")
    want = view_of(want_base)
    np.clip(want, -clip_value, clip_value, out=want)
    assert not np.array_equal(base, want_base, equal_nan=True)  # there is something to clip
    clip_grad_value({"g": view}, clip_value)
    assert view.dtype == dtype and np.shares_memory(view, base)
    # bit for bit: the clipped view, and the rest of the base untouched
    np.testing.assert_array_equal(base.view(f"u{base.itemsize}"),
                                  want_base.view(f"u{base.itemsize}"))
    limit = dtype(clip_value)
    finite = view[~np.isnan(view)]
    assert np.abs(finite).max() == limit and np.isnan(view).sum() == 1


@pytest.mark.parametrize("clip_value", [1.25, 0.3])
@pytest.mark.parametrize("name", list(_LAYOUTS))
def test_value_clip_of_any_layout_and_dtype_matches_torch(name, clip_value):
    torch = pytest.importorskip("torch", reason="torch not installed")
    _, view = _layout(name, clip_value)
    # with a C-contiguous float32 array in the same call: each array is clipped on its path
    other = _grads()["weight_ih"] * 3
    grad = torch.from_numpy(np.ascontiguousarray(view).copy())  # no negative strides in torch
    param = torch.nn.Parameter(torch.zeros(view.shape, dtype=grad.dtype))
    param.grad = grad
    other_param = torch.nn.Parameter(torch.zeros(other.shape))
    other_param.grad = torch.from_numpy(other.copy())
    torch.nn.utils.clip_grad_value_([param, other_param], clip_value)
    clip_grad_value([view, other], clip_value)
    np.testing.assert_array_equal(view, param.grad.numpy())
    np.testing.assert_array_equal(other, other_param.grad.numpy())


# The inf-norm of all gradients is the largest of the arrays' max-abs, and a NaN anywhere
# makes it NaN (as torch: its max propagates NaN), whichever array holds it. A plain max()
# over the arrays' parts would drop a NaN that comes after a larger finite part.
_NAN_LATER = {  # name: the arrays (lists of values), and the dtype / order they are made in
    "nan-after-3": ([[3.0], [np.nan]], np.float32, "C"),
    "nan-between": ([[3.0], [np.nan], [1.0]], np.float32, "C"),
    "nan-after-inf": ([[np.inf, 1.0], [np.nan], [1.0]], np.float64, "C"),
    "nan-inside-later": ([[0.5, -3.0, 2.0], [1.0, np.nan, 2.0]], np.float64, "C"),
    "nan-first": ([[np.nan], [5.0]], np.float32, "C"),
    "nan-after-3-f16": ([[3.0, -1.0], [0.25, np.nan]], np.float16, "C"),     # numpy path
    "nan-after-3-fortran": ([[[3.0, 1.0], [2.0, 0.0]], [[0.0, 1.0], [np.nan, 2.0]]],
                            np.float64, "F"),                                 # numpy path
}


def _nan_later(name):
    values, dtype, order = _NAN_LATER[name]
    return [np.array(v, dtype=dtype, order=order) for v in values]


@pytest.mark.parametrize("name", list(_NAN_LATER))
def test_inf_norm_with_nan_in_any_array_is_nan(name):
    from recurrent.clip import total_norm
    grads = _nan_later(name)
    before = [g.copy() for g in grads]
    assert math.isnan(total_norm(grads, math.inf))
    assert math.isnan(total_norm(grads, "inf"))
    with pytest.raises(FloatingPointError, match="nan"):
        clip_grad_norm(grads, 1.0, norm_type=math.inf, error_if_nonfinite=True)
    for g, b in zip(grads, before):   # nothing was scaled
        np.testing.assert_array_equal(g, b)
    # without error_if_nonfinite the NaN factor propagates into every gradient (as torch)
    assert math.isnan(clip_grad_norm(grads, 1.0, norm_type=math.inf))
    assert all(np.isnan(g).all() and g.dtype == b.dtype for g, b in zip(grads, before))


@pytest.mark.parametrize("name", list(_NAN_LATER))
def test_inf_norm_with_nan_in_any_array_matches_torch(name):
    torch = pytest.importorskip("torch", reason="torch not installed")
    for error_if_nonfinite in (True, False):
        grads = _nan_later(name)
        params = []
        for g in grads:
            p = torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
            p.grad = torch.from_numpy(g.copy())
            params.append(p)
        try:
            want = torch.nn.utils.clip_grad_norm_(params, 1.0, math.inf,
                                                  error_if_nonfinite=error_if_nonfinite)
        except RuntimeError:
            assert error_if_nonfinite
            with pytest.raises(FloatingPointError):
                clip_grad_norm(grads, 1.0, math.inf, error_if_nonfinite=error_if_nonfinite)
        else:
            assert not error_if_nonfinite
            got = clip_grad_norm(grads, 1.0, math.inf, error_if_nonfinite=error_if_nonfinite)
            assert math.isnan(got) and math.isnan(want.item())
        for p, g in zip(params, grads):
            np.testing.assert_array_equal(g, p.grad.numpy())
