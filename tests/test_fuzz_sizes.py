"""Fuzz the CLI with huge sizes and hostile data files: whatever the numbers and the bytes,
bpcalc exits 0 or 2, never 70, never with a traceback or "out of memory", and every error
names its place in the file (or the option).

Networks: units, out_channels, kernel_size, padding, stride, pool sizes, one_hot, init
limits, batch sizes drawn from small to astronomical (20 digits, 1e308, NaN); counts on the
command line (--steps, --epochs, --batch-size, --max-memory, --max-output) likewise.
Data files: a valid small file of every format (.npy, .npz, .npz compressed, CSV, IDX,
each gzipped or not) mutated: truncated, bytes flipped (mostly in the header), junk
appended, its shape rewritten to a lie, emptied; or one of the compressed bombs made by the
`bombs` fixture (a few MB that inflate to hundreds). The runs use --max-memory 64MiB, so
that what is accepted stays small and a few hundred MB is a bomb.

`bench/fuzz_campaign.py` draws from these strategies (and test_fuzz.py's) by the ten
thousand, in worker processes, and counts the outcomes.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import run_cli

SMALL_BUDGET = "64MiB"
LOCATED = re.compile(r"bpcalc: error: ((<stdin>|\S+\.yaml):\d+:\d+: \S|--[a-z-]+\b|bpcalc new \S)")
huge = st.one_of(
    st.integers(-2, 6),
    st.sampled_from(
        [10**k for k in (3, 4, 5, 6, 8, 9, 10, 12, 15, 18, 19, 20, 30, 400)]
        + [2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63)]
    ),
    st.sampled_from([1e19, 1e308, -1e308, 1.5, 0.0, float("nan"), float("inf")]),
)
counts = st.one_of(
    st.integers(1, 3),
    # refused under any budget a computer allows (10**6 epochs of a tiny network are fine,
    # and take minutes: not what a fuzz case should spend)
    st.sampled_from([10**8, 10**9, 10**12, 10**19, 2**63, 10**30]),
    st.sampled_from(["0", "-1", "1e9", "nan", "", "x"]),
)
sizes_text = st.sampled_from(
    ["1MiB", "64MiB", "1GiB", "4096", "1e300", "0", "-5", "lots", "2G", "1.5e9", "nan", "1e-9"]
)


def _net(layers: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "inputs": [[[1.0, 2.0, 0.5], [3.0, 4.0, 1.0], [0.0, 1.0, 2.0]]] * 2,
        "targets": [[1.0], [0.0]],
        "layers": layers,
        "loss": "mse",
        "learning_rate": 0.1,
        **(extra or {}),
    }


@st.composite
def sized_networks(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A small network (conv, pool, batchnorm, dropout, dense) with some of its sizes huge."""
    conv: dict[str, Any] = {"name": "conv", "type": "conv2d", "out_channels": 2, "kernel_size": 2}
    for key in ("out_channels", "kernel_size", "padding", "stride"):
        if draw(st.integers(0, 3)) == 0:
            conv[key] = draw(huge)
    if draw(st.integers(0, 4)) == 0:
        conv["init"] = {"type": "uniform", "limit": draw(huge)}
    layers: list[dict[str, Any]] = [conv]
    if draw(st.booleans()):
        layers.append({"type": "batchnorm"})
    if draw(st.booleans()):
        pool = draw(st.one_of(st.just(2), huge))
        layers.append({"type": draw(st.sampled_from(["maxpool2d", "avgpool2d"])), "size": pool})
    layers.append({"type": "flatten"})
    if draw(st.booleans()):
        layers.append({"type": "dropout", "p": draw(st.one_of(st.just(0.5), huge))})
    hidden = {"name": "h", "type": "dense", "units": draw(st.one_of(st.just(3), huge))}
    if draw(st.integers(0, 3)) == 0:
        hidden["init"] = draw(
            st.sampled_from(
                [{"type": "normal", "std": 1e308}, {"type": "uniform", "limit": 1e300}, "he"]
            )
        )
    layers += [hidden, {"name": "out", "type": "dense", "units": 1}]
    extra: dict[str, Any] = {}
    if draw(st.integers(0, 3)) == 0:
        extra["batch_size"] = draw(huge)
    if draw(st.integers(0, 3)) == 0:
        extra["train"] = {"epochs": draw(huge), "batch_size": draw(st.one_of(st.just(1), huge))}
    text = yaml.safe_dump(_net(layers, extra), default_flow_style=None)
    command = draw(st.sampled_from(["step", "step", "check", "train", "explain"]))
    args = _command_args(draw, command)
    return text.encode(), args


