"""Tasks for tests/test_runmany.py, in a module of their own so that worker
processes can import them; run as a script, it is a sweep to interrupt:

    python tests/runmany_tasks.py FOLDER TASK N_CONFIGS WORKERS
"""
import dataclasses
import json
import os
import sys
import time

import numpy as np

from mnist1d_np import resumable, runmany

STEP_SECONDS = 0.05


def noisy_square(config, context):
    """A pure task: a few float32 numbers drawn from the config's seed."""
    values = np.random.default_rng(config["seed"]).normal(size=(3, 3)).astype(np.float32)
    return {"square": config["x"] ** 2, "values": values @ values, "pair": (1, 2.5)}


def failing(config, context):
    if config["x"] == 1:
        raise RuntimeError("run 1 failed")
    return {"x": config["x"]}


def counted_steps(config, context):
    """config["steps"] steps of STEP_SECONDS, a resumable loop checkpointed after
    each (and so stopping there when asked). Returns how many steps this call ran."""
    _mark_started(context)
    loop = resumable.Resumable(context.checkpoint_path, config, {}, config["steps"])
    for _ in loop:
        time.sleep(STEP_SECONDS)
        loop.checkpoint()
    return {"x": config["x"], "steps_run_here": config["steps"] - loop.start}


@dataclasses.dataclass(frozen=True)
class Point:
    """A config dataclass: the task gets it back as itself, its lists as tuples."""
    x: int
    shape: tuple = (2, 3)
    extra: dict = dataclasses.field(default_factory=lambda: {"a": [1, 2]})


def describe(config, context):
    return {"type": type(config).__name__, "shape_type": type(config.shape).__name__,
            "extra_a_type": type(config.extra["a"]).__name__, "product": config.x * int(np.prod(config.shape))}


def stubborn(config, context):
    """Never reaches a checkpoint (so never sees a stop request): sleeps for a minute."""
    _mark_started(context)
    time.sleep(60)
    return {"x": config["x"]}


def _mark_started(context):
    """Leave a file started-<pid>-<run> next to the checkpoint: who ran what."""
    folder, name = os.path.split(context.checkpoint_path)
    with open(os.path.join(folder, f"started-{os.getpid()}-{name.split('.')[0]}"), "w"):
        pass


def main(folder, task_name, n_configs, workers, steps=20):
    configs = [{"x": x, "seed": x, "steps": steps} for x in range(n_configs)]
    results = runmany.run_many(globals()[task_name], configs, folder, workers=workers)
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))


def trains(config, context):
    """A few steps of the paper's loop, checkpointed under an identity-named file."""
    import numpy as np
    from mnist1d_np import data, nn, train
    dataset = data.make_dataset(data.get_dataset_args(num_samples=300))
    model = nn.make_model("logistic", np.random.default_rng(config["seed"]))
    result = train.train(model, dataset, train.TrainConfig(steps=5, eval_every=2), context.checkpoint_path)
    return {"final_test_acc": result["final_test_acc"]}
