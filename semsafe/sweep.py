"""`semsafe sweep`: objectives x harmful-set sizes x seeds, one run each, one after another."""

import time

from .config import apply_overrides, config_from_dict, load_config
from .errors import SemsafeError
from .runs import Run


def run_sweep(config_path, overrides, objectives, sizes, seeds) -> list[Run]:
    """Each run loads the model afresh: LoRA wraps a model in place, so models are not shared."""
    from .train import train_run

    base = load_config(config_path, overrides).to_dict()
    sweep_id = time.strftime("sweep-%Y%m%d-%H%M%S")
    runs = []
    for objective in objectives:
        for size in sizes:
            for seed in seeds:
                values = apply_overrides(base, [f"objective={objective}", f"data.n_harmful={size}",
                                                f"train.seed={seed}", f"sweep={sweep_id}"])
                cfg = config_from_dict(values)
                run = Run.create(values, name=f"{sweep_id}-{objective}-n{size}-s{seed}")
                try:
                    train_run(cfg, run)
                except SemsafeError:
                    pass  # recorded in the run's status; the sweep goes on
                runs.append(run)
    return runs
