"""Kernel edge cases: results that must not depend on the thread count.

Legend: T time, B batch, I input, H hidden.
"""
import numpy as np
import pytest

from recurrent.layers import LSTM


def _lstm_pass(layer, x, lengths, need_grad, num_threads):
    """out, h_n, c_n and, with need_grad, dx, d h0, d c0 and the parameter gradients."""
    layer.num_threads = num_threads
    layer.zero_grad()
    rng = np.random.default_rng(5)
    T, B, _ = x.shape
    H = layer.hidden_size
    h0, c0 = (rng.normal(scale=0.5, size=(1, B, H)).astype(np.float32) for _ in range(2))
    out, (h_n, c_n) = layer(x, state=(h0, c0), lengths=lengths, need_grad=need_grad)
    result = {"out": np.array(out), "h_n": h_n, "c_n": c_n}
    if need_grad:
        dx, (dh0, dc0) = layer.backward(rng.normal(size=out.shape).astype(np.float32),
                                        (rng.normal(size=h_n.shape).astype(np.float32),
                                         rng.normal(size=c_n.shape).astype(np.float32)))
        result.update(dx=dx, dh0=dh0, dc0=dc0)
        result.update({f"grad {k}": g.copy() for k, g in layer.grads().items()})
    return result


@pytest.mark.parametrize("need_grad", [False, True], ids=["infer", "forward"])
def test_lstm_zoneout_expectation_is_bitwise_equal_at_any_thread_count(
        every_region_threaded, need_grad):
    # In evaluation zoneout mixes each state with its previous value by p = 0.3 (not 0 or
    # 1, whose blend is exact however it is rounded). The float32 step blends inside its
    # register tiles; a thread's slice of rows decides which tile shape (4, 2 or 1 rows)
    # a row falls in, so the blend must round the same way in every tile shape.
    for B, H in [(9, 16), (7, 33), (4, 17)]:
        layer = LSTM(3, H, zoneout=0.3, seed=1)
        layer.eval()
        x = np.random.default_rng(2).normal(size=(3, B, 3)).astype(np.float32)
        lengths = np.array([3 if b % 3 else 1 for b in range(B)])
        one = _lstm_pass(layer, x, lengths, need_grad, 1)
        for num_threads in (2, 3):
            other = _lstm_pass(layer, x, lengths, need_grad, num_threads)
            for key in one:
                np.testing.assert_array_equal(other[key], one[key],
                                              err_msg=f"{key}, B={B}, H={H}, "
                                                      f"{num_threads} threads")
