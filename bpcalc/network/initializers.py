"""Parameters by shape and initializer: `units: 128` / `out_channels: 8` with `init:`.

  init: {type: normal, std: 0.01, seed: 1}   W ~ N(0, std²)                    (std 0.01 if not given)
  init: {type: uniform, limit: 0.1}          W ~ U(−limit, limit)              (limit 1/√fan_in if not given:
                                                                                PyTorch's default for Linear/Conv2d)
  init: xavier          (Glorot uniform)     W ~ U(−a, a), a = √(6 / (fan_in + fan_out))
  init: xavier_normal                        W ~ N(0, 2 / (fan_in + fan_out))
  init: he              (Kaiming normal)     W ~ N(0, 2 / fan_in)               (for ReLU)
  init: he_uniform                           W ~ U(−a, a), a = √(6 / fan_in)
fan_in = inputs of a neuron (dense: in; conv2d: C·kh·kw), fan_out = dense: out; conv2d: O·kh·kw,
as PyTorch's torch.nn.init. Without `init:` the type is `uniform` (PyTorch's default).
Numbers come from numpy.random.default_rng(seed); without a seed, layer i (its 0-based
position in `layers`) uses seed i, so every run of the same file starts from the same numbers.
Biases are zero unless `bias:` gives them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bpcalc import budget
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

INIT_TYPES = ("normal", "uniform", "xavier", "xavier_normal", "he", "he_uniform")
INIT_KEYS = ("type", "std", "limit", "seed")
MAX_LIMIT = float(np.finfo(np.float64).max) / 2  # U(−a, a) draws a + (2a)·u: 2a must be finite


@dataclass(frozen=True)
class InitSpec:
    type: str = "uniform"
    std: float | None = None
    limit: float | None = None
    seed: int = 0


def parse_init(lsrc: Src) -> InitSpec:
    """The layer's `init:` (a type name, or a mapping); defaults as in the module docstring."""
    default_seed = int(lsrc.path[-1]) if lsrc.path and isinstance(lsrc.path[-1], int) else 0
    if "init" not in lsrc.value:
        return InitSpec(seed=default_seed)
    src = lsrc.child("init")
    if isinstance(src.value, str):
        return InitSpec(V.choice(src, "init", INIT_TYPES), seed=default_seed)
    V.check_keys(src, INIT_KEYS, ("type",), "init")
    v = src.value
    kind = V.choice(src.child("type"), "init type", INIT_TYPES)
    if "std" in v and kind != "normal":
        raise src.child("std").error(
            f"std: applies to type: normal; {kind} takes its scale from the layer's size",
            at_key=True,
        )
    if "limit" in v and kind != "uniform":
        raise src.child("limit").error("limit: applies to type: uniform", at_key=True)
    std = V.positive_number(src.child("std"), "std") if "std" in v else None
    limit = V.positive_number(src.child("limit"), "limit") if "limit" in v else None
    if limit is not None and limit > MAX_LIMIT:
        raise src.child("limit").error(
            f"limit {limit:g} is too large: U(−limit, limit) spans 2·limit, which float64 "
            f"cannot hold beyond {np.finfo(np.float64).max:.4g}; use at most {MAX_LIMIT:.4g}"
        )
    seed = default_seed
    if "seed" in v:
        seed = int(V.number(src.child("seed"), "seed", integer=True))
        if seed < 0:
            raise src.child("seed").error(f"seed should be 0 or more, found {seed}")
    return InitSpec(kind, std, limit, seed)


def sample(init: InitSpec, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    """Draw a float64 array of `shape` as `init` says."""
    rng = np.random.default_rng(init.seed)
    kind = init.type
    if kind == "normal":
        return rng.normal(0.0, init.std if init.std is not None else 0.01, size=shape)
    if kind == "xavier_normal":
        return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape)
    if kind == "he":
        return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
    if kind == "uniform":
        a = init.limit if init.limit is not None else 1.0 / math.sqrt(fan_in)
    elif kind == "xavier":
        a = math.sqrt(6.0 / (fan_in + fan_out))
    elif kind == "he_uniform":
        a = math.sqrt(6.0 / fan_in)
    else:  # pragma: no cover - parse_init only lets INIT_TYPES through
        raise AssertionError(kind)
    return rng.uniform(-a, a, size=shape)


def dense_weights(lsrc: Src, name: str, n_in: int, layout: str) -> np.ndarray:
    """`units: n` -> W of (n, in) for layout out_in, (in, n) for in_out."""
    n_out = V.positive_int(lsrc.child("units"), f"units of dense layer {name!r}")
    shape = (n_out, n_in) if layout == "out_in" else (n_in, n_out)
    budget.check_param(lsrc.child("units"), shape, f"the weights of dense layer {name!r}")
    return sample(parse_init(lsrc), shape, n_in, n_out)


def conv_kernel(lsrc: Src, name: str, c_in: int) -> np.ndarray:
    """`out_channels: O`, `kernel_size: k | [kh, kw]` -> K of (O, C, kh, kw)."""
    for key in ("out_channels", "kernel_size"):
        if key not in lsrc.value:
            raise lsrc.error(
                f"conv2d layer {name!r} has no kernel: values, so it needs out_channels: and "
                f"kernel_size: (and optionally init:); {key} is missing"
            )
    o = V.positive_int(lsrc.child("out_channels"), "out_channels")
    kh, kw = V.pair(lsrc.child("kernel_size"), "kernel_size", minimum=1)
    where = lsrc.child("out_channels" if o * c_in >= kh * kw else "kernel_size")
    budget.check_param(where, (o, c_in, kh, kw), f"the kernel of conv2d layer {name!r}")
    return sample(parse_init(lsrc), (o, c_in, kh, kw), c_in * kh * kw, o * kh * kw)


def check_exclusive(lsrc: Src, name: str, values_key: str, shape_keys: tuple[str, ...]) -> None:
    """Values or shape + init, never both; init only with a shape."""
    v = lsrc.value
    given = [k for k in shape_keys if k in v]
    if values_key in v and given:
        raise lsrc.child(given[0]).error(
            f"layer {name!r} gives both {values_key}: (values) and {given[0]}: (a shape to "
            f"initialise); keep one",
            at_key=True,
        )
    if "init" in v and values_key in v:
        raise lsrc.child("init").error(
            f"init: draws the {values_key} of layer {name!r}, which are given as values; "
            f"remove init: or replace {values_key}: by {' and '.join(shape_keys)}:",
            at_key=True,
        )
