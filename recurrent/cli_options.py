"""Options that more than one command declares alike, declared once here."""
from __future__ import annotations

import click

from .checks import C_INT_MAX
from .threads import MAX_THREAD_OPTION

# eval and export: which of a run's checkpoints they read (recurrent/runs.py load_model)
checkpoint_option = click.option(
    "--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True,
    help="Best validation parameters, or the latest.")


# --threads of train, eval, tune and bench (each of its comma-separated counts): the most
# kernel threads a call uses. A count above the cores is honoured as an upper bound, as
# torch.set_num_threads and OMP_NUM_THREADS take one (the kernels use fewer for little
# work: recurrent/threads.py), with a note from train and bench (oversubscription_note),
# up to MAX_THREAD_OPTION.
THREAD_COUNT = click.IntRange(min=1, max=MAX_THREAD_OPTION)

# train --ranks: the processes mpiexec starts, whose -n reads a C int (a larger count would
# wrap around there and start some other number).
RANK_COUNT = click.IntRange(min=1, max=C_INT_MAX)
