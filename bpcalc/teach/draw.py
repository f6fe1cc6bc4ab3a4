"""Draw the values of one variant: numbers on a grid (k·10⁻ᵈ in a range) written into a copy
of the network file's data, so that what is checked is exactly what the file will say.

Only what the network gives by shape is drawn (a dense layer's `units:`, a conv2d layer's
`out_channels:`/`kernel_size:`; its bias when the layer writes none); the inputs and
targets unless the exercise keeps them (`given`). Targets fit the loss: a class index for
cross-entropy, 0 or 1 per output for binary cross-entropy, numbers on the targets' grid
otherwise.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import yaml

from bpcalc.network.types import Conv2dSpec, DenseSpec, NetworkSpec
from bpcalc.teach.section import Exercise, Grid

SHAPE_KEYS = ("units", "out_channels", "kernel_size", "init")
BOUNDED = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softsign": (-1.0, 1.0)}


def numbers(grid: Grid, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """An array of `shape` of numbers on the grid, each equally likely."""
    step = 10**grid.decimals
    first = math.ceil(grid.low * step - 1e-9)
    last = math.floor(grid.high * step + 1e-9)
    ks = np.arange(first, last + 1)
    if not grid.zero:
        ks = ks[ks != 0]
    return rng.choice(ks, size=shape) / step if shape else np.asarray(rng.choice(ks) / step)


def plain(arr: np.ndarray, decimals: int) -> Any:
    """Nested lists of Python numbers as a person writes them: ints for whole numbers,
    floats rounded to the grid's decimals (so YAML writes 0.3, not 0.30000000000000004)."""
    if arr.ndim == 0:
        v = float(arr)
        return int(round(v)) if decimals == 0 else round(v, decimals)
    return [plain(a, decimals) for a in arr]


def target_grid(spec: NetworkSpec, ex: Exercise) -> Grid:
    """The grid of regression targets: the exercise's, else one decimal within the output's
    range (sigmoid: [0, 1]), else whole numbers from −3 to 3."""
    if ex.targets is not None:
        return ex.targets
    bounds = BOUNDED.get(spec.output_activation)
    if bounds is not None:
        return Grid(1, bounds[0], bounds[1], True)
    return Grid(0, -3.0, 3.0, True)


def draw_data(
    data: dict[str, Any], template: NetworkSpec, ex: Exercise, rng: np.random.Generator
) -> dict[str, Any]:
    """A copy of the network's data with every drawn value written in; the exercise section
    left out. `template` is the network parsed from `data` (for the shapes)."""
    out = copy.deepcopy({k: v for k, v in data.items() if k != "exercise"})
    for i, layer in enumerate(template.layers):
        ldata = out["layers"][i]
        if isinstance(layer, DenseSpec) and "units" in ldata:
            g = ex.grid(layer.name, "weights")
            w = numbers(g, layer.weights.shape, rng)
            values = {"weights": plain(w, g.decimals)}
            if "bias" not in ldata:
                b = ex.grid(layer.name, "biases")
                shape = () if layer.bias_shared else layer.bias.shape
                values["bias"] = plain(numbers(b, shape, rng), b.decimals)
            out["layers"][i] = _replace_shape_keys(ldata, values)
        elif isinstance(layer, Conv2dSpec) and "out_channels" in ldata:
            g = ex.grid(layer.name, "weights")
            k = numbers(g, layer.kernel.shape, rng)
            one = k.shape[0] == 1 and k.shape[1] == 1  # one kernel, one channel: a 2-D grid
            values = {"kernel": plain(k[0, 0] if one else k, g.decimals)}
            if "bias" not in ldata:
                b = ex.grid(layer.name, "biases")
                bias = numbers(b, layer.bias.shape, rng)
                values["bias"] = plain(bias[0] if one else bias, b.decimals)
            out["layers"][i] = _replace_shape_keys(ldata, values)
    key_in = "inputs" if template.batched else "input"
    if not ex.inputs.given:
        shape = np.shape(data[key_in]) if isinstance(data[key_in], list) else ()
        if isinstance(data[key_in], dict):  # a data file: draw in the shape it gave
            shape = template.inputs.shape if template.batched else template.inputs.shape[1:]
            if template.input_squeezed:
                shape = (*shape[:-3], *shape[-2:])
        out[key_in] = plain(numbers(ex.inputs, tuple(shape), rng), ex.inputs.decimals)
    key_t = "targets" if template.batched else "target"
    if ex.targets is None or not ex.targets.given:
        out[key_t] = _targets(template, ex, rng)
    return out


def _replace_shape_keys(ldata: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The layer's mapping with the values where its shape keys stood (the file's order)."""
    out: dict[str, Any] = {}
    for key, v in ldata.items():
        if key in SHAPE_KEYS:
            for k, val in values.items():
                out.setdefault(k, val)
            continue
        out[key] = v
    for k, val in values.items():
        out.setdefault(k, val)
    return out


def _targets(spec: NetworkSpec, ex: Exercise, rng: np.random.Generator) -> Any:
    n = spec.inputs.shape[0]
    last = spec.layers[-1]
    shown = last.out_shape[1:] if last.squeezed_out else last.out_shape
    k = int(np.prod(shown))
    kind = spec.loss.kind
    if kind == "cross_entropy":
        classes = [int(c) for c in rng.integers(0, k, size=n)]
        return classes if spec.batched else classes[0]
    if kind == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(n, *shown))
    else:
        g = target_grid(spec, ex)
        y = numbers(g, (n, *shown), rng)
        return _one_or_all(plain(y, g.decimals), spec.batched, k)
    return _one_or_all(plain(y.astype(float), 0), spec.batched, k)


def _one_or_all(rows: list[Any], batched: bool, k: int) -> Any:
    """A single sample's target as one number when the output has one element."""
    if batched:
        return [r[0] if k == 1 and isinstance(r, list) and len(r) == 1 else r for r in rows]
    row = rows[0]
    return row[0] if k == 1 and isinstance(row, list) and len(row) == 1 else row


class _Dumper(yaml.SafeDumper):
    """Mappings in block style; a list of numbers on one line, nested lists one row a line."""


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flat = all(not isinstance(v, (list, dict)) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


_Dumper.add_representer(list, _represent_list)


def dump(data: dict[str, Any], header: list[str]) -> str:
    """The network as YAML text, with `header` as comment lines above it."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "".join(f"# {h}\n" if h else "#\n" for h in header) + text
