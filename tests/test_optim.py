"""Optimizers over the flat buffer vs torch.optim on identical gradients; LR schedules."""
import functools
import math

import numpy as np
import pytest

from recurrent.optim import SGD, Adam, AdamW, RMSProp, Schedule, make_optimizer

N = 257  # an odd length: no assumption about vector widths
STEPS = 6

CASES = [
    ("sgd plain", SGD, dict(lr=0.1), "SGD", dict(lr=0.1)),
    ("sgd momentum wd", SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01),
     "SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd dampening", SGD, dict(lr=0.05, momentum=0.8, dampening=0.3),
     "SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("sgd nesterov", SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
     "SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("adam", Adam, dict(lr=1e-2), "Adam", dict(lr=1e-2)),
    ("adam wd betas", Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
     "Adam", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("adamw", AdamW, dict(lr=1e-2, weight_decay=0.1), "AdamW", dict(lr=1e-2, weight_decay=0.1)),
    ("rmsprop", RMSProp, dict(lr=1e-2), "RMSprop", dict(lr=1e-2)),
    ("rmsprop momentum wd", RMSProp, dict(lr=1e-3, alpha=0.9, momentum=0.5, weight_decay=0.01),
     "RMSprop", dict(lr=1e-3, alpha=0.9, momentum=0.5, weight_decay=0.01)),
    # the CLI's optimizer with no --momentum: torch's RMSprop defaults
    ("rmsprop as the CLI makes it", functools.partial(make_optimizer, "rmsprop"),
     dict(lr=1e-2), "RMSprop", dict(lr=1e-2)),
]


def gradient_sequence(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(N).astype(np.float32) * (0.1 + i) for i in range(STEPS)]


@pytest.mark.parametrize("label, ours, kwargs, theirs, torch_kwargs", CASES,
                         ids=[c[0] for c in CASES])
def test_matches_torch_optim(label, ours, kwargs, theirs, torch_kwargs):
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    start = np.random.default_rng(1).standard_normal(N).astype(np.float32)
    params, grads = start.copy(), np.zeros(N, np.float32)
    opt = ours(params, grads, **kwargs)
    tparam = torch.nn.Parameter(torch.from_numpy(start.copy()))
    topt = getattr(torch.optim, theirs)([tparam], **torch_kwargs)
    for g in gradient_sequence():
        grads[...] = g
        opt.step()
        tparam.grad = torch.from_numpy(g.copy())
        topt.step()
        np.testing.assert_allclose(params, tparam.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(params, start)  # it moved


def test_lr_argument_overrides_base_lr():
    params, grads = np.ones(3, np.float32), np.ones(3, np.float32)
    opt = SGD(params, grads, lr=1.0)
    opt.step(lr=0.25)
    np.testing.assert_array_equal(params, np.full(3, 0.75, np.float32))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_state_round_trip_continues_identically(name):
    """Saving the state mid-run and loading it into a fresh optimizer gives the same path."""
    grads_seq = gradient_sequence(2)
    start = np.random.default_rng(3).standard_normal(N).astype(np.float32)

    params_a, grads_a = start.copy(), np.zeros(N, np.float32)
    a = make_optimizer(name, params_a, grads_a, lr=0.01, weight_decay=0.01, momentum=0.9)
    for g in grads_seq[:3]:
        grads_a[...] = g
        a.step()
    saved_state = {k: np.array(v, copy=True) for k, v in a.state_dict().items()}
    saved_params = params_a.copy()
    for g in grads_seq[3:]:
        grads_a[...] = g
        a.step()

    params_b, grads_b = saved_params, np.zeros(N, np.float32)
    b = make_optimizer(name, params_b, grads_b, lr=0.01, weight_decay=0.01, momentum=0.9)
    b.load_state_dict(saved_state)
    for g in grads_seq[3:]:
        grads_b[...] = g
        b.step()
    np.testing.assert_array_equal(params_a, params_b)


def test_state_with_wrong_length_is_rejected():
    opt = Adam(np.zeros(4, np.float32), np.zeros(4, np.float32))
    state = opt.state_dict()
    state["exp_avg"] = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(state)


def test_bad_construction():
    with pytest.raises(ValueError, match="float32"):
        SGD(np.zeros(3), np.zeros(3), lr=0.1)
    with pytest.raises(ValueError, match="one length"):
        SGD(np.zeros(3, np.float32), np.zeros(4, np.float32), lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        Adam(np.zeros(3, np.float32), np.zeros(3, np.float32), lr=0.0)
    with pytest.raises(ValueError, match="known optimizers: adam, adamw, rmsprop, sgd"):
        make_optimizer("adagrad", np.zeros(3, np.float32), np.zeros(3, np.float32), lr=0.1)


def test_constant_and_warmup():
    s = Schedule("constant", 0.1, warmup=4)
    assert [s(i) for i in range(6)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1])


def test_step_decay_matches_torch_steplr():
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    s = Schedule("step", 0.1, step_size=3, gamma=0.5)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    for i in range(10):
        assert s(i) == pytest.approx(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()


def test_cosine_matches_closed_form_and_torch():
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    total = 20
    s = Schedule("cosine", 0.1, total_steps=total, min_lr=0.001)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=0.001)
    for i in range(total):
        assert s(i) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6)
        opt.step()
        ref.step()
    assert s(total + 5) == pytest.approx(0.001)


def test_cosine_after_warmup():
    s = Schedule("cosine", 1.0, total_steps=12, warmup=2)
    assert s(0) == pytest.approx(0.5) and s(1) == pytest.approx(1.0)
    assert s(2) == pytest.approx(1.0)
    assert s(7) == pytest.approx((1 + math.cos(math.pi * 5 / 10)) / 2)
    assert s(12) == pytest.approx(0.0)


def test_schedule_errors():
    with pytest.raises(ValueError, match="total number of steps"):
        Schedule("cosine", 0.1)
    with pytest.raises(ValueError, match="known schedules"):
        Schedule("exp", 0.1)


@pytest.mark.parametrize("kind, settings", [
    ("cosine", dict(total_steps=10, min_lr=math.nan)),
    ("step", dict(step_size=math.nan)),
    ("constant", dict(warmup=math.nan)),
    ("step", dict(gamma=math.nan)),
])
def test_schedule_refuses_nan_settings(kind, settings):
    # NaN compares false with every bound, so a check written as `x < 0` lets it through
    # and every rate of the schedule would be NaN
    with pytest.raises(ValueError, match="bad schedule settings"):
        Schedule(kind, 0.1, **settings)
    with pytest.raises(ValueError, match="bad schedule settings"):
        Schedule.check_settings(kind, **{k: v for k, v in settings.items()
                                         if k != "total_steps"})


@pytest.mark.parametrize("lr", [0.0, -0.1, math.nan, math.inf])
def test_schedule_refuses_a_rate_no_optimizer_takes(lr):
    # the optimizers refuse these at construction; the schedule's rate replaces theirs at
    # every step, so it must not bring them back
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        Schedule("constant", lr)


def test_cosine_continued_over_a_new_horizon_never_jumps():
    base = Schedule("cosine", 0.01, total_steps=10, warmup=2, min_lr=1e-4)
    assert base.continued(6, 10) is base  # same horizon: the same curve, exactly
    longer = base.continued(6, 20)  # resumed at step 6 with 10 more steps
    assert [longer(i) for i in range(6)] == [base(i) for i in range(6)]
    assert longer(6) == base(5)  # from the rate the last step used...
    lrs = [longer(i) for i in range(2, 21)]
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))  # ...annealing without a jump
    assert longer(20) == pytest.approx(1e-4) and longer(19) > 1e-4
    shorter = base.continued(6, 8)  # fewer steps: anneal faster, still from base(5)
    assert shorter(6) == base(5) and shorter(8) == pytest.approx(1e-4)
    again = longer.continued(12, 30)  # extensions chain
    assert again(12) == longer(11) and again(30) == pytest.approx(1e-4)
    # a finished run given more steps continues from its last rate, not from lr
    done = base.continued(10, 16)
    assert done(10) == base(9) < 0.01
    # still warming up: the warm-up stays and the cosine spans the new horizon
    early = base.continued(1, 20)
    assert early.extensions == () and early.total_steps == 20 and early(1) == base(1)
    for kind in ("constant", "step"):  # no horizon: nothing to continue
        s = Schedule(kind, 0.1)
        assert s.continued(5, 50) is s


