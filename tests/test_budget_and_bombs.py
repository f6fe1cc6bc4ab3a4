"""Sizes are known before anything is allocated, data files are read safely, and every error
is located: exit code 2, one line on stderr that names the file:line:column (or the option),
no traceback and no warning text.

Each row of CASES is an input that used to be an internal error (exit 70), a wrong message,
or a run that allocated gigabytes or blocked. Rows marked `measured` run in a process of their
own under an address-space cap, and the test reads that process's own resource usage
(os.wait4): its peak memory must stay far below the budget and its CPU time small. No wall
clock is asserted. Compressed bombs are made here, small (the ones that need it run with
--max-memory 256MiB so that a few hundred MB of zeros is a bomb).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bpcalc import budget
from bpcalc.cli import run

EXAMPLES = Path(__file__).parents[1] / "examples"
CAP = 3 << 30  # the address-space cap of a measured process
SMALL = "256MiB"  # the budget the bombs run under

DENSE = """\
inputs: [[1, 2], [3, 4]]
targets: [[1], [0]]
layers:
  - name: fc
    type: dense
    units: UNITS
loss: mse
learning_rate: 0.1
"""

CONV = """\
input: [[1, 2], [3, 4]]
target: [[[1]]]
layers:
  - name: conv
    type: conv2d
    out_channels: OUT
    kernel_size: KS
    padding: PAD
  - {name: pool, type: maxpool2d, size: POOL}
loss: mse
learning_rate: 0.1
"""


def dense(units: str, extra: str = "") -> str:
    return DENSE.replace("UNITS", units) + extra


def conv(out: str = "1", ks: str = "2", pad: str = "0", pool: str = "1") -> str:
    return CONV.replace("OUT", out).replace("KS", ks).replace("PAD", pad).replace("POOL", pool)


def data_net(ref: str, targets: str = "[[1], [0]]") -> str:
    return (
        f"inputs: {ref}\ntargets: {targets}\nlayers:\n  - {{name: fc, type: dense, units: 1}}\n"
        "loss: mse\nlearning_rate: 0.1\n"
    )


# --- data files, written by hand from each format's description -------------------------


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A version 1.0 .npy header for `shape` (padded to 64 bytes, as numpy writes it)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(text) + 1) % 64
    text += " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def gzip_of(head: bytes, zeros: int) -> bytes:
    """`head` and then `zeros` zero bytes, gzipped a MiB at a time (a few MB for hundreds)."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    out = [comp.compress(head)]
    block = bytes(1 << 20)
    for i in range(0, zeros, len(block)):
        out.append(comp.compress(block[: min(len(block), zeros - i)]))
    out.append(comp.flush())
    return b"".join(out)


