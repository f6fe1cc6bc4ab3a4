"""One loop of bench/loops.py trained over epochs in a process of its own, for the benchmark's
`bpcalc train` rows (bench/run.py starts it; threads come from its environment).

    python bench/epochs.py numpy|torch DIR EPOCHS

DIR holds data.npz (x: float32 (N, 784), y: class indices), as bench/run.py writes it for
`bpcalc train`. Prints a JSON list: the steps per second of each epoch, batch 64, a new
shuffled order every epoch and every batch copied out by fancy indexing, as `bpcalc train`
does. Elapsed time, as the command reports its own.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import loops
import nets
import numpy as np


def epochs(
    step: loops.Step, x: np.ndarray, cls: np.ndarray, count: int, batch: int = 64
) -> list[float]:
    """steps/s of each of `count` epochs of `step` over x and its classes."""
    y = np.zeros((x.shape[0], 10), dtype=np.float32)
    y[np.arange(x.shape[0]), cls] = 1.0
    n = x.shape[0]
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(count):
        t = time.perf_counter()
        order = rng.permutation(n)
        steps = 0
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            step(x[idx], y[idx], cls[idx])
            steps += 1
        rates.append(steps / (time.perf_counter() - t))
    return rates


def main() -> None:
    kind, folder, count = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    data = np.load(folder / "data.npz")
    net = nets.mlp()
    if kind == "torch":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
        step = loops.torch_mlp_step(net)
    else:
        step = loops.numpy_mlp_step(net)
    print(json.dumps(epochs(step, data["x"], data["y"], count)))


if __name__ == "__main__":
    main()
