"""Data-parallel training over the ranks of a World (recurrent/distributed.py).

Every rank draws the same global batch (the same seeded generator) and keeps its own
consecutive share of the rows (distributed.row_share), so the batches a run samples do
not depend on the rank count. Each rank's loss is the mean over ITS valid items (tokens
of per-step outputs, rows of pooled ones); the global loss is the mean over all of them,
so each rank scales its gradients by its share of the items, and one in-place allreduce
of the flat gradient buffer sums them: every rank then holds the gradient of the global
batch, bitwise the same on every rank, and clipping, the optimizer and the schedule run
identically, so the replicas never drift. The step's loss and the ranks' stop flags
(Ctrl-C, SIGTERM) travel in a second, three-number allreduce, so every rank agrees on the
loss it logs and on stopping (the flags also once after the setup, so that a Ctrl-C or
SIGTERM during it stops every rank before the first step).

Recurrent state carried between batches (char-lm streams, TBPTT windows) stays on the
rank that owns the rows; checkpoints hold the state of all rows (gathered on rank 0), so
a run resumes at any rank count.

Evaluation is sharded the same way: ShardedRunner runs this rank's rows of each call and
gathers every rank's outputs, so the task's evaluate() computes its metrics unchanged on
every rank.
"""
from __future__ import annotations

import numpy as np

from .distributed import row_share
from .interrupt import STOP_SIGNALS
from .runner import Runner
from .state import pack_state, state_arrays

BATCH_AXIS = 1  # of x (T, B[, I]), per-step targets (T, B[, K]) and states (L*D, B, H)


def valid_items(x, lengths, sequence_output: bool) -> int:
    """What a loss averages over: valid steps of per-step outputs, rows of pooled ones."""
    T, B = np.shape(x)[:2]
    if not sequence_output:
        return int(B)
    return int(T * B if lengths is None else np.asarray(lengths).sum())


def _flags(signum) -> list[float]:
    """One flag per stop signal (interrupt.STOP_SIGNALS): which one this rank's request
    came with, if any."""
    return [float(signum == s) for s in STOP_SIGNALS]


class DataParallel:
    """The data-parallel side of one Trainer: sharding, the gradient reduction and the
    carried state's gathering."""

    def __init__(self, world, sequence_output: bool):
        self.world = world
        self.sequence_output = sequence_output
        self.stop = False  # the ranks' agreed stop request, as of the last agreement
        self.stop_signal = None  # ... and the signal it is reported as (SIGINT, SIGTERM)

    def rows(self, batch_rows: int) -> slice:
        return row_share(batch_rows, self.world.rank, self.world.size)

    def shard(self, x, y, lengths):
        """This rank's rows of a window and the fraction of the window's items they hold."""
        rows = self.rows(np.shape(x)[BATCH_AXIS])
        total = valid_items(x, lengths, self.sequence_output)
        x = np.ascontiguousarray(np.asarray(x)[:, rows])
        y = np.ascontiguousarray(np.asarray(y)[:, rows] if self.sequence_output
                                 else np.asarray(y)[rows])
        lengths = None if lengths is None else np.ascontiguousarray(lengths[rows])
        share = valid_items(x, lengths, self.sequence_output) / total if total else 0.0
        return x, y, lengths, share

    def reducer(self, share: float, interrupted):
        """The reduce(buffers, loss) -> global loss that train_step calls after backward:
        every gradient buffer in the list is scaled by this rank's share and summed."""
        def reduce(buffers, loss):
            for grads in buffers:  # the model's and the task's (recurrent/task_params.py)
                if share != 1.0:
                    grads *= grads.dtype.type(share)
                self.world.allreduce(grads)
            totals = np.array([loss * share, *_flags(interrupted())])
            self.world.allreduce(totals)
            self._agreed(totals[1:])
            return float(totals[0])
        return reduce

    def agree_to_stop(self, interrupted) -> bool:
        """The ranks' stop requests (the signal that requested one, or None), agreed (any
        rank's counts) outside a step: after the setup, so a Ctrl-C or SIGTERM during it
        stops every rank before the first step."""
        flags = np.array(_flags(interrupted))
        self.world.allreduce(flags)
        self._agreed(flags)
        return self.stop

    def _agreed(self, flags):
        """The stop and its signal from the summed flags: SIGTERM when any rank's request
        was one (the job was asked to end: its exit status says so), else SIGINT."""
        requested = [signum for signum, count in zip(STOP_SIGNALS, flags) if count]
        self.stop_signal = requested[-1] if requested else None
        self.stop = self.stop_signal is not None

    def local_state(self, state, batch_rows: int):
        """This rank's rows of a state of a whole batch (None stays None)."""
        if state is None:
            return None
        rows = self.rows(batch_rows)
        return pack_state([np.ascontiguousarray(a[:, rows]) for a in state_arrays(state)])

    def global_state(self, state):
        """Every rank's rows of a carried state, in rank order, on rank 0 (None elsewhere,
        and None when no rank carries one)."""
        parts = self.world.gather(state_arrays(state) if state is not None else None)
        if parts is None or all(p is None for p in parts):
            return None
        parts = [p for p in parts if p is not None and p[0].shape[BATCH_AXIS]]
        return pack_state([np.concatenate(arrays, axis=BATCH_AXIS) for arrays in zip(*parts)])

    def runner(self, model):
        return ShardedRunner(model, self)


class ShardedRunner(Runner):
    """The Runner tasks evaluate with: each forward call runs this rank's rows and returns
    every rank's outputs and states, in row order."""

    def __init__(self, model, parallel: DataParallel):
        super().__init__(model)
        self.parallel = parallel

    def forward(self, x, lengths=None, state=None):
        x = np.asarray(x)
        B = x.shape[BATCH_AXIS]
        if B == 0:  # nothing to share: every rank runs the empty batch as one process does
            return super().forward(x, lengths=lengths, state=state)
        rows = self.parallel.rows(B)
        local_lengths = None if lengths is None else np.asarray(lengths)[rows]
        local_state = self.parallel.local_state(state, B)
        if rows.stop > rows.start:
            out, final = super().forward(np.ascontiguousarray(x[:, rows]),
                                         lengths=local_lengths, state=local_state)
            finals = state_arrays(final)
        else:
            out, finals = None, None
        gathered = self.parallel.world.allgather((out, finals))
        out_axis = BATCH_AXIS if self.model.output == "sequence" else 0
        outs = [o for o, _ in gathered if o is not None]
        states = [s for _, s in gathered if s is not None]
        return (np.concatenate(outs, axis=out_axis),
                pack_state([np.concatenate(a, axis=BATCH_AXIS) for a in zip(*states)]))