@pytest.mark.parametrize("name", ["rmsprop", "sgd"])
def test_momentum_left_out_is_the_optimizers_own(name):
    """make_optimizer without a momentum: torch's RMSprop default (0; the whole update is
    compared with torch in CASES), and the momentum SGD this project defaults to (0.9)."""
    optimizer = make_optimizer(name, np.zeros(3, np.float32), np.zeros(3, np.float32), lr=0.1)
    assert optimizer.momentum == (0.9 if name == "sgd" else 0.0)


# Each optimizer as the command line builds it (--optimizer, --weight-decay, --momentum,
# --nesterov) and the torch.optim class and flags docs/training.md names for it.
CLI_CASES = [
    ("sgd", dict(weight_decay=0.05), "SGD", dict(momentum=0.9, dampening=0, weight_decay=0.05)),
    ("sgd", dict(weight_decay=0.05, momentum=0.0), "SGD", dict(momentum=0, weight_decay=0.05)),
    ("sgd", dict(weight_decay=0.05, momentum=0.8, nesterov=True), "SGD",
     dict(momentum=0.8, dampening=0, nesterov=True, weight_decay=0.05)),
    ("adam", dict(weight_decay=0.05), "Adam",
     dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)),
    ("adamw", dict(weight_decay=0.05), "AdamW",
     dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)),
    ("adamw", dict(), "AdamW", dict()),
    ("rmsprop", dict(weight_decay=0.05), "RMSprop",
     dict(alpha=0.99, eps=1e-8, weight_decay=0.05, momentum=0, centered=False)),
    ("rmsprop", dict(weight_decay=0.05, momentum=0.9), "RMSprop",
     dict(alpha=0.99, eps=1e-8, weight_decay=0.05, momentum=0.9, centered=False)),
]