def npz_bomb(path: Path, shape: tuple[int, ...], zeros: int) -> None:
    """An .npz whose member announces `shape` and holds `zeros` zero bytes, deflated."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as fh:
            fh.write(npy_header(shape))
            block = bytes(1 << 20)
            for i in range(0, zeros, len(block)):
                fh.write(block[: min(len(block), zeros - i)])


def write_files(d: Path) -> None:
    """Every data file the cases name (small, except that some announce or inflate a lot)."""
    np.save(d / "x.npy", np.array([[1.0, 2], [3, 4]]))
    np.savez(d / "x.npz", x=np.array([[1.0, 2], [3, 4]]))
    np.save(d / "labels.npy", np.array([0, 1]))
    np.save(d / "wide.npy", np.ones((1, 20000)))
    np.save(d / "row1000.npy", np.ones((1, 1000)))
    (d / "data.csv").write_text("1,2\n3,4\n")
    (d / "header.csv").write_text("a,b\n")
    for name in ("empty.npy", "empty.npz", "empty.csv", "empty.idx"):
        (d / name).write_bytes(b"")
    with zipfile.ZipFile(d / "text_member.npz", "w") as zf:
        zf.writestr("x.txt", b"hello")
    with zipfile.ZipFile(d / "bad_member.npz", "w") as zf:
        zf.writestr("x.npy", b"hello world")
    (d / "text.npz").write_text("1,2\n3,4\n")
    (d / "lying.npy").write_bytes(npy_header((100000, 100000)) + bytes(16))
    (d / "truncated.npy").write_bytes(npy_header((2, 2)) + bytes(16))
    (d / "objects.npy").write_bytes(npy_header((2, 2), "|O") + bytes(32))
    with open(d / "sparse.npy", "wb") as fh:  # 20000 x 20000 float64, really 3 GB (sparse)
        fh.write(npy_header((20000, 20000)))
        fh.truncate(fh.tell() + 20000 * 20000 * 8)
    (d / "truncated.idx").write_bytes(idx_header(0x08, (2, 2)) + b"\x01\x02")
    (d / "damaged.csv.gz").write_bytes(gzip.compress(b"1,2\n3,4\n")[:12] + b"garbage!" * 4)
    (d / "bomb.csv.gz").write_bytes(gzip_of(b"", 100 << 20))  # 100 MB of zeros, ~450 KB
    (d / "huge-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(0x08, (40000, 40000))))
    (d / "long-idx1-ubyte.gz").write_bytes(gzip_of(idx_header(0x08, (2,)) + b"\x00\x01", 64 << 20))
    npz_bomb(d / "bomb.npz", (300, 1 << 17), 300 << 23)  # 300 MiB of zeros, ~300 KB
    os.mkfifo(d / "fifo.csv")
    os.mkfifo(d / "fifo.yaml")
    os.mkfifo(d / "fifo.npz")
    (d / "adir.csv").mkdir()
    os.symlink("/etc/hostname", d / "outside.yaml")
    sheet = "loss: 1\n"
    (d / "sheet.yaml").write_text(sheet)
    rows = "".join("      - [" + ",".join(["0.12"] * 1000) + "]\n" for _ in range(1000))
    (d / "inline.yaml").write_text(  # a 1000 x 1000 matrix written out: 5 MB, 1M values
        "input: [" + ",".join(["1"] * 1000) + "]\ntarget: [1]\nlayers:\n  - name: fc\n"
        f"    type: dense\n    weights:\n{rows}  - {{name: o, type: dense, units: 1}}\n"
        "loss: mse\nlearning_rate: 0.1\n"
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bombs")
    write_files(d)
    return d


# --- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # "{net}": the case's network file; other names are in `folder`
    net: str | None = None
    at: str = ""  # the located text: the network's line:column of this needle, or an option
    words: tuple[str, ...] = ()
    measured: bool = False  # run in its own process; its peak memory and CPU time are read
    peak_mib: int = 128  # the most that process may use (the budget is 1 GiB or SMALL)


def n(net: str, needle: str) -> str:
    """The 1-based line:column where `needle` starts in `net` (it must occur once)."""
    assert net.count(needle) == 1, needle
    i = net.index(needle)
    return f"{net.count(chr(10), 0, i) + 1}:{i - (net.rfind(chr(10), 0, i) + 1) + 1}"


EX1 = str(EXAMPLES / "example1.yaml")
EX2 = str(EXAMPLES / "example2.yaml")
DIGITS = str(EXAMPLES / "digits" / "cnn.yaml")
LIMIT_NET = dense("1\n    init: {type: uniform, limit: 1e308}")
ONE_HOT = (
    "inputs: [[1, 2], [3, 4]]\ntargets: {file: labels.npy, one_hot: 3000000000}\nlayers:\n"
    "  - {name: fc, type: dense, units: 3, activation: softmax}\nloss: cross_entropy\n"
    "learning_rate: 0.1\n"
)
BN_CONV = (
    "input: [[1, 2], [3, 4]]\ntarget: [[[1]]]\nlayers:\n"
    "  - {name: conv, type: conv2d, kernel: [[1, 0], [0, 1]]}\n  - {name: bn, type: batchnorm}\n"
    "loss: mse\nlearning_rate: 0.1\n"
)
WIDE = (
    "inputs: {file: wide.npy}\ntargets: [[1]]\nlayers:\n"
    "  - {name: fc, type: dense, units: 20000}\n  - {name: o, type: dense, units: 1}\n"
    "loss: mse\nlearning_rate: 0.1\n"
)
W1000 = (
    "inputs: {file: row1000.npy}\ntargets: [[1]]\nlayers:\n"
    "  - {name: fc, type: dense, units: 1000}\n  - {name: o, type: dense, units: 1}\n"
    "loss: mse\nlearning_rate: 0.1\n"
)


def ref(text: str, needle: str) -> tuple[str, str]:
    net = data_net(text)
    return net, n(net, needle)


CASES = [
    # --- internal errors (exit 70) that are located input errors now -----------------
    Case("NaN absolute tolerance, JSON", ("check", EX1, "sheet.yaml", "--atol", "nan", "--json"), at="--atol", words=("finite",)),
    Case("NaN relative tolerance", ("check", EX1, "sheet.yaml", "--rtol", "nan"), at="--rtol"),
    Case("infinite tolerance", ("check", EX1, "sheet.yaml", "--atol", "inf"), at="--atol"),
    Case("units: 1e19", ("step", "{net}"), dense("1e19"), n(dense("1e19"), "1e19"), ("weights", "memory budget")),
    Case("units of 20 digits", ("step", "{net}"), dense("1" + "0" * 19), n(dense("1" + "0" * 19), "1" + "0" * 19), ("than any computer has",)),
    Case("out_channels of 20 digits", ("step", "{net}"), conv(out="1" + "0" * 19), n(conv(out="1" + "0" * 19), "1" + "0" * 19), ("kernel",)),
    Case("kernel_size of 20 digits", ("step", "{net}"), conv(ks="1" + "0" * 19), n(conv(ks="1" + "0" * 19), "1" + "0" * 19), ("kernel",)),
    Case("new mlp with a 20-digit size", ("new", "mlp", "--sizes", "99999999999999999999,1"), at="--sizes"),
    Case("padding: 1000000000", ("step", "{net}"), conv(pad="1000000000", pool="2000000001"), n(conv(pad="1000000000", pool="2000000001"), "1000000000"), ("padded input",), measured=True),
    Case("one_hot: 3000000000", ("step", "{net}"), ONE_HOT, n(ONE_HOT, "3000000000"), ("one-hot", "3000000000 classes"), measured=True),
    Case("init limit 1e308 in step", ("step", "{net}"), LIMIT_NET, n(LIMIT_NET, "1e308"), ("limit",)),
    Case("init limit 1e308 in check --template", ("check", "{net}", "--template"), LIMIT_NET, n(LIMIT_NET, "1e308")),
    Case("init limit 1e308 in train", ("train", "{net}", "-e", "1"), LIMIT_NET, n(LIMIT_NET, "1e308")),
    Case("an npz member that is not .npy", ("step", "{net}"), *ref("{file: text_member.npz}", "text_member"), ("x.txt", "not an .npy")),
    Case("an npz member that is not an array", ("step", "{net}"), *ref("{file: bad_member.npz}", "bad_member"), ("not a readable .npy",)),
    Case("an npy file read as npz", ("step", "{net}"), *ref("{file: x.npy, format: npz}", "npz}"), ("format: npz", "a .npy array")),
    Case("an npz file read as npy", ("step", "{net}"), *ref("{file: x.npz, format: npy}", "npy}"), ("format: npy", "a .npz archive")),
    Case("a CSV file read as npy", ("step", "{net}"), *ref("{file: data.csv, format: npy}", "npy}"), ("format: npy", "format: csv")),
    Case("text named .npz", ("step", "{net}"), *ref("{file: text.npz}", "text.npz"), ("not a readable .npz",)),
    # --- wrong exit code or message --------------------------------------------------
    Case("a 0-byte .npy", ("step", "{net}"), *ref("{file: empty.npy}", "empty"), ("empty (0 bytes)",)),
    Case("a 0-byte .npz", ("step", "{net}"), *ref("{file: empty.npz}", "empty"), ("empty (0 bytes)",)),
    Case("a 0-byte CSV", ("step", "{net}"), *ref("{file: empty.csv}", "empty"), ("empty",)),
    Case("a 0-byte IDX file", ("step", "{net}"), *ref("{file: empty.idx}", "empty"), ("empty",)),
    Case("an npy header of 100000 x 100000 over 16 bytes", ("step", "{net}"), *ref("{file: lying.npy}", "lying"), ("100000 x 100000", "truncated"), measured=True),
    Case("an npy of 20000 x 20000 (sparse, 3 GB)", ("step", "{net}"), *ref("{file: sparse.npy}", "sparse"), ("20000 x 20000", "memory budget of 1 GiB", "--max-memory 4GiB"), measured=True),
    Case("a truncated npy", ("step", "{net}"), *ref("{file: truncated.npy}", "truncated"), ("32 bytes of data", "the file has 16")),
    Case("a pickled npy", ("step", "{net}"), *ref("{file: objects.npy}", "objects"), ("Python objects",)),
    Case("a truncated IDX file", ("step", "{net}"), *ref("{file: truncated.idx}", "truncated"), ("4 bytes of data", "has 2")),
    Case("damaged gzip", ("step", "{net}"), *ref("{file: damaged.csv.gz}", "damaged"), ("gzip data is damaged",)),
    Case("a CSV with only a header line", ("step", "{net}"), *ref("{file: header.csv}", "header"), ("only a line of column names",)),
    # --- nothing was sized before it was allocated -----------------------------------
    Case("units: 100000000", ("step", "{net}"), dense("100000000"), n(dense("100000000"), "100000000"), ("100000000 x 2", "2.98 GiB", "--max-memory 4GiB"), measured=True),
    Case("a 20000 x 20000 weight by init", ("step", "{net}"), WIDE, n(WIDE, "20000}"), ("20000 x 20000",), measured=True),
    Case("padding: 5000", ("step", "{net}"), conv(pad="5000", pool="10001"), n(conv(pad="5000", pool="10001"), "5000"), ("padded input 1 x 10002 x 10002",), measured=True),
    Case("out_channels: 100000000", ("step", "{net}"), conv(out="100000000"), n(conv(out="100000000"), "100000000"), ("kernel",), measured=True),
    Case("new mlp --sizes 100000000,2", ("new", "mlp", "--sizes", "100000000,2"), at="--sizes", measured=True),
    Case("new cnn --channels 1000000000", ("new", "cnn", "--channels", "1000000000"), at="bpcalc new cnn", words=("--channels 1000000000", "conv2d layer 'conv'", "134 GiB"), measured=True),
    Case("--steps 1000000000", ("step", EX2, "--steps", "1000000000"), at="--steps", words=("1000000000 steps",), measured=True),
    Case("--epochs 1000000000", ("train", EX2, "--epochs", "1000000000", "--json"), at="--epochs", measured=True),
    Case("--full on a 1000 x 1000 weight", ("step", "{net}", "--full"), W1000, at="--full", words=("fc.weights", "--max-output"), measured=True),
    Case("--explain all --full on the digits CNN", ("step", DIGITS, "--json", "--explain", "all", "--full"), at="--explain", words=("--max-output",), measured=True),
    Case("a YAML of a million inline numbers", ("step", "inline.yaml"), at="inline.yaml", words=("419,430 values", "--max-memory"), measured=True, peak_mib=256),
    Case("a gzipped CSV that inflates to 100 MB", ("step", "{net}", "--max-memory", SMALL), *ref("{file: bomb.csv.gz, format: csv}", "bomb"), ("inflates to more than",), measured=True),
    Case("a gzipped IDX header of 40000 x 40000", ("step", "{net}", "--max-memory", SMALL), *ref("{file: huge-idx3-ubyte.gz}", "huge"), ("40000 x 40000", "memory budget"), measured=True),
    Case("a gzipped IDX with more data than its header", ("step", "{net}", "--max-memory", SMALL), *ref("{file: long-idx1-ubyte.gz}", "long"), ("but the file has more",), measured=True),
    Case("an npz member that inflates to 3 GB", ("step", "{net}", "--max-memory", SMALL), *ref("{file: bomb.npz}", "bomb"), ("300 x 131072", "300 MiB", "memory budget of 256 MiB"), measured=True),
    Case("/dev/zero named as a CSV file", ("step", "{net}"), *ref("{file: /dev/zero, format: csv}", "/dev/zero"), ("character device",), measured=True),
    Case("/dev/zero named as an IDX file", ("step", "{net}"), *ref("{file: /dev/zero, format: idx}", "/dev/zero"), ("character device",), measured=True),
    Case("a named pipe as a data file", ("step", "{net}"), *ref("{file: fifo.csv}", "fifo"), ("named pipe",), measured=True),
    Case("a named pipe as train's --test data", ("train", EX2, "-e", "1", "--test", "fifo.npz"), at="fifo.npz:1:1", words=("named pipe",), measured=True),
    Case("a directory as a data file", ("step", "{net}"), *ref("{file: adir.csv}", "adir"), ("directory",)),
    # --- writes only where they belong -----------------------------------------------
    Case("-o /dev/null --force", ("new", "mlp", "--sizes", "2,1", "-o", "/dev/null", "--force"), at="-o", words=("device",)),
    Case("-o a named pipe --force", ("new", "mlp", "--sizes", "2,1", "-o", "fifo.yaml", "--force"), at="-o", words=("named pipe",), measured=True),
    Case("-o a link out of the folder --force", ("new", "mlp", "--sizes", "2,1", "-o", "outside.yaml", "--force"), at="-o", words=("outside its folder",)),
    Case("--save /dev/null --force", ("train", EX2, "-e", "1", "--save", "/dev/null", "--force"), at="--save", words=("device",)),
    # --- minor ------------------------------------------------------------------------
    Case("batchnorm after a conv with N·H·W = 1", ("step", "{net}"), BN_CONV, n(BN_CONV, "{name: bn"), ("N·H·W", "variance 0")),
    Case("a nonsense --max-memory", ("step", EX1, "--max-memory", "lots"), at="--max-memory"),
]  # fmt: skip


def _args(case: Case, folder: Path) -> list[str]:
    net = folder / f"{re.sub(r'[^A-Za-z0-9]+', '_', case.id)}.yaml"
    if case.net is not None:
        net.write_text(case.net, encoding="utf-8")
    return [str(net) if a == "{net}" else a for a in case.args]


def _in_process(args: list[str], folder: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = run(args)
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


@dataclass(frozen=True)
class Usage:
    code: int
    out: str
    err: str
    peak_mib: float  # the process's own maximum resident set size
    cpu_s: float  # its user + system CPU time


# Started by a small Python of its own: on Linux a process's ru_maxrss starts from the size of
# the process that forked it, and pytest's grows over a run. The launcher is small when it
# forks the measured command, whose peak is then its own; it reports the rusage as JSON.
LAUNCHER = """
import json, os, resource, sys
cap, report, *args = sys.argv[1:]
pid = os.fork()
if pid == 0:
    resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
    os.execv(sys.executable, [sys.executable, "-c", "from bpcalc.cli import main; main()", *args])
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as f:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime], f)
"""


def run_measured(args: list[str], cwd: Path, timeout: float = 60) -> Usage:
    """bpcalc in a process of its own, under an address-space cap; its resource usage as the
    kernel counted it (os.wait4 in a small launcher), not a clock in the test. A process that
    has not ended after `timeout` seconds (a blocked read) is killed and the test fails."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report = Path(tmp) / "usage.json"
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(CAP), str(report), *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        assert report.exists(), f"bpcalc {' '.join(args)} did not finish (blocked?)"
        code, maxrss, cpu = json.loads(report.read_text())
        assert code != -signal.SIGKILL, f"bpcalc {' '.join(args)} did not finish (blocked?)"
        out.seek(0)
        err.seek(0)
        return Usage(
            code,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            maxrss / 1024,
            cpu,
        )


