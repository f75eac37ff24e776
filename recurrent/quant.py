"""The precisions (fp32, int8, bf16), int8's quantisation of weights and activations, and
whether this CPU runs bf16.

Scheme (issue 17), symmetric, no zero point, no calibration data:
- a weight matrix W (G, K) is quantised per output row, once: m = max|W[g]|,
  scale[g] = m / 127, q[g] = rint(W[g] * (127 / m)) in -127..127 (a zero row, or one whose
  127 / m overflows float32: scale 0, q 0; a row holding infinity or NaN: scale NaN, q 0,
  so that its products are NaN: a non-finite state stays non-finite, as in float32);
- the activations x_t and h_{t-1} are quantised the same way per batch row at every step
  (dynamic: the scale of a row is its own max-abs), by the kernels (recurrent/_kernels/
  qmat.h) with the same float32 operations as quantize_rows() below, bit for bit;
- the products are exact int32 sums of q_a * q_w, dequantised with scale_a * scale_w to
  float32; biases, gates, layer normalisation (ln_lstm), zoneout's blend and the LSTMs'
  cell state stay float32.
The error of one dequantised dot product sum_k a_k w_k is then at most
    sum_k (|a_k| dw + |w_k| da + da dw),   da = scale_a / 2, dw = scale_w / 2
(each quantised value is within half a step of the true one); where either row
quantises to zeros (scale 0) the product is 0 and its error |sum_k a_k w_k| at most
sum_k |a_k| |w_k|: int8_error_bound().

Only inference runs in int8 (Recurrent.precision, recurrent/layers.py); training and
gradients stay float32.

bf16 (issue 17), training and inference of cells that list it in their ``precisions``
(recurrent.protocols.Cell; every built-in cell): every matrix product takes its operands
rounded to bfloat16 and sums in float32, as PyTorch's bf16 autocast; activations, the cell
state, the parameters (master weights), their gradients and the optimizer's state stay
float32, and so do checkpoints. It needs the CPU's AVX512_BF16 instructions
(bf16_available); without them a layer runs fp32 and says so once (bf16_or_fp32).
"""
from __future__ import annotations

import functools

import numpy as np

PRECISIONS = ("fp32", "int8", "bf16")
# --precision of eval and predict
PRECISION_HELP = ("Inference precision, whatever the run trained in: int8 quantises the "
                  "recurrent layers' weights per row and their inputs per step; bf16 "
                  "multiplies bfloat16 values with float32 sums (every built-in cell; CPUs "
                  "with AVX512_BF16, else fp32 with a note) "
                  "(recurrent/quant.py).")
# the precisions a training pass (need_grad) may run in: int8 is for inference only
TRAINING_PRECISIONS = ("fp32", "bf16")
# what a layer prints, once per process, when it runs bf16 as fp32 (bf16_or_fp32)
BF16_FALLBACK = ("note: this CPU has no AVX512_BF16 instructions in use: precision bf16 "
                 "runs in fp32")
_bf16_told = []   # [True] once BF16_FALLBACK was printed in this process


def check_precision(value, name="precision"):
    """The precision name, or a ValueError naming the choices."""
    if value not in PRECISIONS:
        raise ValueError(f"{name}: expected one of {', '.join(PRECISIONS)}, got {value!r}")
    return value


def bf16_available() -> bool:
    """Whether the bf16 kernels run on this CPU: its AVX512_BF16 instructions, unless
    RECURRENT_VECTOR_LEVEL lowers the vector code (every level it names lacks them)."""
    from .tuning import env_vector_level
    return env_vector_level() is None and _cpu_runs_bf16()


@functools.lru_cache(maxsize=None)
def _cpu_runs_bf16() -> bool:
    """The bf16 kernel module's answer (recurrent._kernels.bf16.available) when it is
    built, else whether the CPU lists avx512_bf16 among its flags (recurrent.tuning reads
    them); asked once per process, as layers ask at every bf16 pass."""
    try:
        from ._kernels import bf16 as _bf16
    except ImportError:
        from .tuning import _cpu
        return "avx512_bf16" in _cpu()[1]
    return bool(_bf16.available())