@pytest.mark.parametrize("name, options, theirs, torch_kwargs", CLI_CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}" for c in CLI_CASES])
def test_cli_optimizers_are_the_torch_optimizers_the_docs_name(name, options, theirs,
                                                                torch_kwargs):
    """A changing rate, as a schedule gives, reaches both alike; large parameters make
    the weight decay's form (L2 in the gradient or decoupled) show in the result."""
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    start = 5 * np.random.default_rng(4).standard_normal(N).astype(np.float32)
    params, grads = start.copy(), np.zeros(N, np.float32)
    opt = make_optimizer(name, params, grads, lr=0.01, **options)
    tparam = torch.nn.Parameter(torch.from_numpy(start.copy()))
    topt = getattr(torch.optim, theirs)([tparam], lr=0.01, **torch_kwargs)
    for step, g in enumerate(gradient_sequence(5)):
        lr = 0.01 * (1 + math.cos(step)) / 2 + 1e-3
        grads[...] = g
        opt.step(lr)
        topt.param_groups[0]["lr"] = lr
        tparam.grad = torch.from_numpy(g.copy())
        topt.step()
        np.testing.assert_allclose(params, tparam.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["step", "cosine"])
@pytest.mark.parametrize("warmup", [2, 5])
def test_warmup_then_schedule_is_torchs_sequential_lr(kind, warmup):
    """The torch schedulers docs/training.md names: LinearLR(1/W, W-1) then StepLR or
    CosineAnnealingLR(N-W), switched at step W."""
    torch = pytest.importorskip("torch", reason="torch not installed (the test extra)")
    total, lr = 23, 0.1
    ours = Schedule(kind, lr, total_steps=total, warmup=warmup, step_size=4, gamma=0.3,
                    min_lr=0.002)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = torch.optim.lr_scheduler
    after = (sched.StepLR(opt, step_size=4, gamma=0.3) if kind == "step" else
             sched.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=0.002))
    ref = sched.SequentialLR(opt, [sched.LinearLR(opt, start_factor=1 / warmup,
                                                  total_iters=warmup - 1), after],
                             milestones=[warmup])
    for step in range(total):
        assert ours(step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        ref.step()
