"""Fuzz the CLI with mutated copies of the shipped examples: whatever the YAML, bpcalc exits
0 or 2, never with a traceback, every error names a place in the file, and JSON is strict.

Mutations: delete, rename, retype and add keys and values; change the shapes of matrices;
insert layers; duplicate, delete and scramble lines; truncate the file. Each case runs the
CLI in-process (bpcalc.cli.run) on a file or standard input. An internal error (exit 70) is
a failure. Also: bpcalc train on the same networks, and bpcalc check with mutated answer sheets.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bpcalc.cli import run

# The shipped examples with their data inline (MNIST's needs a download), and two networks
# that read their data from files (written by the `workdir` fixture) to fuzz data references.
EXAMPLE_FILES = [
    p
    for p in sorted(Path(__file__).parents[1].glob("examples/*.yaml"))
    if "file:" not in p.read_text(encoding="utf-8")
]
DATA_NETS = [
    """\
name: data references
inputs: {file: data.npz, key: x, scale: 4, flatten: true, limit: 5}
targets: {file: data.npz, key: y, one_hot: 3, limit: 5}
layers:
  - name: fc
    type: dense
    weights: [[0.1, 0.2, 0.3, 0.4], [0.0, -0.1, 0.2, 0.1], [0.3, 0.1, -0.2, 0.0]]
    activation: softmax
loss: cross_entropy
learning_rate: 0.5
""",
    """\
name: csv references
inputs: {file: data.csv, columns: [0, 1, 2, 3], normalize: {mean: 2, std: 1.5}}
targets: {file: data.csv, columns: [4], scale: 4}
layers:
  - name: fc
    type: dense
    weights: [[0.1, 0.2, 0.3, 0.4]]
    activation: sigmoid