def _located(case: Case, args: list[str], err: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err  # one line
    assert err.startswith("bpcalc: error: "), err
    message = err.removeprefix("bpcalc: error: ")
    if case.at.startswith(("-", "bpcalc new")):
        assert message.startswith(case.at), err
    elif case.at.endswith(":1:1"):  # a file named on the command line
        assert message.startswith(case.at + ": "), err
    elif case.at.endswith(".yaml"):  # a network named as it is, somewhere in it
        assert re.match(re.escape(case.at) + r":\d+:\d+: ", message), err
    else:
        net = next(a for a in args if a.endswith(".yaml"))
        assert message.startswith(f"{net}:{case.at}: "), err
    for word in case.words:
        assert word in message, err
    for bad in ("Traceback", "Warning", "warning", "internal error", "out of memory"):
        assert bad not in err, err


@pytest.mark.parametrize("case", [c for c in CASES if not c.measured], ids=lambda c: c.id)
def test_each_input_is_one_located_line_with_exit_2(case: Case, folder: Path) -> None:
    args = _args(case, folder)
    code, out, err = _in_process(args, folder)
    assert code == 2, err
    assert "Traceback" not in out
    _located(case, args, err)


@pytest.mark.parametrize("case", [c for c in CASES if c.measured], ids=lambda c: c.id)
def test_each_bomb_is_refused_early_in_memory_and_time(case: Case, folder: Path) -> None:
    args = _args(case, folder)
    used = run_measured(args, folder)
    assert used.code == 2, used.err
    assert "Traceback" not in used.out
    _located(case, args, used.err)
    # the budget is 1 GiB (or SMALL): a refusal before allocating stays far below it
    assert used.peak_mib < case.peak_mib, f"{used.peak_mib:.0f} MiB"
    assert used.cpu_s < 20, f"{used.cpu_s:.1f} s of CPU"


# --- what works, and the figures the budget is made of ------------------------------------


def test_small_gzipped_files_are_read_under_a_tight_address_space_cap(folder: Path) -> None:
    # a 34-byte .csv.gz failed under a 4 GB cap when 4 GiB were reserved for its content
    (folder / "small.csv.gz").write_bytes(gzip.compress(b"1,2\n3,4\n"))
    from bpcalc.network.datafiles import write_idx

    write_idx(
        folder / "img-idx3-ubyte.gz", np.arange(8, dtype=np.uint8).reshape(2, 2, 2), compress=True
    )
    for reference in ("{file: small.csv.gz}", "{file: img-idx3-ubyte.gz, flatten: true}"):
        net = folder / "small_gz.yaml"
        net.write_text(data_net(reference))
        used = run_measured(["step", str(net), "--json"], folder)
        assert used.code == 0, used.err
        assert json.loads(used.out)["steps"][0]["values"]["input"]


@pytest.mark.parametrize(
    "net",
    [
        # conv with padding and max pooling (sgd); a dense layer of 1M parameters with adam
        # and an L2 penalty; a 3000-sample MLP
        "inputs: {file: images.npy}\ntargets: {file: y8.npy}\nlayers:\n"
        "  - {name: c, type: conv2d, out_channels: 16, kernel_size: 5, padding: 2, activation: relu}\n"
        "  - {type: maxpool2d, size: 48}\n  - {type: flatten}\n  - {name: o, type: dense, units: 1}\n"
        "loss: mse\nlearning_rate: 0.1\n",
        "inputs: {file: row1000.npy}\ntargets: [[0.5]]\nlayers:\n"
        "  - {name: h, type: dense, units: 1000, activation: relu}\n  - {name: o, type: dense, units: 1}\n"
        "loss: mse\noptimizer: {type: adam, lr: 0.01}\nregularization: {l2: 0.01}\n",
        "inputs: {file: rows.npy}\ntargets: {file: labels3000.npy}\nlayers:\n"
        "  - {name: h, type: dense, units: 64, activation: relu}\n"
        "  - {name: o, type: dense, units: 10, activation: softmax}\nloss: cross_entropy\n"
        "optimizer: {type: momentum, lr: 0.1}\n",
    ],
    ids=["conv", "dense-adam", "mlp"],
)
@pytest.mark.parametrize(
    "fmt",
    [["--summary"], pytest.param(["--json"], marks=pytest.mark.slow)],
    ids=["tables", "json"],
)
def test_the_estimate_of_a_step_bounds_what_it_uses_within_a_factor_of_two(
    net: str, fmt: list[str], folder: Path
) -> None:
    from bpcalc.network.parse import parse_network
    from bpcalc.network.yaml_source import load_yaml_text

    rng = np.random.default_rng(0)
    np.save(folder / "images.npy", rng.normal(size=(8, 4, 48, 48)))
    np.save(folder / "y8.npy", rng.normal(size=(8, 1)))
    np.save(folder / "rows.npy", rng.normal(size=(3000, 400)))
    np.save(folder / "labels3000.npy", rng.integers(0, 10, 3000))
    path = folder / "calibrate.yaml"
    path.write_text(net)
    spec = parse_network(load_yaml_text(net, str(path)))
    estimate = budget.step_bytes(spec, 1, fmt == ["--json"]) / 2**20
    baseline = run_measured(["step", EX1, *fmt], folder).peak_mib
    used = run_measured(["step", str(path), *fmt], folder)
    assert used.code == 0, used.err
    grown = used.peak_mib - baseline
    assert grown <= estimate <= 2 * grown + 16, f"used {grown:.0f} MiB, estimated {estimate:.0f}"


def test_max_memory_raises_the_budget_to_the_size_the_message_suggests(folder: Path) -> None:
    args = ["step", EX2, "--steps", "3000", "--json"]
    code, _, err = _in_process([*args, "--max-memory", "1MiB"], folder)
    assert code == 2
    suggested = re.search(r"--max-memory (\S+) if", err)
    assert suggested is not None, err
    code, out, err = _in_process([*args, "--max-memory", suggested.group(1)], folder)
    assert code == 0, err
    assert len(json.loads(out)["steps"]) == 3000


def test_max_output_lets_a_long_table_through(folder: Path) -> None:
    np.save(folder / "row300.npy", np.ones((1, 300)))
    net = folder / "w300.yaml"
    net.write_text(W1000.replace("row1000", "row300").replace("1000", "300"))
    args = ["step", str(net), "--full", "--only", "*fc.weights"]  # 3 of 300 x 300 numbers
    code, _, err = _in_process([*args, "--max-output", "1MiB"], folder)
    assert code == 2 and err.startswith("bpcalc: error: --full: the values"), err
    code, out, err = _in_process([*args, "--max-output", "4MiB"], folder)
    assert code == 0, err
    assert out.count("\n") > 300


def test_new_writes_nothing_that_step_would_refuse(folder: Path) -> None:
    code, _, err = _in_process(["new", "mlp", "--sizes", "10,40000000,2"], folder)
    assert code == 2 and "bpcalc step would refuse" in err, err
    code, out, err = _in_process(["new", "mlp", "--sizes", "784,128,10"], folder)
    assert code == 0, err
    (folder / "new_ok.yaml").write_text(out)
    assert _in_process(["step", "new_ok.yaml", "--json"], folder)[0] == 0


def test_a_library_warning_reaches_stderr_as_one_bpcalc_line(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from bpcalc import engine

    real = engine.run

    def warns(*args: object, **kwargs: object) -> object:
        warnings.warn("something numpy says\nover two lines", UserWarning, stacklevel=1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run", warns)
    code, _, err = _in_process(["step", EX1, "--json"], folder)
    assert code == 0
    assert err == "bpcalc: warning: UserWarning: something numpy says\\nover two lines\n", err


# --- the answer sheet ----------------------------------------------------------------------


def test_template_json_is_a_sheet_that_check_reads_back(folder: Path) -> None:
    code, out, err = _in_process(["check", EX2, "--template", "--json"], folder)
    assert code == 0, err
    sheet = json.loads(out)
    assert sheet["conv.kernel"] == [[None, None], [None, None]] and sheet["loss"] is None
    (folder / "blank.json").write_text(out)
    code, out, err = _in_process(["check", EX2, "blank.json"], folder)
    assert code == 0 and "No answers yet" in out, err
    # filled in with the right numbers, every answer is right
    code, out, _ = _in_process(["step", EX2, "--json"], folder)
    right = json.loads(out)["steps"][0]["values"]
    (folder / "right.json").write_text(json.dumps({k: right[k] for k in sheet}))
    code, out, err = _in_process(["check", EX2, "right.json", "--json"], folder)
    assert code == 0, err
    assert json.loads(out)["summary"]["wrong"] == 0


BN_NET = """\
inputs: [[1, 2], [3, 5], [0, 1], [2, 2]]
targets: [[1], [0], [1], [0]]
layers:
  - {name: fc, type: dense, weights: [[0.1, 0.2], [0.3, -0.1]]}
  - {name: bn, type: batchnorm}
  - {name: drop, type: dropout, p: 0.5, seed: 1}
  - {name: out, type: dense, weights: [[0.5, -0.5]]}
loss: mse
mode: minibatch
batch_size: 2
learning_rate: 0.1
"""


def test_template_calls_only_what_the_network_gives_given(folder: Path) -> None:
    (folder / "bn.yaml").write_text(BN_NET)
    code, out, err = _in_process(["check", "bn.yaml", "--template"], folder)
    assert code == 0, err
    comments = {line.split(":")[0]: line for line in out.splitlines() if not line.startswith("#")}
    for given in ("input", "target", "fc.weights", "bn.gamma", "bn.running_mean"):
        assert "given in the network" in comments[given], comments[given]
    for computed in ("bn.mean", "bn.var", "bn.xhat", "drop.mask", "fc.z"):
        assert "given in the network" not in comments[computed], comments[computed]


# --- the evaluation mode of dataset_loss_after ---------------------------------------------


def test_every_place_says_dataset_loss_after_is_computed_in_evaluation_mode(folder: Path) -> None:
    (folder / "bn.yaml").write_text(BN_NET)
    code, out, err = _in_process(
        ["step", "bn.yaml", "--json", "--explain", "dataset_loss_after", "--explain", "loss_after"],
        folder,
    )
    assert code == 0, err
    doc = json.loads(out)
    conventions = doc["conventions"]
    assert "recorded, not used" not in conventions["bn"]
    assert "evaluation mode" in conventions["bn"] and "dataset_loss_after" in conventions["bn"]
    assert "evaluation mode" in conventions["drop"]
    work = doc["steps"][0]["work"]
    assert "evaluation mode" in work["dataset_loss_after"]["note"]
    assert "running statistics" in work["dataset_loss_after"]["note"]
    assert "training mode" in work["loss_after"]["note"]
    assert all("next step" not in w["note"] for w in work.values())
    docs = Path(__file__).parents[1] / "docs" / "batches-optimizers-regularization.md"
    text = docs.read_text(encoding="utf-8")
    paragraph = text[text.index("`dataset_loss_after`") :][:600]
    assert "evaluation mode" in paragraph and "running statistics" in paragraph


def test_dataset_loss_after_is_the_evaluation_mode_loss_it_is_said_to_be(folder: Path) -> None:
    # the same number as a forward pass with dropout off and the updated running statistics
    from bpcalc import engine
    from bpcalc.network.parse import parse_network
    from bpcalc.network.yaml_source import load_yaml_text

    spec = parse_network(load_yaml_text(BN_NET, "bn.yaml"))
    st = engine.run(spec).steps[0]
    w, b = st["new.fc.weights"], st["new.fc.bias"]
    z = spec.inputs @ w.T + b
    xhat = (z - st["new.bn.running_mean"]) / np.sqrt(st["new.bn.running_var"] + 1e-5)
    a = st["new.bn.gamma"] * xhat + st["new.bn.beta"]
    out = a @ st["new.out.weights"].T + st["new.out.bias"]
    expected = np.mean((out - spec.targets) ** 2)
    assert float(st["dataset_loss_after"]) == pytest.approx(expected, rel=1e-12)


# --- writes --------------------------------------------------------------------------------


def test_a_temporary_file_left_by_a_killed_write_is_removed_by_the_next_one(
    folder: Path,
) -> None:
    target = folder / "saved.yaml"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that is gone
    stale = folder / f".saved.yaml.{dead.pid}.0badc0de.tmp"
    stale.write_text("half a network")
    alive = folder / f".saved.yaml.{os.getppid()}.0123abcd.tmp"  # a live writer's
    alive.write_text("being written")
    code, _, err = _in_process(["new", "mlp", "--sizes", "2,1", "-o", str(target)], folder)
    assert code == 0, err
    assert not stale.exists() and alive.exists()
    assert target.read_text().startswith("# A starter network")
    alive.unlink()


def test_a_kill_during_save_leaves_a_temporary_that_the_next_save_removes(folder: Path) -> None:
    from bpcalc import fileio

    target = folder / "killed.yaml"
    script = (
        "import os, signal\n"
        "from bpcalc import fileio\n"
        "real = os.replace\n"
        "def die(a, b):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "fileio.os.replace = die\n"
        f"fileio.atomic_write({str(target)!r}, 'x', force=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    assert proc.wait() == -signal.SIGKILL
    left = [p.name for p in folder.iterdir() if p.name.startswith(".killed.yaml.")]
    assert left == [f".killed.yaml.{proc.pid}.{left[0].split('.')[4]}.tmp"]  # the whole new file
    fileio.atomic_write(target, "whole", force=True)
    assert target.read_text() == "whole"
    assert [p.name for p in folder.iterdir() if p.name.startswith(".killed.yaml.")] == []


def test_an_interrupt_while_the_temporary_is_created_waits_until_its_cleanup_is_armed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpcalc import fileio

    real = fileio._create_temporary

    def interrupted_right_after(directory: Path, name: str) -> tuple[int, str]:
        made = real(directory, name)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between creating it and the try
        return made

    monkeypatch.setattr(fileio, "_create_temporary", interrupted_right_after)
    with pytest.raises(KeyboardInterrupt):
        fileio.atomic_write(folder / "interrupted.yaml", "x", force=True)
    assert not (folder / "interrupted.yaml").exists()
    assert [p for p in folder.iterdir() if p.name.startswith(".interrupted.yaml.")] == []


def test_the_interrupt_waits_for_the_cleanup_while_other_threads_run(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a process has other threads (BLAS's); a signal can reach one of them, and a blocked
    # signal mask in the main thread does not hold it back
    from bpcalc import fileio

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    real = fileio._create_temporary

    def interrupted_right_after(directory: Path, name: str) -> tuple[int, str]:
        made = real(directory, name)
        signal.pthread_kill(other.ident, signal.SIGINT)  # to the other thread
        time.sleep(0.05)
        return made

    monkeypatch.setattr(fileio, "_create_temporary", interrupted_right_after)
    try:
        with pytest.raises(KeyboardInterrupt):
            fileio.atomic_write(folder / "threaded.yaml", "x", force=True)
    finally:
        stop.set()
    assert [p for p in folder.iterdir() if p.name.startswith(".threaded.yaml.")] == []


def test_a_link_to_a_file_in_the_same_folder_writes_that_file(folder: Path) -> None:
    (folder / "real.yaml").write_text("old")
    link = folder / "link.yaml"
    link.symlink_to("real.yaml")
    code, _, err = _in_process(["new", "mlp", "--sizes", "2,1", "-o", str(link), "--force"], folder)
    assert code == 0, err
    assert link.is_symlink() and (folder / "real.yaml").read_text().startswith("# A starter")
