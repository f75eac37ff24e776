"""Optimizers over the flat parameter buffer, and learning-rate schedules.

Every optimizer updates ONE float32 array of parameters in place from ONE gradient array of
the same length (recurrent/model.py keeps all parameters there), with one fused loop per
step (recurrent/_kernels/optim.pyx). Their arithmetic is torch.optim's, so a run can be
compared with PyTorch step by step.

Legend: N number of parameters (length of every buffer).

State for checkpoints: ``state_dict()`` returns plain arrays and numbers only (npz-safe);
``load_state_dict()`` takes them back and checks them first (lengths, finite float32
values, a step count >= 0).
"""
from __future__ import annotations

import math

import numpy as np

from ._kernels import optim as _k
from .checks import finite_number
from .params import checked_state_dict


def _finite(*values) -> bool:
    """Whether every value is a finite real number (checks.finite_number): a
    hyperparameter that is infinite, NaN or not a number would turn the parameters into
    NaN or infinity."""
    return all(map(finite_number, values))


class Optimizer:
    """Common part: the parameter and gradient buffers, the step count, state (de)serialising."""

    name = ""
    # names of the state buffers, each (N,) float32, allocated lazily or at construction
    buffer_names: tuple[str, ...] = ()

    def __init__(self, params: np.ndarray, grads: np.ndarray, lr: float):
        if not isinstance(params, np.ndarray) or not isinstance(grads, np.ndarray):
            raise ValueError(f"params and grads must be numpy arrays, got "
                             f"{type(params).__name__} and {type(grads).__name__}")
        if params.dtype != np.float32 or grads.dtype != np.float32:
            raise ValueError(f"params and grads must be float32, got {params.dtype} and "
                             f"{grads.dtype}")
        if params.ndim != 1 or params.shape != grads.shape or not params.flags.c_contiguous \
                or not grads.flags.c_contiguous:
            raise ValueError(f"params and grads must be contiguous 1-d arrays of one length, "
                             f"got {params.shape} and {grads.shape}")
        if not (_finite(lr) and lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        self.params = params  # (N,)
        self.grads = grads  # (N,)
        self.lr = float(lr)
        self.step_count = 0
        self.buffers = {name: np.zeros_like(params) for name in self.buffer_names}  # each (N,)

    def step(self, lr: float | None = None) -> None:
        """One update with learning rate ``lr`` (the schedule's value; default self.lr)."""
        if lr is not None and not (_finite(lr) and lr >= 0):  # a schedule's rate may reach 0
            raise ValueError(f"step: lr must be a finite number >= 0, got {lr!r}")
        self.step_count += 1
        self._update(self.lr if lr is None else float(lr))

    def _update(self, lr: float) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        state = {"step_count": np.int64(self.step_count)}
        for name, buf in self.buffers.items():
            state[name] = buf
        return state

    # buffers holding running averages of squared gradients: never negative (the update
    # takes their square root)
    squares: tuple[str, ...] = ()

    def load_state_dict(self, state: dict) -> None:
        # Everything is checked before anything is loaded.
        values = {}
        for name in ("step_count",) + self.buffer_names:
            if name not in state:
                raise ValueError(f"optimizer state lacks {name!r}")
            values[name] = np.asarray(state[name])
            if name != "step_count" and values[name].shape != self.params.shape:
                raise ValueError(f"optimizer state {name!r} has shape {values[name].shape}, "
                                 f"expected {self.params.shape}")
        count = values["step_count"]
        if count.shape != () or count.dtype.kind not in "iu" or count < 0:
            raise ValueError(f"optimizer state 'step_count' must be an integer >= 0, got "
                             f"{state['step_count']!r}")
        # finite floats within float32 (NaN or infinity would reach every parameter)
        values.update(checked_state_dict({name: values[name] for name in self.buffer_names},
                                         {name: self.params.shape for name in self.buffer_names},
                                         np.float32, "optimizer state"))
        for name in self.squares:
            if (values[name] < 0).any():
                raise ValueError(f"optimizer state {name!r} holds negative values (it is a "
                                 f"running average of squares)")
        for name in self.buffer_names:
            self.buffers[name][...] = values[name]
        self.step_count = int(values["step_count"])


class SGD(Optimizer):
    """torch.optim.SGD: momentum, dampening, Nesterov, L2 weight decay."""

    name = "sgd"
    buffer_names = ("momentum_buffer",)

    def __init__(self, params, grads, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        super().__init__(params, grads, lr)
        if not (_finite(momentum, weight_decay, dampening) and momentum >= 0
                and weight_decay >= 0):
            raise ValueError(f"momentum and weight_decay must be finite numbers >= 0 and "
                             f"dampening a finite number, got {momentum!r}, {weight_decay!r} "
                             f"and {dampening!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)

    def _update(self, lr):
        _k.sgd_update(self.params, self.grads, self.buffers["momentum_buffer"], lr,
                      self.momentum, self.dampening, self.weight_decay, self.nesterov,
                      self.step_count == 1)


class Adam(Optimizer):
    """torch.optim.Adam (L2 weight decay added to the gradient)."""

    name = "adam"
    buffer_names = ("exp_avg", "exp_avg_sq")
    squares = ("exp_avg_sq",)
    decoupled = False

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, grads, lr)
        if not (np.shape(betas) == (2,) and _finite(*betas, eps, weight_decay)
                and 0 <= betas[0] < 1 and 0 <= betas[1] < 1 and eps > 0
                and weight_decay >= 0):
            raise ValueError(f"bad Adam hyperparameters betas={betas} eps={eps} "
                             f"weight_decay={weight_decay}")
        self.betas, self.eps, self.weight_decay = (float(betas[0]), float(betas[1])), float(eps), \
            float(weight_decay)

    def _update(self, lr):
        beta1, beta2 = self.betas
        t = self.step_count
        step_size = lr / (1 - beta1 ** t)
        bc2_sqrt = math.sqrt(1 - beta2 ** t)
        _k.adam_update(self.params, self.grads, self.buffers["exp_avg"],
                       self.buffers["exp_avg_sq"], beta1, beta2, self.eps, self.weight_decay,
                       self.decoupled, 1 - lr * self.weight_decay, step_size, bc2_sqrt)


class AdamW(Adam):
    """torch.optim.AdamW: weight decay applied to the parameters, decoupled from Adam."""

    name = "adamw"
    decoupled = True

    def __init__(self, params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=None):
        super().__init__(params, grads, lr, betas, eps,
                         default_weight_decay(self.name) if weight_decay is None
                         else weight_decay)


class RMSProp(Optimizer):
    """torch.optim.RMSprop (not centered), optional momentum and L2 weight decay."""

    name = "rmsprop"
    buffer_names = ("square_avg", "momentum_buffer")
    squares = ("square_avg",)

    def __init__(self, params, grads, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0):
        super().__init__(params, grads, lr)
        if not (_finite(alpha, eps, weight_decay, momentum)
                and 0 <= alpha < 1 and eps > 0 and weight_decay >= 0 and momentum >= 0):
            raise ValueError(f"bad RMSProp hyperparameters alpha={alpha} eps={eps} "
                             f"weight_decay={weight_decay} momentum={momentum}")
        self.alpha, self.eps = float(alpha), float(eps)
        self.weight_decay, self.momentum = float(weight_decay), float(momentum)

    def _update(self, lr):
        _k.rmsprop_update(self.params, self.grads, self.buffers["square_avg"],
                          self.buffers["momentum_buffer"], lr, self.alpha, self.eps,
                          self.weight_decay, self.momentum)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Adam, AdamW, RMSProp)}


