"""Review of the built-in losses and their numpy references: masks and precision."""
import numpy as np
import pytest

from recurrent import reference
from recurrent.plugins import get_loss

LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae")


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_cross_entropy_mask_of_ones_equals_no_mask(dtype, rng):
    """The row scale 1/n_valid stays float64 with a mask too (not rounded to the outputs'
    dtype), so a mask of ones changes nothing."""
    outputs = rng.normal(size=(7, 5)).astype(dtype)
    targets = rng.integers(0, 5, size=7)
    loss = get_loss("cross_entropy")
    plain, plain_grad = loss.value_and_grad(outputs, targets)
    for mask in (np.ones(7, bool), np.ones(7, int), np.ones(7)):
        value, grad = loss.value_and_grad(outputs, targets, mask)
        assert value == plain
        np.testing.assert_array_equal(grad, plain_grad)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_reference_losses_ignore_nan_in_masked_rows(name, rng):
    """Masked rows may hold any output and target (recurrent.protocols.Loss): the numpy
    references must not let NaN there through the mask weights."""
    N, K = 6, 4
    mask = np.array([1, 0, 1, 1, 0, 1], bool)
    outputs = rng.normal(size=(N, K))
    if name == "cross_entropy":
        targets = rng.integers(0, K, size=N)
    else:
        targets = rng.random((N, K))
    clean_value, clean_grad = reference.LOSSES[name](outputs, targets, mask)
    outputs[~mask] = np.nan
    if name != "cross_entropy":
        targets[~mask] = np.inf
    value, grad = reference.LOSSES[name](outputs, targets, mask)
    assert value == clean_value
    np.testing.assert_array_equal(grad, clean_grad)
    # and the built-in loss agrees with it
    got_value, got_grad = get_loss(name).value_and_grad(outputs, targets, mask)
    assert got_value == pytest.approx(value, rel=1e-12)
    np.testing.assert_allclose(got_grad, grad, rtol=1e-10, atol=1e-15)