def runs_as(precision: str) -> str:
    """The precision a layer runs for ``precision``: bf16 is fp32 on a CPU without bf16
    (bf16_available); any other precision is itself. What headers and --json report."""
    return "fp32" if precision == "bf16" and not bf16_available() else precision


def bf16_or_fp32(precision: str) -> str:
    """runs_as(precision), with BF16_FALLBACK printed on stderr the first time in the
    process that bf16 runs as fp32."""
    if runs_as(precision) == precision:
        return precision
    if not _bf16_told:
        _bf16_told.append(True)
        from .progress import aside
        aside(BF16_FALLBACK)
    return "fp32"


def leave_bf16_note_to_rank_0() -> None:
    """bf16_or_fp32 prints no BF16_FALLBACK in this process from now on: a data-parallel
    rank other than 0, whose note would repeat rank 0's on the job's stderr."""
    if not _bf16_told:
        _bf16_told.append(True)


def quantize_rows(a):
    """a (m, K) float -> (q int8 (m, K), scale float32 (m,)): symmetric per-row int8, each
    step one float32 operation rounded to nearest even (as the kernels do)."""
    a = np.asarray(a, np.float32)
    m = np.max(np.abs(a), axis=1) if a.shape[1] else np.zeros(a.shape[0], np.float32)
    finite = np.isfinite(m)    # else the row holds infinity or NaN: q 0, scale NaN
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        inv = np.float32(127) / m
    # a zero row, or one so small that 127 / m overflows float32: q 0, scale 0
    usable = np.isfinite(inv) & finite
    inv = np.where(usable, inv, np.float32(0))
    q = np.rint(np.where(usable[:, None], a, np.float32(0)) * inv[:, None]).astype(np.int8)
    scale = np.where(usable, m / np.float32(127),
                     np.where(finite, np.float32(0), np.float32(np.nan))).astype(np.float32)
    return q, scale


def dequantize_rows(q, scale):
    """The float32 matrix (m, K) that quantised rows q (m, K) with scales (m,) stand for,
    q * scale; quantize_rows gives back the same q and scale from it (exported int8
    weights loaded again quantise to what was exported)."""
    return np.asarray(q, np.float32) * np.asarray(scale, np.float32)[:, None]


def int8_error_bound(a, w):
    """Bound (m, G) on |int8 product - a @ w.T| for a (m, K), w (G, K): see above."""
    a = np.asarray(a, np.float64)
    w = np.asarray(w, np.float64)
    da = np.max(np.abs(a), axis=1) / 127 / 2                           # (m,)
    dw = np.max(np.abs(w), axis=1) / 127 / 2                           # (G,)
    K = a.shape[1]
    bound = (np.abs(a).sum(1)[:, None] * dw[None, :] + da[:, None] * np.abs(w).sum(1)[None, :]
             + K * da[:, None] * dw[None, :])
    # a row of values so small that 127 / max overflows quantises to zeros, not to half a
    # step of itself: its products are 0, off by the whole |a @ w.T|
    zero_a = quantize_rows(a)[1] == 0
    zero_w = quantize_rows(w)[1] == 0
    if zero_a.any() or zero_w.any():
        whole = np.abs(a) @ np.abs(w).T
        bound = np.where(zero_a[:, None] | zero_w[None, :], whole, bound)
    return bound


class QuantizedWeight:
    """A weight matrix (G, K) quantised per row (quantize_rows), with its copy packed for
    the kernels (recurrent._kernels.int8.pack)."""

    __slots__ = ("q", "scale", "packed", "shape")

    def __init__(self, w):
        from ._kernels import int8 as _int8
        self.q, self.scale = quantize_rows(w)
        self.packed = _int8.pack(self.q)
        self.shape = self.q.shape

    # copy.deepcopy and pickle copy an array to wherever numpy allocates it (16-byte
    # aligned): a copy packs its weights again, on the 64-byte boundary pack() gives.
    def __getstate__(self):
        return {"q": self.q, "scale": self.scale}

    def __setstate__(self, state):
        from ._kernels import int8 as _int8
        self.q, self.scale = state["q"], state["scale"]
        self.packed = _int8.pack(self.q)
        self.shape = self.q.shape
