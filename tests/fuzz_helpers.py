"""Fuzzing helpers: mutations of the shipped examples and a CLI run in-process.

Mutations: delete, rename, retype and add keys and values; change the shapes of matrices;
insert layers; duplicate, delete and scramble lines; truncate the file. Each case runs the
CLI in-process (bpcalc.cli.run) on a file or standard input."""

from __future__ import annotations

import contextlib
import copy
import io
import sys
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from bpcalc import activations
from bpcalc.cli import run

# The shipped examples with their data inline (MNIST's needs a download), and two networks
# that read their data from files (written by the `workdir` fixture) to fuzz data references.
EXAMPLE_FILES = [
    p
    for p in sorted(Path(__file__).parents[1].glob("examples/*.yaml"))
    if "file:" not in p.read_text(encoding="utf-8")
]


KEYS = [
    "name", "input", "inputs", "target", "targets", "layers", "loss", "learning_rate",
    "optimizer", "lr", "type", "weights", "bias", "kernel", "stride", "padding", "size",
    "activation", "slope", "flip", "freeze", "layout", "bias_shared", "reduction",
    "learning-rate", "kernal", "weight", "Type",
]  # fmt: skip


WORDS = [
    *activations.kinds(), *activations.option_keys(),
    "dense", "conv2d", "maxpool2d", "avgpool2d", "flatten", "mse", "half_mse", "sse", "half_sse", "cross_entropy",
    "binary_cross_entropy", "sgd", "adam", "mean", "sum", "all", "out_in", "in_out", "dence",
    "", "1e-3", "0x10", "~", "yes", "2024-01-01",
]  # fmt: skip


numbers = st.one_of(
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False, width=32),
    st.sampled_from([0, 0.0, -0.0, 1e-300, 1e300, 1e308, -1e308, 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
)


scalars = st.one_of(numbers, st.none(), st.booleans(), st.sampled_from(WORDS), st.text(max_size=4))


matrices = st.one_of(
    st.lists(numbers, min_size=0, max_size=4),
    st.lists(st.lists(numbers, min_size=1, max_size=4), min_size=1, max_size=4),  # maybe ragged
    st.integers(1, 4).flatmap(  # rectangular: more likely to get past the parser
        lambda c: st.lists(
            st.lists(st.floats(-2, 2, width=32), min_size=c, max_size=c), min_size=1, max_size=4
        )
    ),
)


values = st.one_of(
    scalars,
    matrices,
    st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3),
    st.lists(st.lists(matrices, min_size=1, max_size=2), min_size=1, max_size=2),  # 4-D-ish
)


layers = st.one_of(
    st.builds(
        lambda k: {"type": k}, st.sampled_from(["flatten", "relu", "sigmoid", "tanh", "softmax"])
    ),
    st.builds(
        lambda w, a: {"type": "dense", "weights": w, **({"activation": a} if a else {})},
        matrices,
        st.sampled_from([None, "relu", "softmax", "sigmoid"]),
    ),
    st.builds(
        lambda k, s, p: {"type": "conv2d", "kernel": k, "stride": s, "padding": p},
        matrices,
        st.integers(0, 3),
        st.integers(-1, 2),
    ),
    st.builds(
        lambda t, z, s: {"type": t, "size": z, "stride": s},
        st.sampled_from(["maxpool2d", "avgpool2d"]),
        st.integers(0, 3),
        st.integers(1, 3),
    ),
)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside the document (not the root itself)."""
    out = []
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else ()
    )
    for k, v in items:
        out.append((*prefix, k))
        out.extend(_paths(v, (*prefix, k)))
    return out


def _get(data: Any, path: tuple) -> Any:
    for p in path:
        data = data[p]
    return data


@st.composite
def mutate_data(draw: st.DrawFn, data: Any) -> Any:
    paths = _paths(data)
    op = draw(st.sampled_from(["delete", "retype", "rename", "add", "shape", "layer"]))
    if op == "layer" and isinstance(data, dict) and isinstance(data.get("layers"), list):
        pos = draw(st.integers(0, len(data["layers"])))
        data["layers"].insert(pos, draw(layers))
        return data
    if not paths:
        return data
    path = draw(st.sampled_from(paths))
    parent, key = _get(data, path[:-1]), path[-1]
    if op == "delete":
        del parent[key]
    elif op == "retype":
        parent[key] = draw(values)
    elif op == "rename" and isinstance(parent, dict):
        new = draw(st.sampled_from(KEYS) | st.text(min_size=1, max_size=6))
        parent[new] = parent.pop(key)
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.sampled_from(KEYS))] = draw(values)
    elif op == "shape" and isinstance(parent[key], list):
        v = parent[key]
        how = draw(st.sampled_from(["append", "pop", "wrap", "unwrap", "transpose"]))
        if how == "append" and v:
            v.append(copy.deepcopy(v[-1]))
        elif how == "pop" and v:
            v.pop()
        elif how == "wrap":
            parent[key] = [v]
        elif how == "unwrap" and v:
            parent[key] = v[0]
        elif how == "transpose" and v and all(isinstance(r, list) for r in v):
            with contextlib.suppress(Exception):
                parent[key] = [list(c) for c in zip(*v, strict=True)]
    return data


@st.composite
def mutate_text(draw: st.DrawFn, text: str) -> str:
    lines = text.splitlines(keepends=True)
    op = draw(st.sampled_from(["duplicate", "delete", "truncate", "insert", "swap"]))
    if not lines:
        return text
    i = draw(st.integers(0, len(lines) - 1))
    if op == "duplicate":  # duplicate keys, repeated list items
        lines.insert(i, lines[i])
    elif op == "delete":
        del lines[i]
    elif op == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    elif op == "insert":
        j = draw(st.integers(0, len(lines[i])))
        ch = draw(st.sampled_from(list(":[]{}-,#&*!|>'\"\t\n ?%@`") + ["\x00", "é", "\ufeff"]))
        lines[i] = lines[i][:j] + ch + lines[i][j:]
    elif op == "swap" and len(lines) > 1:
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    return "".join(lines)


def run_cli(raw: bytes, args: list[str], workdir: Path | None = None) -> tuple[int, str, str]:
    """Run bpcalc in-process with `raw` as the network file ("{net}" in args) or stdin."""
    if workdir is not None and "{net}" in args:
        net = workdir / "net.yaml"
        net.write_bytes(raw)
        args = [str(net) if a == "{net}" else a for a in args]
    out, err = io.StringIO(), io.StringIO()
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(raw))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(args)
    finally:
        sys.stdin = stdin
    return code, out.getvalue(), err.getvalue()
