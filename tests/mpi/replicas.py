"""Run under mpiexec: train TASK with the library API on every rank, then save this rank's
parameters (the model's, then the task's) to OUT/rank-R.npy, and with --average the
average to OUT/rank-R-average.npy (tests/test_distributed.py checks the replicas are bitwise
equal). Usage: replicas.py OUT TASK [--option value ...] (options as config keys)."""
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
    params = [trainer.model.params]
    if trainer.task_params is not None:  # the task's trained parameters too
        params.append(trainer.task_params.params)
    np.save(f"{out}/rank-{world.rank}.npy", np.concatenate(params))
    if trainer.average is not None:
        np.save(f"{out}/rank-{world.rank}-average.npy", trainer.average.values)


if __name__ == "__main__":
    main(*sys.argv[1:])
