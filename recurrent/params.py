"""Named parameters and their gradients: the surface every parameter-holding module shares
(ParamModule), and a model's modules bound to one flat buffer of each (FlatModel).

Layers (recurrent/layers.py), Embedding and Dense (recurrent/modules.py) each keep
``{name: array}`` dicts of parameters and of gradients (same names and shapes). They start
with storage of their own; ``bind(params, grads)`` moves it into caller-owned arrays (the
views of SequenceModel's one flat buffer), copying the current values over. The checks
name every problem at once (missing, unexpected, wrong shape) so a checkpoint that does
not fit says why in one message.
"""
from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

from .checks import float_dtype

# the parameters the modules built in a parameter_budget may still allocate
_BUDGET = contextvars.ContextVar("parameter_budget", default=None)


@contextlib.contextmanager
def parameter_budget(count: int, source: str, training_only: bool = True):
    """Within it, the modules built refuse (ValueError naming ``source``) to allocate
    more than ``count`` parameters in all, before they allocate any: a model rebuilt
    from a saved description (a run's config.json, an export's metadata) to take the
    ``count`` parameters of ``source``, whose sizes in a crafted file would otherwise
    take gigabytes first. ``training_only=False``: the parameters only training reads
    (ParamModule.TRAINING_ONLY), which an export leaves out, are not counted."""
    token = _BUDGET.set({"left": count, "source": source, "training_only": training_only})
    try:
        yield
    finally:
        _BUDGET.reset(token)


def claim_params(shapes: dict, training_only=(), spend: bool = True) -> None:
    """Count the parameters of ``shapes`` ({name: shape}; those named in
    ``training_only`` only when the budget counts them) against the parameter_budget in
    force, if any; ValueError when they exceed what is left. ``spend=False``: check
    only (a module checking its size before the work that precedes its allocation)."""
    budget = _BUDGET.get()
    if budget is None:
        return
    count = sum(math.prod(shape) for name, shape in shapes.items()
                if budget["training_only"] or name not in training_only)
    if count > budget["left"]:
        raise ValueError(f"{budget['source']} does not fit this model: it holds fewer "
                         f"parameters than the model's options describe")
    if spend:
        budget["left"] -= count


def check_named_arrays(arrays, shapes, what):
    """ValueError listing every problem of ``arrays`` ({name: array}) against ``shapes``
    ({name: shape}): missing and unexpected names, wrong shapes."""
    problems = []
    missing = [n for n in shapes if n not in arrays]
    unexpected = [n for n in arrays if n not in shapes]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(map(str, unexpected))}")
    for name, shape in shapes.items():
        if name in arrays and np.shape(arrays[name]) != shape:
            problems.append(f"{name} has shape {np.shape(arrays[name])}, expected {shape}")
    if problems:
        raise ValueError(f"{what}: {'; '.join(problems)}")


