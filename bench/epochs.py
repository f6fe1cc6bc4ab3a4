"""One loop of bench/loops.py trained over epochs in a process of its own, for the benchmark's
`bpcalc train` rows (bench/run.py starts it; threads come from its environment).

    python bench/epochs.py numpy|torch DIR EPOCHS
    python bench/epochs.py numpy|torch DIR EPOCHS --net cnn|mlp|digits-mlp|digits-cnn
        [--batch 64] [--clocks]

DIR holds data.npz (x: float32 (N, *input shape), y: class indices), as bench/run.py writes it
for `bpcalc train`. Prints a JSON list: the steps per second of each epoch (elapsed time), a
new shuffled order every epoch and every batch copied out by fancy indexing, as
`bpcalc train` does. --clocks prints {"wall": [...], "cpu": [...]} instead: the same epochs
by elapsed and by CPU time of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import loops
import nets
import numpy as np

NETS = {
    "mlp": lambda: nets.mlp(),
    "cnn": lambda: nets.cnn(),
    "digits-mlp": lambda: nets.mlp((64, 32, 10)),
    "digits-cnn": lambda: nets.cnn(side=8),
}


def epochs(
    step: loops.Step,
    x: np.ndarray,
    cls: np.ndarray,
    count: int,
    batch: int = 64,
    clock: Any = time.perf_counter,
) -> list[float]:
    """steps/s of each of `count` epochs of `step` over x and its classes."""
    return epochs_by_clock(step, x, cls, count, batch, {"t": clock})["t"]


def epochs_by_clock(
    step: loops.Step,
    x: np.ndarray,
    cls: np.ndarray,
    count: int,
    batch: int,
    clocks: dict[str, Any],
) -> dict[str, list[float]]:
    """steps/s of each epoch by each clock (name -> a function of no arguments, in seconds)."""
    y = np.zeros((x.shape[0], 10), dtype=np.float32)
    y[np.arange(x.shape[0]), cls] = 1.0
    n = x.shape[0]
    rng = np.random.default_rng(0)
    rates: dict[str, list[float]] = {k: [] for k in clocks}
    for _ in range(count):
        start = {k: c() for k, c in clocks.items()}
        order = rng.permutation(n)
        steps = 0
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            step(x[idx], y[idx], cls[idx])
            steps += 1
        for k, c in clocks.items():
            rates[k].append(steps / (c() - start[k]))
    return rates


def make_step(kind: str, net_name: str) -> loops.Step:
    net = NETS[net_name]()
    cnn = "cnn" in net_name
    if kind == "torch":
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
        return loops.torch_cnn_step(net) if cnn else loops.torch_mlp_step(net)
    return loops.numpy_cnn_step(net) if cnn else loops.numpy_mlp_step(net)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("numpy", "torch"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--net", choices=tuple(NETS), default="mlp")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--clocks", action="store_true")
    args = parser.parse_args()
    data = np.load(args.folder / "data.npz")
    step = make_step(args.kind, args.net)
    x, y = data["x"], data["y"]
    if args.clocks:
        clocks = {"wall": time.perf_counter, "cpu": time.process_time}
        print(json.dumps(epochs_by_clock(step, x, y, args.count, args.batch, clocks)))
    else:
        print(json.dumps(epochs(step, x, y, args.count, args.batch)))


if __name__ == "__main__":
    main()