loss: mse
learning_rate: 0.5
""",
]
EXAMPLES = [p.read_text(encoding="utf-8") for p in EXAMPLE_FILES] + DATA_NETS


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the fuzzed network file, with the data files DATA_NETS read."""
    import numpy as np

    d = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", x=rng.integers(0, 5, (6, 2, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    rows = rng.integers(0, 5, (6, 5))
    (d / "data.csv").write_text("a,b,c,d,t\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return d


KEYS = [
    "name", "input", "inputs", "target", "targets", "layers", "loss", "learning_rate",
    "optimizer", "lr", "type", "weights", "bias", "kernel", "stride", "padding", "size",
    "activation", "slope", "flip", "freeze", "layout", "bias_shared", "reduction",
    "learning-rate", "kernal", "weight", "Type",
]  # fmt: skip
WORDS = [
    "dense", "conv2d", "maxpool2d", "avgpool2d", "flatten", "relu", "leaky_relu", "sigmoid",
    "tanh", "softmax", "identity", "mse", "half_mse", "sse", "half_sse", "cross_entropy",
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


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    text = draw(st.sampled_from(EXAMPLES))
    structural = draw(st.booleans())
    if structural:  # mutations of the data, written back as YAML
        data = yaml.safe_load(text)
        for _ in range(draw(st.integers(1, 3))):
            data = draw(mutate_data(data))
        text = yaml.safe_dump(data, default_flow_style=draw(st.sampled_from([None, True, False])))
    for _ in range(draw(st.integers(0 if structural else 1, 2))):  # mutations of the text
        text = draw(mutate_text(text))
    # the file: a network file in `workdir`, or standard input (1 case in 4) like a file
    net = "-" if draw(st.integers(0, 3)) == 0 else "{net}"
    if draw(st.integers(0, 4)) == 0:  # 1 case in 5 trains instead
        args = ["train", net, "--epochs", str(draw(st.integers(1, 3)))]
        if draw(st.booleans()):
            args.append("--json")
        if draw(st.booleans()):
            args += ["--batch-size", str(draw(st.integers(1, 5)))]
        if draw(st.booleans()):
            args += ["--dtype", draw(st.sampled_from(["float32", "float64"]))]
        if draw(st.integers(0, 3)) == 0:
            args += ["--lr", str(draw(st.sampled_from([1e-3, 0.5, 10.0, 1e30])))]
        return text.encode("utf-8", errors="surrogatepass"), args
    args = ["step", net]
    # tables and write-ups take 5 times as long as JSON: 4 cases in 10
    fmt = draw(st.sampled_from(["json"] * 6 + ["table", "table", "markdown", "latex"]))
    args += ["--json"] if fmt == "json" else ["--format", fmt]
    if draw(st.integers(0, 7)) == 0:
        args += ["--explain", draw(st.sampled_from(["all", "none", "grad.*", "loss", "*.z[0]"]))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--steps", str(draw(st.integers(2, 4)))]
    if draw(st.integers(0, 3)) == 0:
        args += ["--round-each", str(draw(st.integers(0, 6)))]
    if draw(st.integers(0, 5)) == 0:
        args += ["--mode", draw(st.sampled_from(["batch", "sgd", "minibatch"]))]
    if draw(st.integers(0, 5)) == 0:
        args += ["--batch-size", str(draw(st.integers(1, 5)))]
    if draw(st.integers(0, 7)) == 0:
        args.append("--summary")
    return text.encode("utf-8", errors="surrogatepass"), args


# an input error names its place; an option that does not fit (the data) names the option
LOCATED = re.compile(r"bpcalc: error: ((<stdin>|\S+\.yaml):\d+:\d+: \S|--[a-z-]+\b)")


def _strict_json(text: str) -> Any:
    def reject(name: str) -> None:
        raise ValueError(f"JSON output contains {name}")

    return json.loads(text, parse_constant=reject)


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


@pytest.mark.slow
@settings(
    # 2,000 in CI; BPCALC_FUZZ_EXAMPLES=20000 for a longer hunt
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cases())
def test_mutated_examples_exit_0_or_2_with_a_located_message_and_no_traceback(
    workdir: Path, case: tuple[bytes, list[str]]
) -> None:
    raw, args = case
    code, out, err = run_cli(raw, args, workdir)
    event(f"exit {code}")  # shown by pytest --hypothesis-show-statistics
    assert code in (0, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    if args[0] == "train" and "--json" in args:  # one JSON line per epoch, even before an error
        for line in out.splitlines():
            _strict_json(line)
    if code == 2:
        assert out == "" or args[0] == "train"  # train has shown the epochs before the error
        *warnings, error = err.strip().splitlines()  # warnings may come before the error
        assert LOCATED.match(error), err
        assert all(line.startswith("bpcalc: warning: ") for line in warnings), err
    else:
        assert all(line.startswith("bpcalc: warning: ") for line in err.splitlines()), err
        if "--json" in args and args[0] == "step":
            _strict_json(out)


def _correct_answers(example: Path) -> dict[str, Any]:
    code, out, err = run_cli(b"", ["step", str(example), "--json"])
    assert code == 0, err
    return _strict_json(out)["steps"][0]["values"]


_ANSWERS: dict[Path, dict[str, Any]] = {}


@st.composite
def answer_sheets(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    example = draw(st.sampled_from(EXAMPLE_FILES))
    if example not in _ANSWERS:
        _ANSWERS[example] = _correct_answers(example)
    sheet = copy.deepcopy(_ANSWERS[example])
    names = sorted(sheet)
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["data", "perturb", "element", "drop"]))
        if how == "data":
            sheet = draw(mutate_data(sheet))
        elif how == "perturb" and names:  # a wrong answer: the checker should say so (exit 1)
            name = draw(st.sampled_from(names))
            if isinstance(sheet.get(name), (int, float)) and not isinstance(sheet[name], bool):
                sheet[name] = sheet[name] * draw(st.sampled_from([-1, 0, 0.5, 2, 10])) + 1
        elif how == "element" and names:  # one element on its own line, maybe out of range
            name = draw(st.sampled_from(names + ["nosuch.value"]))
            idx = ",".join(str(draw(st.integers(-1, 3))) for _ in range(draw(st.integers(0, 3))))
            sheet[f"{name}[{idx}]"] = draw(numbers | scalars)
        elif how == "drop" and names:
            sheet.pop(draw(st.sampled_from(names)), None)
    text = yaml.safe_dump(sheet, default_flow_style=draw(st.sampled_from([None, True])))
    for _ in range(draw(st.integers(0, 2))):
        text = draw(mutate_text(text))
    args = ["check", str(example), "-"]
    if draw(st.booleans()):
        args.append("--json")
    if draw(st.integers(0, 3)) == 0:
        args += ["--round-each", str(draw(st.integers(0, 6)))]
    return text.encode("utf-8", errors="surrogatepass"), args


CHECK_LOCATED = re.compile(r"bpcalc: error: (<stdin>|\S+\.yaml):\d+:\d+: \S")


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(answer_sheets())
def test_mutated_answer_sheets_exit_0_1_or_2_with_a_located_message_and_no_traceback(
    case: tuple[bytes, list[str]],
) -> None:
    raw, args = case
    code, out, err = run_cli(raw, args)
    event(f"exit {code}")
    assert code in (0, 1, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    if code == 2:
        assert out == ""
        *warnings, error = err.strip().splitlines()
        assert CHECK_LOCATED.match(error), err
        assert all(line.startswith("bpcalc: warning: ") for line in warnings), err
    else:
        assert all(line.startswith("bpcalc: warning: ") for line in err.splitlines()), err
        if "--json" in args:
            _strict_json(out)


NEW_VALID = {  # values that make sense, so that about half the cases write a network
    "--sizes": ["2,3,1", "4,8,2", "3,1", "64,32,10"],
    "--activation": ["relu", "tanh", "sigmoid", "leaky_relu"],
    "--loss": ["mse", "cross_entropy", "binary_cross_entropy", "half_sse"],
    "--input": ["1,8,8", "3,6,6", "1,4,4", "2,5,7"],
    "--channels": ["1", "4"],
    "--kernel": ["1", "3", "5"],
    "--pool": ["1", "2", "3"],
    "--classes": ["2", "10"],
    "--lr": ["0.1", "1e-3"],
}
new_values = st.one_of(
    st.text(max_size=8),
    st.from_regex(r"-?[0-9]{1,4}(,-?[0-9]{0,3}){0,4}", fullmatch=True),
    st.sampled_from(["relu", "softmax", "cross_entropy", "0", "-1", "inf", "nan"]),
)
new_options = st.sampled_from(sorted(NEW_VALID)).flatmap(  # 3 values in 4 make sense
    lambda opt: st.tuples(st.just(opt), st.sampled_from(NEW_VALID[opt] * 3) | new_values)
)


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.sampled_from(["mlp", "cnn", "rnn"]),
    st.lists(new_options, max_size=3),
    st.sampled_from(NEW_VALID["--sizes"]) | new_values,
)
def test_new_writes_a_network_its_own_loader_accepts_or_exits_2(
    kind: str, options: list[tuple[str, str]], sizes: str
) -> None:
    from bpcalc.network.parse import parse_network
    from bpcalc.network.yaml_source import load_yaml_text

    if kind == "mlp":  # mlp needs its sizes
        options = [("--sizes", sizes), *options]
    args = ["new", kind] + [f"{opt}={value}" for opt, value in options]
    code, out, err = run_cli(b"", args)
    event(f"exit {code}")
    assert code in (0, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    if code == 0:
        parse_network(load_yaml_text(out, "new.yaml"))  # a SpecError here fails the test