def _fits(value, dtype):
    """Whether the finite float array ``value`` stays finite in ``dtype``."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(value.astype(dtype, copy=False)).all())


def checked_state_dict(state_dict, shapes, dtype=None, what="state_dict"):
    """{name: float array} from a state_dict that fits ``shapes`` exactly (finite floats,
    and within ``dtype``'s range when given: the dtype they are loaded into), or a
    ValueError starting with ``what``; nothing is loaded until everything has been
    checked."""
    if not hasattr(state_dict, "keys"):
        raise ValueError(f"{what}: expected a dict of arrays, "
                         f"got {type(state_dict).__name__}")
    check_named_arrays(state_dict, shapes, what)
    values = {}
    for name in shapes:
        value = np.asarray(state_dict[name])
        if value.dtype.kind != "f":
            raise ValueError(f"{what}: {name} has dtype {value.dtype}, "
                             f"expected a float array")
        if not np.isfinite(value).all():
            raise ValueError(f"{what}: {name} contains NaN or infinity")
        if dtype is not None and not _fits(value, dtype):
            raise ValueError(f"{what}: {name} has values too large for "
                             f"{np.dtype(dtype)}")
        values[name] = value
    return values


class FlatModel:
    """The parameter surface of a model whose modules ({prefix: module} in ``modules``)
    live in ONE flat parameter buffer and one gradient buffer (SequenceModel,
    Seq2SeqModel). Subclasses set ``modules``, ``dtype`` and ``dropout`` (their Dropout
    before the head), then call bind_flat()."""

    def bind_flat(self):
        (self.layout, self.params, self.grads, self.named_params,
         self.named_grads) = flat_buffers(self.modules, self.dtype)

    def __setstate__(self, state):
        """copy.deepcopy and pickle: numpy copies every array on its own, so the copy's
        ``params`` and ``grads`` would no longer be the storage of its modules (the
        optimizer would update a buffer the layers never read, and backward would add
        into arrays ``grads`` does not hold). Bind the copied modules to buffers of their
        own again (their copied values carried over)."""
        self.__dict__.update(state)
        self.bind_flat()

    def __copy__(self):
        """copy.copy: the same modules and buffers, shared (nothing to bind again)."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    @property
    def num_params(self):
        return self.params.size

    @property
    def num_trained(self):
        """How many leading entries of ``params`` the optimizer updates: all of them,
        unless a subclass keeps its last parameters fixed (SequenceModel's fitted wide
        part)."""
        return self.params.size

    def param_shapes(self):
        return {name: shape for name, (_, shape) in self.layout.items()}

    def state_dict(self):
        return {name: v.copy() for name, v in self.named_params.items()}

    def load_state_dict(self, state):
        """Copy every parameter in from {name: array} (names as in ``layout``)."""
        for name, value in checked_state_dict(state, self.param_shapes(),
                                              self.dtype).items():
            self.named_params[name][...] = value
        self.params_changed()

    def params_changed(self):
        """Tell every module that values in ``params`` changed (ParamModule.params_changed):
        the optimizer step (recurrent.step.train_step) and the loads call it; so must code
        that writes into ``params`` itself."""
        for module in self.modules.values():
            module.params_changed()

    def zero_grad(self):
        self.grads.fill(0)

    def train(self, mode=True):
        self.training = bool(mode)
        for module in self.modules.values():
            module.train(mode)
        self.dropout.training = self.training
        return self

    def eval(self):
        return self.train(False)


def flat_buffers(modules: dict, dtype):
    """ONE parameter buffer and ONE gradient buffer for ``modules`` ({prefix: module}),
    every module bound to named views of them. Returns (layout {"prefix.name": (offset,
    shape)}, params (P,), grads (P,), named params, named grads)."""
    layout = {}
    offset = 0
    for prefix, module in modules.items():
        for name, shape in module.param_shapes().items():
            layout[f"{prefix}.{name}"] = (offset, tuple(shape))
            offset += int(np.prod(shape))
    params, grads = np.zeros(offset, dtype), np.zeros(offset, dtype)

    def views(flat):
        return {name: flat[o:o + int(np.prod(s))].reshape(s) for name, (o, s) in layout.items()}

    named_params, named_grads = views(params), views(grads)
    for prefix, module in modules.items():
        n = len(prefix) + 1
        module.bind({k[n:]: v for k, v in named_params.items() if k.startswith(prefix + ".")},
                    {k[n:]: v for k, v in named_grads.items() if k.startswith(prefix + ".")})
    return layout, params, grads, named_params, named_grads


class ParamModule:
    """param_shapes / params / grads / zero_grad / state_dict / load_state_dict / bind /
    train / eval over ``_shapes`` ({name: shape}, flat-buffer order), ``_params`` and
    ``_grads`` ({name: array}). Subclasses call ``__init__(shapes, dtype)``; dtype is
    float32 or float64."""

    TRAINING_ONLY = ()  # parameters only training reads (see parameter_budget)

    def __init__(self, shapes, dtype):
        self.dtype = float_dtype(dtype)
        self._shapes = {name: tuple(int(n) for n in shape) for name, shape in shapes.items()}
        claim_params(self._shapes, self.TRAINING_ONLY)
        self._params = {n: np.zeros(s, self.dtype) for n, s in self._shapes.items()}
        self._grads = {n: np.zeros(s, self.dtype) for n, s in self._shapes.items()}
        self.training = True
        self.params_version = 0

    def params_changed(self):
        """Count a change of the parameter values (load_state_dict, bind and the training
        step call it; code writing into the arrays itself must too): what a module derives
        from its parameters and keeps (a layer's int8 weights) is made again after it."""
        self.params_version += 1

    def param_shapes(self):
        """{name: shape}, in flat-buffer order."""
        return dict(self._shapes)

    def params(self):
        """{name: the live parameter array} (not copies)."""
        return dict(self._params)

    def grads(self):
        """{name: the live gradient array}: backward adds into these."""
        return dict(self._grads)

    def zero_grad(self):
        for g in self._grads.values():
            g.fill(0)

    def state_dict(self):
        """{name: copy of the parameter}."""
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state_dict):
        """Copy parameters in from {name: array} (all of them, checked first)."""
        for name, value in checked_state_dict(state_dict, self._shapes, self.dtype).items():
            self._params[name][...] = value
        self.params_changed()

    def bind(self, params, grads):
        """Move parameter and gradient storage into caller-owned arrays (e.g. views of one
        flat buffer): current values are copied over, then the module uses those arrays."""
        for arrays, what in ((params, "params"), (grads, "grads")):
            check_named_arrays(arrays, self._shapes, f"bind {what}")
            for name, a in arrays.items():
                if not isinstance(a, np.ndarray) or a.dtype != self.dtype \
                        or not a.flags.c_contiguous or not a.flags.writeable:
                    raise ValueError(f"bind {what}: {name} must be a writeable C-contiguous "
                                     f"{self.dtype} array, got "
                                     f"{getattr(a, 'dtype', type(a).__name__)}")
        for name in self._shapes:
            params[name][...] = self._params[name]
            grads[name][...] = self._grads[name]
        self._params = {name: params[name] for name in self._shapes}
        self._grads = {name: grads[name] for name in self._shapes}
        self.params_changed()

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)