def _command_args(draw: st.DrawFn, command: str) -> list[str]:
    budget = ["--max-memory", draw(st.one_of(st.just(SMALL_BUDGET), sizes_text))]
    if command == "train":
        args = ["train", "{net}", "--epochs", str(draw(counts)), "--json", *budget]
        if draw(st.booleans()):
            args += ["--batch-size", str(draw(counts))]
        return args
    if command == "check":
        return ["check", "{net}", "--template", *(["--json"] if draw(st.booleans()) else [])]
    args = ["step", "{net}", *budget, "--max-output", draw(st.sampled_from(["1MiB", "lots"]))]
    args += draw(st.sampled_from([["--json"], ["--summary"], [], ["--format", "markdown"]]))
    if command == "explain":
        args += ["--explain", draw(st.sampled_from(["all", "grad.*", "conv.z"]))]
    if draw(st.integers(0, 2)) == 0:
        args += ["--steps", str(draw(counts))]
    if draw(st.integers(0, 3)) == 0:
        args.append("--full")
    if draw(st.integers(0, 3)) == 0:
        args += ["--batch-size", str(draw(counts))]
    return args


# --- data files --------------------------------------------------------------------------

IDX_CODES = (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E)


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _npz(compressed: bool, **arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


X = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)  # 2 samples of 2 x 3
Y = np.array([0, 1], dtype=np.uint8)
VALID = {
    "npy": _npy(X.astype(float)),
    "npz": _npz(False, x=X.astype(float), y=Y),
    "npz_compressed": _npz(True, x=X.astype(float), y=Y),
    "csv": b"a,b,c,d,e,f\n0,1,2,3,4,5\n6,7,8,9,10,11\n",
    "idx": _idx(X),
}
SUFFIX = {
    "npy": ".npy",
    "npz": ".npz",
    "npz_compressed": ".npz",
    "csv": ".csv",
    "idx": "-idx3-ubyte",
}


