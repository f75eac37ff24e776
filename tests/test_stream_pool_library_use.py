"""StreamPool as a library serves it: pools in several threads over one model each run in
eval mode whatever the others do; an ensemble given by keyword is an EnsemblePool; a
restore refuses integer states no pool holds (a negative count would give NaN); steps
between a model's forward and backward leave its gradients alone."""
import threading

import numpy as np
import pytest
from helpers import read_token_pool

import recurrent
from recurrent.ensemble import EnsembleModel
from recurrent.layers import Recurrent
from recurrent.model import SequenceModel
from recurrent.plugins import get_loss


def test_two_threads_pools_over_one_training_mode_layer_both_step_without_dropout():
    layer = Recurrent("lstm", 3, 6, num_layers=3, dropout=0.5, seed=0)  # as made: training
    x = np.random.default_rng(0).standard_normal((1, 3)).astype(np.float32)
    layer.eval()
    want, _ = layer.forward(x[None], need_grad=False)  # (1, 1, H)
    layer.train(True)
    first_in, second_in, first_done = threading.Event(), threading.Event(), threading.Event()
    run_step = layer.run_step

    def paced(*args, **kwargs):
        # the first step waits inside the layer until the second has begun, and the
        # second until the first has returned: their calls overlap without nesting
        if threading.current_thread().name == "first":
            first_in.set()
            second_in.wait(30)
        else:
            second_in.set()
            first_done.wait(30)
        return run_step(*args, **kwargs)

    layer.run_step = paced
    got = {}

    def serve(name, after):
        after.wait(30)
        pool = recurrent.StreamPool(layer, capacity=1)
        pool.open(0)
        got[name] = pool.step_arrays([0], x)
        if name == "first":
            first_done.set()

    started = threading.Event()
    threads = [threading.Thread(target=serve, args=("first", started), name="first"),
               threading.Thread(target=serve, args=("second", first_in), name="second")]
    for t in threads:
        t.start()
    started.set()
    for t in threads:
        t.join(60)
    assert layer.training
    for name in ("first", "second"):
        np.testing.assert_array_equal(got[name], want[0], err_msg=name)


def test_an_ensemble_given_by_keyword_is_an_ensemble_pool():
    spec = {"input": "tokens", "vocab_size": 7, "embed_dim": 3, "output": "sequence",
            "output_size": 7}
    ensemble = EnsembleModel([SequenceModel(spec, hidden_size=5, seed=k) for k in range(2)],
                             get_loss("cross_entropy"))
    by_keyword = recurrent.StreamPool(model_or_run=ensemble, capacity=2, softmax=True)
    by_position = recurrent.StreamPool(ensemble, 2, softmax=True)
    assert type(by_keyword) is type(by_position) is recurrent.streams.EnsemblePool
    for pool in (by_keyword, by_position):
        pool.open("a")
    np.testing.assert_array_equal(by_keyword.read("a", [1, 4, 2]),
                                  by_position.read("a", [1, 4, 2]))


@pytest.mark.parametrize("name, value, message", [
    ("count", -1, "count must hold integers >= 0"),
    ("count", 2.5, "count must hold integers >= 0"),
    ("previous", 9, "previous must hold integers in -1..8"),
    ("previous", -2, "previous must hold integers in -1..8"),
    ("seen", 256, "seen must hold integers in 0..255"),
])
def test_a_restore_refuses_integer_states_no_pool_holds(name, value, message):
    pool, before = read_token_pool(9, 4, 6, 8, capacity=2, ids=[3, 1, 4])
    bad = dict(before)
    bad[name] = np.full(before[name].shape, value)
    with pytest.raises(ValueError) as info:
        pool.restore("a", bad)
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    after = pool.state("a")
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert np.isfinite(pool.step({"a": 2})["a"]).all()


@pytest.mark.parametrize("output", ["sequence", "mean"])
def test_a_pool_step_between_a_models_forward_and_backward_leaves_its_gradients_alone(output):
    # The pool's stream reads as many tokens as the training batch holds, so that the
    # embedding's and head's inputs of the step have the shapes of the batch's own.
    spec = {"input": "tokens", "vocab_size": 9, "embed_dim": 3, "output": output,
            "output_size": 4}
    x = np.random.default_rng(0).integers(0, 9, (5, 1))  # (T, B): one sequence of 5

    def gradients(serve):
        model = SequenceModel(spec, hidden_size=6, seed=0)
        pool = recurrent.StreamPool(model, capacity=1)
        pool.open("a")
        y, _ = model.forward(x)
        if serve:
            pool.step({"a": 3})
            pool.read("a", [8, 7, 6, 5, 4])
        model.backward(np.ones_like(y))
        return model.grads.copy()

    np.testing.assert_array_equal(gradients(serve=True), gradients(serve=False))
