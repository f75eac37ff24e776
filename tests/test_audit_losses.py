"""Audit (mutation round 3) of plugins/losses.py: the mean absolute error's subgradient
where an output equals its target, by hand and against torch.nn.L1Loss."""
import numpy as np
import pytest

from recurrent.plugins import get_loss


def test_mae_subgradient_is_zero_where_output_equals_target():
    """diffs [[0, 2], [-1, 0]]: loss (0 + 2 + 1 + 0) / 4 = 0.75, gradient sign(diff) / 4,
    which is 0 at the two ties (torch's convention, as the module docstring promises)."""
    outputs = np.array([[1.0, 2.0], [3.0, 3.0]])
    targets = np.array([[1.0, 0.0], [4.0, 3.0]])
    loss, grad = get_loss("mae").value_and_grad(outputs, targets)
    assert loss == pytest.approx(0.75)
    np.testing.assert_array_equal(grad, [[0.0, 0.25], [-0.25, 0.0]])


def test_mae_matches_torch_l1_with_ties_and_a_mask():
    """Rows 0 and 2 valid (row 1 padded): the mean over 2 rows x 3 elements, and a gradient
    equal to torch's L1Loss on the valid rows, ties included (0 there)."""
    torch = pytest.importorskip("torch",
                                reason="the test extra's torch==2.13.0 is not installed")
    outputs = np.array([[0.5, -1.0, 2.0], [9.0, 9.0, 9.0], [1.5, 1.5, -3.0]])
    targets = np.array([[0.5, 0.0, 1.0], [0.0, 0.0, 0.0], [1.5, 2.5, -3.0]])
    mask = np.array([1, 0, 1])
    loss, grad = get_loss("mae").value_and_grad(outputs, targets, mask)
    valid = mask.astype(bool)
    o = torch.tensor(outputs[valid], requires_grad=True)
    ref = torch.nn.L1Loss()(o, torch.tensor(targets[valid]))
    ref.backward()
    assert loss == pytest.approx(ref.item())
    expected = np.zeros_like(outputs)
    expected[valid] = o.grad.numpy()
    np.testing.assert_allclose(grad, expected, rtol=0, atol=1e-15)
    assert grad[0, 0] == 0.0 and grad[2, 0] == 0.0 and grad[2, 2] == 0.0
