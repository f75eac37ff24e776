"""recurrent-peephole: an example third-party plugin for recurrent.

Adds the cell "peephole_lstm" (compiled on recurrent's kernel toolkit; its numpy reference
is ReferencePeepholeLSTMCell), the loss "huber" and the command `recurrent peephole-trace`.
recurrent finds this module through the entry point declared in pyproject.toml and registers
it with its plugin manager; the three functions below are the hooks it calls.
"""
import click
import numpy as np

import recurrent

from .cell import ReferencePeepholeLSTMCell
from .compiled import PeepholeLSTMCell
from .loss import HuberLoss

__version__ = "0.2.0"
__all__ = ["PeepholeLSTMCell", "ReferencePeepholeLSTMCell", "HuberLoss"]


@recurrent.hookimpl
def register_cells(register):
    register(PeepholeLSTMCell())


@recurrent.hookimpl
def register_losses(register):
    register(HuberLoss())


@recurrent.hookimpl
def register_commands(cli):
    @cli.command("peephole-trace",
                 short_help="Print a peephole LSTM's gates after an input spike.")
    @click.option("--hidden", type=click.IntRange(1, 64), default=4, show_default=True,
                  help="Hidden units of the cell.")
    @click.option("--steps", type=click.IntRange(1, 1000), default=8, show_default=True,
                  help="Time steps to run.")
    @click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                  help="Seed of the random initialisation.")
    def peephole_trace(hidden, steps, seed):
        """Run a freshly initialised peephole LSTM on one input spike and print its gates.

        Shows how the input, forget and output gates of each step react to the cell
        state they peek at, averaged over the hidden units.
        """
        cell = PeepholeLSTMCell()
        shapes = cell.param_shapes(1, hidden)
        params = {kind: np.zeros(shape) for kind, shape in shapes.items()}
        cell.init_params(params, hidden, np.random.default_rng(seed))
        x = np.zeros((steps, 1, 1))  # (T, B=1, I=1): a spike at t = 0, then silence
        x[0] = 1.0
        h, c = np.zeros((1, hidden)), np.zeros((1, hidden))
        click.echo("step  input  mean(i)  mean(f)  mean(o)  mean(c)  mean(h)")
        for t in range(steps):
            a = x[t] @ params["weight_ih"].T + params["bias_ih"] + h @ params["weight_hh"].T \
                + params["bias_hh"]
            i, f, _, o, c = cell._gates(a, c, params)
            h = o * np.tanh(c)
            click.echo(f"{t:4d}  {x[t, 0, 0]:5.1f}  {i.mean():7.3f}  {f.mean():7.3f}  "
                       f"{o.mean():7.3f}  {c.mean():7.3f}  {h.mean():7.3f}")
