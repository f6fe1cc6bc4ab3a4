"""Write a network back as a bpcalc YAML with new parameter values (`bpcalc train --save`).

The user's YAML is kept as it was parsed (keys in their order, comments lost), with each
parametric layer's `units:`/`out_channels:`/`kernel_size:`/`init:` (an embedding's
`vocab:`/`dim:`) replaced by the values it
trained to. Data references (`{file: ...}`) are rewritten relative to the new file's folder so
the saved network reads the same data. Numbers are written with the fewest digits that give the
same number back in their dtype (float32 or float64), so reloading gives the same predictions.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bpcalc.network import datafiles as data_mod
from bpcalc.network.types import Conv2dSpec, DenseSpec, NetworkSpec
from bpcalc.network.yaml_source import Src

SHAPE_KEYS = ("units", "out_channels", "kernel_size", "init", "vocab", "dim")
_PLACEHOLDER = re.compile(r"^(?P<lead>\s*(?:- )?)(?P<key>\w+): __bpcalc_param_(?P<i>\d+)__$")


def network_yaml(
    spec: NetworkSpec,
    params: dict[str, dict[str, np.ndarray]],
    out_path: str,
    header: list[str] | None = None,
) -> str:
    """The YAML text of `spec` with `params` (engine layout) in place of its parameters."""
    assert spec.doc is not None  # parse_network always keeps the document
    root = copy.deepcopy(spec.doc.data)
    arrays: list[tuple[np.ndarray, tuple[int, ...]]] = []

    def hold(arr: np.ndarray, shown: tuple[int, ...]) -> str:
        arrays.append((arr, shown))
        return f"__bpcalc_param_{len(arrays) - 1}__"

    for layer, where, i in _placed(spec.layers, root["layers"]):
        if layer.name not in params:
            continue
        p = params[layer.name]
        if not isinstance(layer, (DenseSpec, Conv2dSpec)):
            # other layers with parameters (batchnorm: gamma, beta and its running
            # statistics) take them under the YAML keys of the same names, as 1-D lists
            where[i] = _with_values(where[i], {k: hold(v, v.shape) for k, v in p.items()})
            continue
        # a layer with bias: none keeps that key as written and gets no bias
        if isinstance(layer, DenseSpec):
            values = {"weights": hold(p["weights"], layer.weights_shown)}
            if "bias" in p:
                values["bias"] = hold(p["bias"], layer.bias_shown)
        else:
            kshape = p["kernel"].shape[2:] if layer.kernel_2d else p["kernel"].shape
            values = {"kernel": hold(p["kernel"], kshape)}
            if "bias" in p:
                values["bias"] = hold(p["bias"], () if layer.kernel_2d else p["bias"].shape)
        where[i] = _with_values(where[i], values)
    _rebase_files(Src(spec.doc, ()), root, (), Path(out_path).resolve().parent)

    text = yaml.dump(root, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    lines: list[str] = []
    for line in text.splitlines():
        m = _PLACEHOLDER.match(line)
        if m is None:
            lines.append(line)
            continue
        arr, shown = arrays[int(m.group("i"))]
        value = arr.reshape(shown) if shown else arr.reshape(())
        indent = " " * len(m.group("lead"))
        if value.ndim <= 1:
            lines.append(f"{m.group('lead')}{m.group('key')}: {_flow(value)}")
        else:
            lines.append(f"{m.group('lead')}{m.group('key')}:")
            lines.extend(_block(value, indent + "  "))
    head = [f"# {h}" if h else "#" for h in (header or [])]
    return "\n".join([*head, *lines]) + "\n"


def _placed(layers: Any, ydata: list[Any]) -> list[tuple[Any, list[Any], int]]:
    """(layer spec, the YAML list that holds it, its index there), inside blocks too (a
    block's layers are its `layers:` list)."""
    out = []
    for i, layer in enumerate(layers):
        out.append((layer, ydata, i))
        if layer.inner:
            out += _placed(layer.inner, ydata[i]["layers"])
    return out


def _with_values(ldata: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The layer's mapping with its parameters as values, where the shape keys (or the old
    values) stood, so the saved file reads in the order the user wrote it."""
    out: dict[str, Any] = {}
    for key, v in ldata.items():
        if key in SHAPE_KEYS or key in values:
            for k, val in values.items():
                if k not in out:
                    out[k] = val
            continue
        out[key] = v
    for k, val in values.items():
        out.setdefault(k, val)
    return out


class _Dumper(yaml.SafeDumper):
    """Mappings in block style (data references stay on one line); lists of numbers as rows."""


def _represent_list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flat = all(not isinstance(v, (list, dict)) for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat)


def _represent_dict(dumper: yaml.SafeDumper, value: dict) -> yaml.Node:
    flow = data_mod.is_reference(value) and not any(isinstance(v, dict) for v in value.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(dict, _represent_dict)


def _rebase_files(src: Src, node: Any, path: tuple, out_dir: Path) -> None:
    """Rewrite every `{file: ...}` under node (a copy of src's data) relative to out_dir."""
    if isinstance(node, dict):
        if (
            data_mod.is_reference(node)
            and isinstance(node["file"], str)
            and not Path(node["file"]).expanduser().is_absolute()
        ):
            target = data_mod.resolve(Src(src.doc, path)).resolve()
            node["file"] = _relative(target, out_dir)
            return
        for k, v in node.items():
            _rebase_files(src, v, (*path, k), out_dir)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, (dict, list)):
                _rebase_files(src, v, (*path, i), out_dir)


def _relative(target: Path, out_dir: Path) -> str:
    try:
        return Path(os.path.relpath(target, out_dir)).as_posix()
    except ValueError:  # another drive (Windows)
        return str(target)


def number(v: np.generic) -> str:
    """The shortest text that reads back as the same value of v's dtype; always a YAML number."""
    return np.format_float_positional(v, unique=True, trim="-")


def _flow(arr: np.ndarray) -> str:
    if arr.ndim == 0:
        return number(arr[()])
    return "[" + ", ".join(number(v) for v in arr) + "]"


def _block(arr: np.ndarray, indent: str) -> list[str]:
    """A block list: rows of numbers in flow style, outer dimensions as nested `-` items."""
    out: list[str] = []
    for sub in arr:
        if sub.ndim == 1:
            out.append(f"{indent}- {_flow(sub)}")
        else:
            out.append(f"{indent}-")
            out.extend(_block(sub, indent + "  "))
    return out
