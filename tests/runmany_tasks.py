"""Tasks for tests/test_runmany.py, in a module of their own so that worker
processes can import them; run as a script, it is a sweep to interrupt:

    python tests/runmany_tasks.py FOLDER TASK N_CONFIGS WORKERS
"""
import json
import os
import sys
import time

import numpy as np

from mnist1d_np import fileio, runmany

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
    """config["steps"] steps of STEP_SECONDS, checkpointed after each and
    stopping there when asked. Returns how many steps this call ran."""
    _mark_started(context)
    loaded = fileio.load_checkpoint(context.checkpoint_path, identity=config)
    start = 0 if loaded is None else int(loaded[1]["step"])
    for step in range(start, config["steps"]):
        time.sleep(STEP_SECONDS)
        fileio.save_checkpoint(context.checkpoint_path, {}, {"step": step + 1}, identity=config)
        if context.should_stop():
            raise KeyboardInterrupt
    return {"x": config["x"], "steps_run_here": config["steps"] - start}


def stubborn(config, context):
    """Never looks at should_stop: sleeps for a minute."""
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