def check_optimizer_settings(name: str, momentum: float | None = None, nesterov: bool = False,
                             unused: bool = True) -> None:
    """ValueError, in the CLI's words, for optimizer options that make_optimizer would
    refuse (checked when a run starts, before its directory is made) and, with
    ``unused``, for --nesterov given to an optimizer that has no Nesterov variant, which
    make_optimizer leaves unused rather than dropping a user's choice without a word."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; known optimizers: "
                         f"{', '.join(sorted(OPTIMIZERS))}")
    if unused and nesterov and name != "sgd":
        raise ValueError(f"--nesterov is for --optimizer sgd (Nesterov momentum); "
                         f"{name} has none")
    if momentum is None:
        momentum = default_momentum(name)
    if name == "sgd" and nesterov and not momentum > 0:
        raise ValueError(f"--nesterov needs --momentum above 0, got {momentum}")


def default_momentum(name: str) -> float:
    """The momentum of optimizer ``name`` when none is given: 0.9 for sgd (plain SGD is
    rarely what a recurrent network wants), 0 for rmsprop (torch's RMSprop, Keras' and
    the algorithm as published); the others have none."""
    return 0.9 if name == "sgd" else 0.0


def default_weight_decay(name: str) -> float:
    """The weight decay of optimizer ``name`` when none is given: torch.optim's defaults,
    0.01 for adamw (AdamW's reason to be chosen over adam: decoupled decay), else 0."""
    return 0.01 if name == "adamw" else 0.0


def make_optimizer(name: str, params: np.ndarray, grads: np.ndarray, lr: float,
                   weight_decay: float | None = None, momentum: float | None = None,
                   nesterov: bool = False) -> Optimizer:
    """The optimizer called ``name`` from the CLI's options (unknown names list the known ones).
    ``momentum`` applies to sgd and rmsprop; ``nesterov`` to sgd; ``weight_decay`` and
    ``momentum`` None are the optimizer's defaults (default_weight_decay,
    default_momentum)."""
    check_optimizer_settings(name, momentum, nesterov, unused=False)
    if weight_decay is None:
        weight_decay = default_weight_decay(name)
    if momentum is None:
        momentum = default_momentum(name)
    if name == "sgd":
        return SGD(params, grads, lr, momentum=momentum, nesterov=nesterov,
                   weight_decay=weight_decay)
    if name == "rmsprop":
        return RMSProp(params, grads, lr, momentum=momentum, weight_decay=weight_decay)
    return OPTIMIZERS[name](params, grads, lr, weight_decay=weight_decay)


class Schedule:
    """Learning rate as a function of the step index (0-based, before the update).

    Linear warm-up over ``warmup`` steps from lr/warmup to lr, then:
      constant: lr
      step:     lr * gamma ** (s // step_size)            s = steps since warm-up ended
      cosine:   min_lr + (lr - min_lr) * (1 + cos(pi * s / span)) / 2,
                span = total_steps - warmup (then stays at min_lr)

    A cosine run whose horizon changes part-way (a resumed run given more or fewer
    steps) continues with ``extensions``: (start, lr_start, end) triples, each a cosine
    from lr_start at step ``start`` down to min_lr at step ``end`` (see continued()).
    """

    kinds = ("constant", "step", "cosine")

    def __init__(self, kind: str, lr: float, total_steps: int | None = None, warmup: int = 0,
                 step_size: int = 1000, gamma: float = 0.5, min_lr: float = 0.0,
                 extensions=()):
        self.check_settings(kind, warmup, step_size, gamma, min_lr)
        if not (lr > 0 and math.isfinite(lr)):   # refuses NaN too
            raise ValueError(f"lr must be a finite number > 0, got {lr}")
        if kind == "cosine" and not total_steps:
            raise ValueError("the cosine schedule needs the total number of steps")
        self.kind, self.lr, self.total_steps = kind, float(lr), total_steps
        self.warmup, self.step_size, self.gamma, self.min_lr = warmup, step_size, gamma, min_lr
        self.extensions = tuple((int(a), float(b), int(c)) for a, b, c in extensions)

    @classmethod
    def check_settings(cls, kind: str, warmup: int = 0, step_size: int = 1000,
                       gamma: float = 0.5, min_lr: float = 0.0) -> None:
        """ValueError for settings no schedule accepts (the total step count aside, which
        a run knows only once it starts)."""
        if kind not in cls.kinds:
            raise ValueError(f"unknown schedule {kind!r}; known schedules: {', '.join(cls.kinds)}")
        # written so that NaN fails every test: NaN compares false with everything
        if not (warmup >= 0 and step_size >= 1 and 0 < gamma < math.inf
                and 0 <= min_lr < math.inf):
            raise ValueError(f"bad schedule settings warmup={warmup} step_size={step_size} "
                             f"gamma={gamma} min_lr={min_lr}")

    @staticmethod
    def moot_within(kind: str, warmup: int, step_size: int, total_steps: int,
                    limit: str = "--steps", resumed: bool = False) -> str | None:
        """What of these settings a run of ``total_steps`` steps would never reach, as a
        sentence naming the option, else None: a warm-up of at least the whole run (its
        rate reaches --lr at the last step at best, and no schedule follows), or a step
        schedule whose first decay (step warmup + step_size, counted from 0) comes after
        the last step, which leaves it constant. ``limit``: the option whose count ends
        the run (--steps, or --epochs when an epoch count ends it first), which the
        sentence says to raise; ``resumed``: the run is resumed, whose schedule settings
        cannot change, so raising ``limit`` is the only advice."""
        if warmup and warmup >= total_steps:
            advice = f"more {limit}" if resumed else f"a smaller --warmup or more {limit}"
            return (f"--warmup {warmup} is not shorter than the run's {total_steps} "
                    f"step(s): the warm-up would take the whole run; give {advice}")
        if kind == "step" and warmup + step_size >= total_steps:
            advice = (f"more {limit}" if resumed else
                      f"a smaller --decay-every or more {limit}, or --schedule constant")
            return (f"--decay-every {step_size} never decays in the run's {total_steps} "
                    f"step(s) (the first decay is at step {warmup + step_size + 1}"
                    f"{' counting the warm-up' if warmup else ''}): give {advice}")
        return None

    @property
    def end(self) -> int | None:
        """The step at which the schedule reaches its final rate (cosine), else None."""
        if self.kind != "cosine":
            return None
        return self.extensions[-1][2] if self.extensions else self.total_steps

    def continued(self, step: int, total_steps: int) -> "Schedule":
        """This schedule for a run that has taken ``step`` steps and now ends at
        ``total_steps``: itself when the horizon is unchanged (or does not matter). A
        cosine still warming up keeps its warm-up and spans the new horizon; past the
        warm-up it continues from the rate the last step used, annealing to min_lr over
        the new remaining steps, so the rate never jumps."""
        if self.kind != "cosine" or total_steps == self.end or total_steps <= step:
            return self
        settings = dict(warmup=self.warmup, step_size=self.step_size, gamma=self.gamma,
                        min_lr=self.min_lr)
        if step <= self.warmup and not self.extensions:
            return Schedule(self.kind, self.lr, total_steps, **settings)
        extension = (step, self(step - 1), total_steps)
        return Schedule(self.kind, self.lr, self.total_steps,
                        extensions=self.extensions + (extension,), **settings)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        s = step - self.warmup
        if self.kind == "constant":
            return self.lr
        if self.kind == "step":
            return self.lr * self.gamma ** (s // self.step_size)
        lr, start, end = self.lr, self.warmup, self.total_steps
        for e_start, e_lr, e_end in self.extensions:
            if step >= e_start:
                start, lr, end = e_start, e_lr, e_end
        span = max(1, end - start)
        progress = min(1.0, (step - start) / span)
        return self.min_lr + (lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2
