"""Which samples each step uses: the three gradient-descent variants.

  batch      every step uses the whole dataset (N samples): batch gradient descent
  sgd        every step uses one sample: stochastic gradient descent
  minibatch  every step uses `batch_size` samples: mini-batch gradient descent

Steps walk through the dataset in order (or in a shuffled order, drawn again at the start of
every epoch from np.random.default_rng(seed), never the global RNG; batch mode ignores
shuffle, since every step uses every sample) and wrap around at the
end of an epoch. When batch_size does not divide N the last batch of an epoch is smaller
(as PyTorch's DataLoader with drop_last=False). This module imports no spec types, so the
schema, the engine and the command line can all use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MODES = ("batch", "sgd", "minibatch")


def batch_size_for(mode: str, batch_size: int | None, n: int) -> int:
    """Samples per step: N for batch, 1 for sgd, batch_size for minibatch."""
    if mode == "batch":
        return n
    if mode == "sgd":
        return 1
    assert batch_size is not None
    return batch_size


def problem(n: int, mode: str, batch_size: int | None) -> tuple[str, str] | None:
    """What is wrong with this mode and batch size for N samples: (key to blame, message), or None."""
    if batch_size is not None and batch_size > n:
        return (
            "batch_size",
            f"batch_size {batch_size} is larger than the data, which has {n} sample"
            f"{'s' if n != 1 else ''}; use at most {n}",
        )
    if mode == "batch" and batch_size is not None and batch_size != n:
        return (
            "batch_size",
            f"batch_size {batch_size} does not go with mode: batch, where every step uses all "
            f"{n} samples; write mode: minibatch to use {batch_size} samples per step",
        )
    if mode == "sgd" and batch_size is not None and batch_size != 1:
        return (
            "batch_size",
            f"batch_size {batch_size} does not go with mode: sgd, where every step uses one "
            "sample; write mode: minibatch for several samples per step",
        )
    if mode == "minibatch" and batch_size is None:
        return ("mode", "mode: minibatch needs a batch_size (samples per step), e.g. batch_size: 2")
    return None


def schedule(
    n: int, mode: str, batch_size: int | None, shuffle: bool = False, seed: int = 0
) -> Iterator[np.ndarray]:
    """Endless stream of the dataset indices each step uses, epoch after epoch.

    >>> s = schedule(5, "minibatch", 2)
    >>> [next(s).tolist() for _ in range(4)]
    [[0, 1], [2, 3], [4], [0, 1]]
    """
    size = batch_size_for(mode, batch_size, n)
    # a step that uses every sample gains nothing from a shuffled order: keep it readable
    rng = np.random.default_rng(seed) if shuffle and size < n else None
    while True:
        order = rng.permutation(n) if rng is not None else np.arange(n)
        for start in range(0, n, size):
            yield order[start : start + size]


def describe(n: int, mode: str, batch_size: int | None, shuffle: bool, seed: int) -> str:
    """One line for the conventions block."""
    size = batch_size_for(mode, batch_size, n)
    steps = -(-n // size)
    what = {
        "batch": f"batch gradient descent: every step uses all {n} samples",
        "sgd": "stochastic gradient descent: every step uses one sample",
        "minibatch": f"mini-batch gradient descent: every step uses {size} samples",
    }[mode]
    if mode != "batch":
        what += f", {steps} steps per epoch"
        if n % size:
            what += f" (the last batch of each epoch has {n % size})"
    if size == n:
        return what
    order = (
        f"shuffled every epoch (np.random.default_rng({seed}).permutation)"
        if shuffle
        else "in order"
    )
    return f"{what}; samples taken {order}, wrapping around after each epoch"
