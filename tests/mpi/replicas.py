"""Run under mpiexec: train TASK with the library API on every rank, then save this rank's
parameters to OUT/rank-R.npy, and with --average its average to OUT/rank-R-average.npy
(tests/test_distributed.py checks the replicas are bitwise equal). Usage: replicas.py OUT TASK [--option value ...] (options as config keys)."""
import sys

import numpy as np

from recurrent import distributed, plugins
from recurrent.config import TrainingConfig
from recurrent.runs import parallel_trainer, start_run


def main(out, task_name, *pairs):
    options = {pairs[i].lstrip("-").replace("-", "_"): pairs[i + 1]
               for i in range(0, len(pairs), 2)}
    options = {k: (int(v) if v.isdigit() else v) for k, v in options.items()}
    world = distributed.world()
    task = plugins.get_task(task_name)
    config = TrainingConfig.resolve(task, {**options, "quiet": True, "plot": False})
    config["loss"] = task.loss
    trainer = parallel_trainer(task, world, lambda: start_run(
        task, config, f"{out}/run", lambda line: None, world))
    trainer.fit()
    np.save(f"{out}/rank-{world.rank}.npy", trainer.model.params)
    if trainer.average is not None:
        np.save(f"{out}/rank-{world.rank}-average.npy", trainer.average.values)


if __name__ == "__main__":
    main(*sys.argv[1:])