def _lie(kind: str, raw: bytes, shape: tuple[int, ...]) -> bytes:
    """The file with its header's shape rewritten (the data left as it is)."""
    if kind == "idx":
        dims = [min(max(s, 0), 2**32 - 1) for s in shape][:255]
        return bytes([0, 0, raw[2], len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + raw[16:]
    if kind == "npy":
        header_len = struct.unpack("<H", raw[8:10])[0]
        text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
        text += " " * (header_len - len(text) - 1) + "\n" if len(text) < header_len else "\n"
        return raw[:8] + struct.pack("<H", len(text)) + text.encode() + raw[10 + header_len :]
    return raw


@st.composite
def data_files(draw: st.DrawFn) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(files to write, the data reference) for a valid, damaged, lying or bomb file."""
    kind = draw(st.sampled_from(sorted(VALID) + ["bomb"]))
    if kind == "bomb":
        name = draw(st.sampled_from(sorted(BOMBS)))
        reference: dict[str, Any] = {"file": f"../bombs/{name}"}
        if draw(st.booleans()):
            reference["format"] = draw(st.sampled_from(["csv", "idx", "npy", "npz"]))
        return {}, reference
    raw = VALID[kind]
    op = draw(st.sampled_from(["valid", "truncate", "flip", "junk", "lie", "empty", "lie"]))
    if op == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif op == "flip":
        i = draw(st.integers(0, min(len(raw), 160) - 1))
        raw = raw[:i] + bytes([draw(st.integers(0, 255))]) + raw[i + 1 :]
    elif op == "junk":
        raw += draw(st.binary(min_size=1, max_size=64))
    elif op == "lie":
        shape = tuple(draw(st.lists(st.one_of(st.integers(0, 4), huge.filter(_is_int)), min_size=1, max_size=4)))  # fmt: skip
        raw = _lie(kind.split("_")[0], raw, shape)
    elif op == "empty":
        raw = b""
    if draw(st.integers(0, 3)) == 0:
        raw = gzip.compress(raw)
        suffix = SUFFIX[kind] + ".gz"
    else:
        suffix = SUFFIX[kind]
    if draw(st.integers(0, 5)) == 0:  # a name that says another format
        suffix = draw(st.sampled_from([".npy", ".npz", ".csv", ".idx", ".txt"]))
    name = "data" + suffix
    reference = {"file": name}
    if draw(st.integers(0, 3)) == 0:
        reference["format"] = draw(st.sampled_from(["csv", "idx", "npy", "npz"]))
    if "npz" in kind and draw(st.booleans()):
        reference["key"] = draw(st.sampled_from(["x", "y", "z"]))
    for key, values in (
        ("one_hot", st.one_of(st.just(2), huge)),
        ("limit", st.one_of(st.just(1), huge)),
        ("scale", huge),
        ("flatten", st.booleans()),
        ("shape", st.lists(st.one_of(st.integers(1, 6), huge), max_size=3)),
        ("columns", st.one_of(st.just("0:3"), st.lists(st.integers(-1, 7), max_size=3))),
    ):
        if draw(st.integers(0, 5)) == 0:
            reference[key] = draw(values)
    return {name: raw}, reference


def _is_int(v: Any) -> bool:
    return isinstance(v, int)


@st.composite
def data_cases(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes, list[str]]:
    files, reference = draw(data_files())
    flat = draw(st.booleans())
    if flat:
        reference.setdefault("flatten", True)
    net = {
        "inputs": reference,
        "targets": [[1.0], [0.0]] if draw(st.booleans()) else dict(reference, one_hot=2),
        "layers": [{"type": "flatten"}, {"name": "fc", "type": "dense", "units": 1}],
        "loss": "mse",
        "learning_rate": 0.1,
    }
    text = yaml.safe_dump(net, default_flow_style=True).encode()
    command = draw(st.sampled_from(["step", "step", "train", "check"]))
    if command == "train":
        args = ["train", "{net}", "-e", "1", "--json", "--max-memory", SMALL_BUDGET]
    elif command == "check":
        args = ["check", "{net}", "--template", "--max-memory", SMALL_BUDGET]
    else:
        args = ["step", "{net}", "--json", "--max-memory", SMALL_BUDGET]
    return files, text, args


# --- bombs, made once: a few MB each ------------------------------------------------------


def _gzip_of(head: bytes, zeros: int) -> bytes:
    import zlib

    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [comp.compress(head)]
    block = bytes(1 << 20)
    for i in range(0, zeros, len(block)):
        out.append(comp.compress(block[: min(len(block), zeros - i)]))
    out.append(comp.flush())
    return b"".join(out)


def _npy_header(shape: tuple[int, ...]) -> bytes:
    text = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (64 - (10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def _zip_bomb(shape: tuple[int, ...], zeros: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header(shape))
            block = bytes(1 << 20)
            for i in range(0, zeros, len(block)):
                fh.write(block[: min(len(block), zeros - i)])
    return buf.getvalue()


BOMBS: dict[str, Any] = {  # name -> how to make it (inflated sizes ≥ 2 x the 64 MiB budget)
    "zeros.csv.gz": lambda: _gzip_of(b"", 150 << 20),
    "digits.csv.gz": lambda: _gzip_of(b"1," * 1000, 150 << 20),
    "images-idx3-ubyte.gz": lambda: _gzip_of(
        bytes([0, 0, 8, 3]) + struct.pack(">3I", 3000, 224, 224), 150 << 20
    ),  # fmt: skip
    "claims-idx3-ubyte.gz": lambda: gzip.compress(
        bytes([0, 0, 8, 2]) + struct.pack(">2I", 2**32 - 1, 2**32 - 1)
    ),  # fmt: skip
    "more-idx1-ubyte.gz": lambda: _gzip_of(
        bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + b"\x00\x01", 150 << 20
    ),  # fmt: skip
    "array.npy.gz": lambda: _gzip_of(_npy_header((2, 10_000_000)), 160_000_000),
    "member.npz": lambda: _zip_bomb((2, 10_000_000), 160_000_000),
    "claims.npz": lambda: _zip_bomb((10**6, 10**6), 1 << 20),
}


def make_bombs(folder: Path) -> Path:
    d = folder / "bombs"
    d.mkdir(exist_ok=True)
    for name, make in BOMBS.items():
        if not (d / name).exists():
            (d / name).write_bytes(make())
    return d


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_sizes")
    make_bombs(root)
    (root / "case").mkdir()
    return root / "case"


def run_case(
    workdir: Path, text: bytes, args: list[str], files: dict[str, bytes] | None = None
) -> tuple[int, str, str]:
    for old in workdir.iterdir():
        if old.name.startswith("data"):
            old.unlink()
    for name, raw in (files or {}).items():
        (workdir / name).write_bytes(raw)
    return run_cli(text, args, workdir)


def check_outcome(args: list[str], code: int, out: str, err: str) -> None:
    """What every case must show: exit 0 or 2, no traceback, no internal error, no 'out of
    memory' (the budget refuses first), no library warning, a located message on exit 2."""
    event(f"exit {code}")
    assert code in (0, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    assert "out of memory" not in err, err
    lines = err.strip().splitlines()
    if code == 2 and err.startswith("Usage: bpcalc "):  # click's own: the option and its value
        assert re.match(r"Error: (Invalid value for '--|No such option)", lines[-1]), err
    elif code == 2:
        *warnings, error = lines if lines else [""]
        assert LOCATED.match(error), err
        assert all(line.startswith("bpcalc: warning: ") for line in warnings), err
    else:
        assert all(
            line.startswith(("bpcalc: warning: ", "bpcalc: wrote", "bpcalc: saved"))
            for line in lines
        ), err
        if "--json" in args and args[0] == "step":
            json.loads(out, parse_constant=_reject)


def _reject(name: str) -> None:
    raise ValueError(f"JSON output contains {name}")


FUZZ = settings(
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")) // 4,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.mark.slow
@FUZZ
@given(sized_networks())
def test_huge_sizes_and_counts_exit_0_or_2_with_a_located_message(
    workdir: Path, case: tuple[bytes, list[str]]
) -> None:
    text, args = case
    code, out, err = run_case(workdir, text, args)
    check_outcome(args, code, out, err)


@pytest.mark.slow
@FUZZ
@given(data_cases())
def test_damaged_lying_and_bomb_data_files_exit_0_or_2_with_a_located_message(
    workdir: Path, case: tuple[dict[str, bytes], bytes, list[str]]
) -> None:
    files, text, args = case
    code, out, err = run_case(workdir, text, args, files)
    check_outcome(args, code, out, err)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(sized_networks(), data_cases().map(lambda c: (c[1], c[2], c[0]))))
def test_a_few_huge_or_hostile_inputs_in_every_run(workdir: Path, case: tuple[Any, ...]) -> None:
    text, args, *files = case
    code, out, err = run_case(workdir, text, args, files[0] if files else None)
    check_outcome(args, code, out, err)
