"""Built-in losses: against the plain-numpy references, finite differences, torch, bad input."""
import numpy as np
import pytest

from recurrent import reference
from recurrent.plugins import get_loss

LOSS_NAMES = ("cross_entropy", "binary_cross_entropy", "mse", "mae")
N, K = 7, 5


def make_case(name, rng, dtype=np.float64):
    """outputs (N, K), targets, mask (N,) with two padded rows carrying junk targets."""
    outputs = rng.normal(scale=2.0, size=(N, K)).astype(dtype)
    mask = np.array([1, 1, 0, 1, 0, 1, 1], dtype=bool)
    if name == "cross_entropy":
        targets = rng.integers(0, K, size=N)
        targets[~mask] = -1  # padding id: must be ignored, not indexed
    else:
        targets = rng.random((N, K)).astype(dtype)
    return outputs, targets, mask


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
def test_matches_reference(name, masked, rng):
    outputs, targets, mask = make_case(name, rng)
    if not masked:
        mask = None
        if name == "cross_entropy":
            targets = np.abs(targets)
    value, grad = get_loss(name).value_and_grad(outputs, targets, mask)
    ref_value, ref_grad = reference.LOSSES[name](outputs, targets, mask)
    assert value == pytest.approx(ref_value, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_float32_close_to_reference(name, rng):
    outputs, targets, mask = make_case(name, rng, np.float32)
    value, grad = get_loss(name).value_and_grad(outputs, targets, mask)
    ref_value, ref_grad = reference.LOSSES[name](outputs, targets, mask)
    assert grad.dtype == np.float32
    assert value == pytest.approx(ref_value, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_finite_differences(name, rng):
    outputs, targets, mask = make_case(name, rng)
    loss = get_loss(name)
    _, grad = loss.value_and_grad(outputs, targets, mask)
    eps = 1e-6
    numeric = np.zeros_like(outputs)
    for idx in np.ndindex(outputs.shape):
        up, down = outputs.copy(), outputs.copy()
        up[idx] += eps
        down[idx] -= eps
        numeric[idx] = (loss.value_and_grad(up, targets, mask)[0]
                        - loss.value_and_grad(down, targets, mask)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-8)
    assert np.all(grad[~mask] == 0)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_sequence_shaped_outputs(name, rng):
    """(T, B, K) outputs with (T, B) mask equal the flattened (T*B, K) call."""
    outputs, targets, mask = make_case(name, rng)
    outputs3 = np.concatenate([outputs, outputs[:1]]).reshape(4, 2, K)
    targets3 = np.concatenate([targets, targets[:1]]).reshape((4, 2) + targets.shape[1:])
    mask3 = np.concatenate([mask, mask[:1]]).reshape(4, 2)
    loss = get_loss(name)
    value3, grad3 = loss.value_and_grad(outputs3, targets3, mask3)
    value2, grad2 = loss.value_and_grad(outputs3.reshape(8, K), targets3.reshape((8,) + targets.shape[1:]),
                                        mask3.reshape(8))
    assert grad3.shape == outputs3.shape
    assert value3 == value2
    np.testing.assert_array_equal(grad3.reshape(8, K), grad2)


def test_cross_entropy_stable_on_huge_logits():
    outputs = np.array([[1e4, 0.0, -1e4], [-5e3, 5e3, 0.0]], np.float32)
    value, grad = get_loss("cross_entropy").value_and_grad(outputs, np.array([1, 1]))
    assert value == pytest.approx(1e4 / 2, rel=1e-6)  # row 0 costs 1e4, row 1 costs 0
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-6)


def test_binary_cross_entropy_stable_on_huge_logits():
    outputs = np.array([[1e4, -1e4]], np.float32)
    value, grad = get_loss("binary_cross_entropy").value_and_grad(outputs, np.array([[0.0, 0.0]], np.float32))
    assert value == pytest.approx(1e4 / 2, rel=1e-6)
    np.testing.assert_allclose(grad, [[0.5, 0.0]], atol=1e-6)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_all_rows_masked_is_zero(name, rng):
    outputs, targets, _ = make_case(name, rng)
    value, grad = get_loss(name).value_and_grad(outputs, targets, np.zeros(N, bool))
    assert value == 0.0
    assert not grad.any()


@pytest.mark.parametrize("name,targets,message", [
    ("cross_entropy", np.zeros((N, K), np.int64), "targets: expected shape"),
    ("cross_entropy", np.zeros(N), "integer class ids"),
    ("cross_entropy", np.full(N, K), r"class ids must lie in \[0, 5\)"),
    ("mse", np.zeros(N), "targets: expected shape"),
])
def test_bad_targets_raise(name, targets, message, rng):
    outputs = rng.normal(size=(N, K))
    with pytest.raises(ValueError, match=message):
        get_loss(name).value_and_grad(outputs, targets)


def test_bad_outputs_and_mask_raise(rng):
    with pytest.raises(ValueError, match="outputs: expected a float array"):
        get_loss("mse").value_and_grad(np.zeros(N), np.zeros(N))
    with pytest.raises(ValueError, match="mask: expected shape"):
        get_loss("mse").value_and_grad(np.zeros((N, K)), np.zeros((N, K)), np.ones(N + 1))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_matches_torch(name, rng):
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    F = torch.nn.functional
    outputs, targets, mask = make_case(name, rng, np.float32)
    keep = torch.from_numpy(mask)
    x = torch.tensor(outputs, requires_grad=True)
    if name == "cross_entropy":
        expected = F.cross_entropy(x[keep], torch.from_numpy(targets)[keep])
    else:
        fn = {"binary_cross_entropy": F.binary_cross_entropy_with_logits,
              "mse": F.mse_loss, "mae": F.l1_loss}[name]
        expected = fn(x[keep], torch.from_numpy(targets)[keep])
    expected.backward()
    value, grad = get_loss(name).value_and_grad(outputs, targets, mask)
    assert value == pytest.approx(expected.item(), rel=1e-5)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_nan_in_padded_rows_does_not_leak(name, rng):
    outputs, targets, mask = make_case(name, rng, np.float32)
    clean_value, clean_grad = get_loss(name).value_and_grad(outputs, targets, mask)
    outputs[~mask] = np.nan
    if name != "cross_entropy":
        targets[~mask] = np.nan
    value, grad = get_loss(name).value_and_grad(outputs, targets, mask)
    assert value == clean_value
    np.testing.assert_array_equal(grad, clean_grad)


@pytest.mark.parametrize("bad", [1.5, -0.25, np.nan])
def test_binary_cross_entropy_refuses_targets_that_are_not_probabilities(rng, bad):
    """Above 1 (or below 0) the loss falls without bound as the logit grows (shrinks):
    training on such targets diverges instead of fitting them."""
    outputs, targets, mask = make_case("binary_cross_entropy", rng, np.float32)
    loss = get_loss("binary_cross_entropy")
    targets[~mask] = 7.0  # padded rows may hold anything
    loss.value_and_grad(outputs, targets, mask)
    targets[np.flatnonzero(mask)[0], 1] = bad
    with pytest.raises(ValueError, match=r"takes probabilities in \[0, 1\], got "
                                         + ("NaN" if np.isnan(bad) else r"values in")):
        loss.value_and_grad(outputs, targets, mask)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        loss.value_and_grad(outputs, targets)


def test_binary_cross_entropy_does_not_fit_scaled_forecast_values(tmp_path):
    """forecast's targets are standardised values (negative and above 1): a clear refusal
    before the run directory is made, as for any loss that does not fit the task."""
    from helpers import invoke, one_line_error
    out = tmp_path / "r"
    one_line_error(invoke("train", "forecast", "--loss", "binary_cross_entropy", "--hidden",
                          8, "--steps", 1, "--threads", 1, "--quiet", "--no-plot", "--out",
                          out),
                   "--loss binary_cross_entropy does not fit task 'forecast'",
                   "probabilities in [0, 1]")
    assert not out.exists()


def test_binary_cross_entropy_refused_when_forecast_training_targets_fit_it(tmp_path):
    """Min-max scaled levels put the training targets in [0, 1], but the validation and
    test values, and the actuals the "loss" figure scores, go beyond: the refusal does not
    depend on which rows the first batch holds, and no run directory is made."""
    from helpers import invoke, one_line_error
    out = tmp_path / "r"
    one_line_error(invoke("train", "forecast", "--loss", "binary_cross_entropy",
                          "--scaling", "minmax", "--no-difference", "--window", 8,
                          "--inputs", "level", "--hidden", 4, "--steps", 1, "--threads", 1,
                          "--quiet", "--no-plot", "--out", out),
                   "--loss binary_cross_entropy does not fit task 'forecast'",
                   "probabilities in [0, 1]")
    assert not out.exists()
