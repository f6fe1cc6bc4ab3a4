"""bpcalc's performance targets (issues 7 and 18), each measured side by side in one run.

    uv run python bench/run.py                 # everything, a few minutes
    uv run python bench/run.py --quick         # fewer rounds, for a first look
    uv run python bench/run.py --only train --threads 2 --clock wall

Every comparison alternates its contenders round by round (the order rotating), so a slower
or busier moment hits all of them alike; a ratio is the median of the per-round ratios.
By default everything runs on one thread and is timed in CPU seconds (a shared machine's
other work then costs little; with two busy cores multi-threaded BLAS and OpenMP lose most of
their time to waiting, which makes elapsed-time ratios meaningless); the process rows show
both clocks. The table lists times, ratios and the target each ratio must meet; the exit
code is 1 when a target is missed, 0 when all measured targets are met. PyTorch is optional:
without it the rows that compare with it are skipped and say so (see README, "Benchmarks",
for the CPU build).
"""

from __future__ import annotations

import argparse
import os
import sys

# Thread counts must be fixed before NumPy (OpenBLAS) or PyTorch start their pools.
_parser = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawTextHelpFormatter
)
_parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
_parser.add_argument(
    "--threads",
    type=int,
    default=1,
    help="threads for NumPy's BLAS and PyTorch alike, in every process (default: 1)",
)
_parser.add_argument(
    "--clock",
    choices=("wall", "cpu"),
    default="cpu",
    help="cpu: CPU time of the process (of the child for the commands), the default, steady\n"
    "on a machine busy with other work; wall: elapsed time (compare with --threads 2)",
)
_parser.add_argument(
    "--bpcalc",
    help="the bpcalc command for start-up and memory (default: the one beside this Python)",
)
_parser.add_argument(
    "--only",
    default="startup,json,mlp,cnn,train,memory",
    help="comma-separated sections: startup, json, mlp, cnn, train, memory",
)
ARGS = _parser.parse_args() if __name__ == "__main__" else _parser.parse_args([])
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import loops  # noqa: E402
import nets  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLOCK = time.process_time if ARGS.clock == "cpu" else time.perf_counter


@dataclass
class Row:
    what: str
    measured: str  # the figures behind the ratio
    ratio: float | None  # None: skipped
    target: str  # e.g. ">= 1.00"
    ok: bool | None  # None: skipped, or a reference with no target
    note: str = ""


REFERENCE = "-"  # the target of a reference row: measured for comparison, nothing to meet


def meets(ratio: float, target: str) -> bool:
    op, value = target.split()
    return (
        ratio >= float(value)
        if op == ">="
        else ratio <= float(value)
        if op == "<="
        else ratio < float(value)
    )


# --- start-up -----------------------------------------------------------------------------


def _bpcalc_cmd() -> list[str]:
    if ARGS.bpcalc:
        return [ARGS.bpcalc]
    script = Path(sys.executable).with_name("bpcalc")
    if script.exists():
        return [str(script)]
    found = shutil.which("bpcalc")
    return [found] if found else [sys.executable, "-c", "from bpcalc.cli import main; main()"]


def _child_env() -> dict[str, str]:
    """As after an install: Python may keep its bytecode cache (some shells here turn it off)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def startup(rounds: int, tmp: Path) -> list[Row]:
    bp = _bpcalc_cmd()
    import rich_tables

    rich_tables.write_example1(tmp / "tables.json", ROOT / "examples" / "example1.yaml")
    cmds = {
        "floor": [sys.executable, "-c", "import numpy, rich, typer, yaml"],
        "step": [*bp, "step", "examples/example1.yaml"],
        "json": [*bp, "step", "examples/example1.yaml", "--json"],
        "rich": [
            sys.executable,
            str(Path(__file__).with_name("rich_tables.py")),
            str(tmp / "tables.json"),
        ],
        "help": [*bp, "--help"],
        "version": [*bp, "--version"],
    }
    env = _child_env()

    def once(cmd: list[str]) -> float:
        t = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode})")
        return usage.ru_utime + usage.ru_stime if ARGS.clock == "cpu" else wall

    for cmd in cmds.values():  # warm-up: bytecode cache and disk cache
        once(cmd)
        once(cmd)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    names = list(cmds)
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            times[k].append(once(cmds[k]))
    floor = times["floor"]
    rows = []
    for k, label, target in (
        ("step", "start-up: bpcalc step examples/example1.yaml", "<= 1.25"),
        ("rich", "start-up reference: rich alone drawing the same tables", REFERENCE),
        ("json", "start-up reference: bpcalc step examples/example1.yaml --json", REFERENCE),
        ("help", "start-up: bpcalc --help", "< 1.00"),
        ("version", "start-up: bpcalc --version", "< 1.00"),
    ):
        ratio = statistics.median(t / f for t, f in zip(times[k], floor, strict=True))
        measured = f"{_ms(times[k])} vs import floor {_ms(floor)}"
        ok = None if target == REFERENCE else meets(ratio, target)
        note = {
            "rich": "the import floor + rich.console and rich.table drawing example 1's header "
            "and tables from ready text (bench/rich_tables.py): the least a step that draws "
            "them with rich takes",
            "json": "the same step without tables (no rich beyond the floor's import)",
        }.get(k, "")
        rows.append(Row(label, measured, ratio, target, ok, note))
    # bpcalc's own share: everything a step does beyond drawing its tables with rich
    ratio = statistics.median(t / r for t, r in zip(times["step"], times["rich"], strict=True))
    rows.insert(
        2,
        Row(
            "start-up reference: bpcalc step vs rich alone",
            f"{_ms(times['step'])} vs {_ms(times['rich'])}",
            ratio,
            REFERENCE,
            None,
            "what bpcalc adds to the tables: its imports, reading the YAML, the maths",
        ),
    )
    return rows


def _ms(ts: list[float]) -> str:
    return f"{statistics.median(ts) * 1000:.0f} ms"


# --- step --json against the tables -------------------------------------------------------

CNN_YAML = """\
name: bench CNN (conv 8 3x3, ReLU, max-pool 2, dense 10)
inputs: {file: data.npz, key: x}
targets: {file: data.npz, key: y}
layers:
  - name: conv
    type: conv2d
    out_channels: 8
    kernel_size: 3
    init: {type: he, seed: 0}
    activation: relu
  - name: pool
    type: maxpool2d
    size: 2
  - type: flatten
  - name: fc
    type: dense
    units: 10
    init: {type: xavier, seed: 1}
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""

# A small Python between the benchmark and the measured command: on Linux a child's ru_maxrss
# starts from its parent's resident size at fork (kept across exec), so the command is started
# from this ~10 MB process rather than from the benchmark with PyTorch loaded. Prints the exit
# code, the command's peak RSS (KiB), its CPU seconds (user + system) and elapsed seconds.
_MEASURED = """
import resource, subprocess, sys, time
t = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(code, u.ru_maxrss, u.ru_utime + u.ru_stime, wall)
"""


@dataclass(frozen=True)
class Measured:
    peak_kib: int
    cpu: float
    wall: float

    @property
    def seconds(self) -> float:
        return self.cpu if ARGS.clock == "cpu" else self.wall


def measured(cmd: list[str], cwd: Path) -> Measured:
    """Run cmd (stdout discarded) in a process of its own; its peak RSS and both clocks."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, *cmd],
        cwd=cwd,
        env=_child_env(),
        capture_output=True,
        text=True,
    )
    code, kib, cpu, wall = proc.stdout.split()
    if code != "0":
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({code}):\n{proc.stderr}")
    return Measured(int(kib), float(cpu), float(wall))


def json_vs_tables(rounds: int) -> list[Row]:
    """`bpcalc step NET --json` against `bpcalc step NET` (tables) on a batch of 64: time and
    peak memory of each command in a process of its own, the four commands rotating."""
    bp = _bpcalc_cmd()
    nets_ = {
        "MLP 784-128-10": (MEM_YAML, (784,)),
        "CNN conv8-pool2-dense10": (CNN_YAML, (1, 28, 28)),
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cmds: dict[tuple[str, str], list[str]] = {}
        for i, (label, (text, shape)) in enumerate(nets_.items()):
            sub = d / f"net{i}"
            sub.mkdir()
            rng = np.random.default_rng(2)
            np.savez(
                sub / "data.npz",
                x=rng.random((64, *shape), dtype=np.float32),
                y=rng.integers(0, 10, 64),
            )
            (sub / "net.yaml").write_text(text)
            cmds[label, "tables"] = [*bp, "step", str(sub / "net.yaml")]
            cmds[label, "json"] = [*bp, "step", str(sub / "net.yaml"), "--json"]
        for cmd in cmds.values():  # warm-up: bytecode and disk caches
            measured(cmd, d)
        runs: dict[tuple[str, str], list[Measured]] = {k: [] for k in cmds}
        keys = list(cmds)
        for r in range(rounds):
            for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
                runs[k].append(measured(cmds[k], d))
    for label in nets_:
        js, tb = runs[label, "json"], runs[label, "tables"]
        what = f"step --json vs tables: {label}, batch 64"
        ratio = statistics.median(a.seconds / b.seconds for a, b in zip(js, tb, strict=True))
        measured_ = (
            f"cpu {_med_ms(js, 'cpu')} vs {_med_ms(tb, 'cpu')}, "
            f"wall {_med_ms(js, 'wall')} vs {_med_ms(tb, 'wall')}"
        )
        rows.append(Row(f"{what} (time)", measured_, ratio, "<= 1.20", meets(ratio, "<= 1.20")))
        ratio = statistics.median(a.peak_kib / b.peak_kib for a, b in zip(js, tb, strict=True))
        peak = (
            f"{statistics.median(m.peak_kib for m in js) / 1024:.0f} MiB vs "
            f"{statistics.median(m.peak_kib for m in tb) / 1024:.0f} MiB peak RSS"
        )
        rows.append(Row(f"{what} (memory)", peak, ratio, "<= 1.50", meets(ratio, "<= 1.50")))
    return rows


def _med_ms(ms: list[Measured], clock: str) -> str:
    return f"{statistics.median(getattr(m, clock) for m in ms) * 1000:.0f} ms"


# --- training steps -----------------------------------------------------------------------

Step = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


def race(steps: dict[str, Step], data: list, rounds: int, per_round: int) -> dict[str, list[float]]:
    """steps/s of each contender per round, contenders alternating, order rotating."""
    for step in steps.values():  # warm-up: caches, thread pools, lazy initialisation
        for i in range(5):
            step(*data[i % len(data)])
    rate: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            step = steps[k]
            t = CLOCK()
            for i in range(per_round):
                step(*data[i % len(data)])
            rate[k].append(per_round / (CLOCK() - t))
    return rate


def same_losses(makers: dict[str, Callable[[], Step]], data: list) -> str:
    """Fresh contenders, three steps each: they must agree (same maths, same start)."""
    losses = {k: [make()(*data[i]) for i in range(3)] for k, make in makers.items()}
    first = next(iter(losses.values()))
    for k, v in losses.items():
        if not np.allclose(v, first, rtol=1e-4, atol=1e-5):
            raise SystemExit(f"bench: {k} disagrees on the first losses: {losses}")
    return "same first 3 losses: " + ", ".join(f"{v:.5f}" for v in first)


def training(kind: str, rounds: int, per_round: int, torch_note: str | None) -> list[Row]:
    net = nets.mlp() if kind == "mlp" else nets.cnn()
    shape = (784,) if kind == "mlp" else (1, 28, 28)
    data = nets.batches(shape)
    makers: dict[str, Callable[[], Step]] = {"bpcalc": lambda: loops.bpcalc_step(net)}
    if kind == "mlp":
        makers["numpy"] = lambda: loops.numpy_mlp_step(net)
    if torch_note is None:
        makers["torch"] = (
            (lambda: loops.torch_mlp_step(net))
            if kind == "mlp"
            else (lambda: loops.torch_cnn_step(net))
        )
    check = same_losses(makers, data)
    # one race per pair, bpcalc against one other contender at a time: in a three-way
    # rotation bpcalc would follow PyTorch more often than the NumPy loop does, and PyTorch's
    # OpenMP threads keep spinning for a while after its step, slowing whoever comes next
    races = {
        other: race({"bpcalc": makers["bpcalc"](), other: makers[other]()}, data, rounds, per_round)
        for other in makers
        if other != "bpcalc"
    }
    label = "MLP 784-128-10" if kind == "mlp" else "CNN conv8 3x3-relu-maxpool2-dense10"
    label = f"in-process {label}"
    rows = []
    others = [("torch", "PyTorch", ">= 1.00" if kind == "mlp" else ">= 0.50")]
    if kind == "mlp":
        others.insert(0, ("numpy", "the NumPy loop", ">= 0.90"))
    for key, name, target in others:
        what = f"{label}: bpcalc vs {name} (steps/s, batch 64, float32)"
        if key not in races:
            rows.append(
                Row(what, "", None, target, None, f"skipped: PyTorch not importable ({torch_note})")
            )
            continue
        rate = races[key]
        ratio = statistics.median(b / o for b, o in zip(rate["bpcalc"], rate[key], strict=True))
        measured = (
            f"{statistics.median(rate['bpcalc']):.0f} vs {statistics.median(rate[key]):.0f} steps/s"
        )
        rows.append(Row(what, measured, ratio, target, meets(ratio, target), check))
    return rows


# --- memory -------------------------------------------------------------------------------

MEM_YAML = """\
name: bench memory (784-128-10 on synthetic MNIST-shaped data)
inputs: {file: data.npz, key: x}
targets: {file: data.npz, key: y}
layers:
  - name: hidden
    type: dense
    units: 128
    init: {type: normal, std: 0.01, seed: 0}
    activation: relu
  - name: out
    type: dense
    units: 10
    init: {type: normal, std: 0.01, seed: 1}
    activation: softmax
loss: cross_entropy
learning_rate: 0.1
"""


def peak_rss_kib(cmd: list[str], cwd: Path) -> int:
    """The command's peak resident set size (ru_maxrss, KiB on Linux)."""
    return measured(cmd, cwd).peak_kib


def memory(samples: int) -> list[Row]:
    bp = _bpcalc_cmd()
    what = "memory: bpcalc train, peak RSS of 20 epochs vs 1 epoch"
    probe = subprocess.run([*bp, "train", "--help"], capture_output=True, cwd=ROOT)
    if probe.returncode != 0:
        return [Row(what, "", None, "<= 1.10", None, "skipped: this bpcalc has no train command")]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rng = np.random.default_rng(2)
        np.savez(
            d / "data.npz",
            x=rng.random((samples, 784), dtype=np.float32),
            y=rng.integers(0, 10, samples),
        )
        (d / "mem.yaml").write_text(MEM_YAML)
        base = [*bp, "train", "mem.yaml", "--batch-size", "64", "--epochs"]
        one = peak_rss_kib([*base, "1"], d)
        twenty = peak_rss_kib([*base, "20"], d)
    ratio = twenty / one
    measured = f"{twenty / 1024:.0f} MiB vs {one / 1024:.0f} MiB ({samples} samples)"
    return [Row(what, measured, ratio, "<= 1.10", meets(ratio, "<= 1.10"))]


# --- the whole train command --------------------------------------------------------------


@dataclass(frozen=True)
class TrainBench:
    """One training benchmark: a network of bench/nets.py, its data, the loops it races."""

    label: str
    net: str  # a name in bench/epochs.py's NETS
    batch: int
    epochs: int  # per process; the first is a warm-up, the rate is that of the others
    against: tuple[tuple[str, str], ...]  # (loop kind, target or REFERENCE)


TRAIN_BENCHES = (
    TrainBench("MLP 784-128-10", "mlp", 64, 4, (("numpy", ">= 0.90"), ("torch", ">= 1.00"))),
    TrainBench(
        "CNN conv8 3x3-relu-maxpool2-dense10",
        "cnn",
        64,
        4,
        (("torch", ">= 1.00"), ("numpy", REFERENCE)),
    ),
    TrainBench(
        "digits MLP 64-32-10", "digits-mlp", 32, 25, (("numpy", ">= 1.00"), ("torch", REFERENCE))
    ),
    TrainBench(
        "digits CNN conv8-pool2-dense10",
        "digits-cnn",
        32,
        25,
        (("numpy", ">= 1.00"), ("torch", REFERENCE)),
    ),
)
LOOP_NAMES = {"numpy": "the NumPy loop", "torch": "the PyTorch loop"}


def _train_data(bench: TrainBench, d: Path) -> int:
    """data.npz (x float32, y class indices) and net.yaml for `bpcalc train` and the loops
    alike; returns the number of samples. 28x28: 9,600 synthetic MNIST-shaped samples; the
    digits: the 1,497 training images of examples/digits, scaled to 0..1."""
    rng = np.random.default_rng(2)
    net = bench_net(bench)
    shape = tuple(net.spec.inputs.shape[1:])
    if bench.net.startswith("digits"):
        digits = np.load(ROOT / "examples" / "digits" / "digits.npz")
        x = (digits["train_images"].astype(np.float32) / 16).reshape(-1, *shape)
        y = digits["train_labels"].astype(np.int64)
    else:
        x = rng.random((9600, *shape), dtype=np.float32)
        y = rng.integers(0, 10, 9600)
    np.savez(d / "data.npz", x=x, y=y)
    (d / "net.yaml").write_text(net.train_yaml("data.npz"))
    return x.shape[0]


def bench_net(bench: TrainBench) -> nets.Net:
    import epochs

    return epochs.NETS[bench.net]()


def _rates(steps: int, seconds: list[float], cpu: list[float]) -> dict[str, float]:
    """steps/s over the epochs after the first, by each clock."""
    return {
        "wall": steps * (len(seconds) - 1) / sum(seconds[1:]),
        "cpu": steps * (len(cpu) - 1) / sum(cpu[1:]),
    }


def train_command(rounds: int, torch_note: str | None, peak: dict[str, float]) -> list[Row]:
    """`bpcalc train` itself (its --json epoch lines) against the loops' epochs, and the
    roofline of each network.

    Every contender is a fresh process of its own (the loops through bench/epochs.py),
    started in turn with the order rotating, on the same data file: the same allocator,
    caches and thread pools to begin with, and no PyTorch threads left spinning in another
    contender's process. A process's rate is its steps over its epochs after the first, by
    CPU time of the process and by elapsed time; a ratio is the median of the rounds' ratios
    by the chosen clock."""
    import json

    import roofline

    bp = _bpcalc_cmd()
    probe = subprocess.run([*bp, "train", "--help"], capture_output=True, cwd=ROOT)
    rows: list[Row] = []
    loop = [sys.executable, str(Path(__file__).with_name("epochs.py"))]
    for bench in TRAIN_BENCHES:
        what = f"{bench.label} via bpcalc train: vs {{}} (steps/s, batch {bench.batch})"
        if probe.returncode != 0:
            rows += [
                Row(what.format(LOOP_NAMES[k]), "", None, t, None, "skipped: no train command")
                for k, t in bench.against
            ]
            continue
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            n = _train_data(bench, d)
            steps = -(-n // bench.batch)
            count = str(bench.epochs)
            cmds = {
                "bpcalc": [*bp, "train", "net.yaml", "--batch-size", str(bench.batch)]
                + ["--epochs", count, "--json"],
            }
            for kind, _ in bench.against:
                if kind == "torch" and torch_note is not None:
                    continue
                cmds[kind] = [*loop, kind, str(d), count, "--net", bench.net]
                cmds[kind] += ["--batch", str(bench.batch), "--clocks"]
            rate: dict[str, list[dict[str, float]]] = {k: [] for k in cmds}
            names = list(cmds)
            for r in range(rounds):
                for k in names[r % len(names) :] + names[: r % len(names)]:
                    out = subprocess.run(
                        cmds[k], cwd=d, env=_child_env(), capture_output=True, text=True
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"bench: {' '.join(cmds[k])} failed:\n{out.stderr}")
                    if k == "bpcalc":
                        lines = [
                            json.loads(x) for x in out.stdout.splitlines() if x.startswith("{")
                        ]
                        seconds = [e["seconds"] for e in lines]
                        cpu = [e["cpu_seconds"] for e in lines]
                        rate[k].append(_rates(steps, seconds, cpu))
                    else:
                        per_epoch = json.loads(out.stdout)  # steps/s of each epoch
                        rate[k].append(
                            _rates(
                                steps,
                                [steps / v for v in per_epoch["wall"]],
                                [steps / v for v in per_epoch["cpu"]],
                            )
                        )
        note = (
            f"{n} samples, {steps} steps an epoch, epochs 2-{bench.epochs} of each process; "
            f"ratio by {ARGS.clock} time"
        )
        for kind, target in bench.against:
            w = what.format(LOOP_NAMES[kind])
            if kind not in rate:
                rows.append(Row(w, "", None, target, None, "skipped: no PyTorch"))
                continue
            ours, theirs = rate["bpcalc"], rate[kind]
            ratio = statistics.median(
                b[ARGS.clock] / o[ARGS.clock] for b, o in zip(ours, theirs, strict=True)
            )
            measured_ = ", ".join(
                f"{c} {statistics.median(b[c] for b in ours):.0f} vs "
                f"{statistics.median(o[c] for o in theirs):.0f}"
                for c in ("cpu", "wall")
            )
            ok = None if target == REFERENCE else meets(ratio, target)
            rows.append(Row(w, measured_, ratio, target, ok, note))
        rows.append(_roofline_row(bench, rate["bpcalc"], peak, roofline))
    return rows


def _roofline_row(
    bench: TrainBench, rates: list[dict[str, float]], peak: dict[str, float], roofline: Any
) -> Row:
    """FLOPs a step needs (from the shapes), the GFLOP/s bpcalc reaches, the machine's peak."""
    net = bench_net(bench)
    prods = roofline.products(net.spec, bench.batch)
    flop = roofline.flops(prods)
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    limit = roofline.products_rate(prods, clock)
    ours = flop * statistics.median(r[ARGS.clock] for r in rates) / 1e9
    top = peak[ARGS.clock]
    return Row(
        f"roofline: {bench.label}, batch {bench.batch} (bpcalc train)",
        f"{flop / 1e6:.1f} MFLOP/step, {ours:.1f} of {top:.0f} GFLOP/s",
        ours / top,
        REFERENCE,
        None,
        f"share of the float32 matmul peak; the step's {len(prods)} matrix products alone, at "
        f"their shapes: {limit:.1f} GFLOP/s ({limit / top:.0%} of peak): bpcalc's step takes "
        f"{limit / ours:.2f} x their time",
    )


# --- the report ---------------------------------------------------------------------------


def blas_info() -> str:
    """Which OpenBLAS kernel and how many threads NumPy runs (from its bundled library)."""
    import ctypes
    import glob

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "libscipy_openblas*"))
    if not libs:
        return "NumPy BLAS: unknown"
    lib = ctypes.CDLL(libs[0])
    try:
        lib.scipy_openblas_get_corename64_.restype = ctypes.c_char_p
        core = lib.scipy_openblas_get_corename64_().decode()
        threads = lib.scipy_openblas_get_num_threads64_()
    except AttributeError:
        return "NumPy BLAS: OpenBLAS"
    return f"NumPy {np.__version__}, OpenBLAS kernel {core}, {threads} threads"


def main() -> int:
    only = {s.strip() for s in ARGS.only.split(",")}
    rounds = 5 if ARGS.quick else 15
    torch_note = loops.torch_available()
    header = [
        f"threads: {ARGS.threads} (OMP/OpenBLAS/MKL_NUM_THREADS, torch.set_num_threads); "
        f"clock: {ARGS.clock}; load average before: {os.getloadavg()[0]:.2f}",
        blas_info(),
    ]
    if torch_note is None:
        import torch

        torch.set_num_threads(ARGS.threads)
        header.append(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        header.append(f"PyTorch: not importable ({torch_note}); its rows are skipped")
    if "OPENBLAS_CORETYPE" in os.environ:
        header.append(
            f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set and slows NumPy; "
            "run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` to measure the native kernel"
        )
    header.append(f"bpcalc training step: {loops.bpcalc_trainer_kind()}")
    peak: dict[str, float] = {}
    if "train" in only:
        import roofline

        peak = {
            "cpu": roofline.matmul_peak(time.process_time),
            "wall": roofline.matmul_peak(time.perf_counter),
        }
        header.append(
            f"float32 matmul peak (1024 x 1024 by 1024 x 1024, {ARGS.threads} thread(s)): "
            f"{peak['cpu']:.0f} GFLOP/s by CPU time, {peak['wall']:.0f} by elapsed time"
        )
    if os.getloadavg()[0] >= 0.5:
        header.append(
            "note: other work is running (load average above); the figures are noisy, and "
            "multi-threaded BLAS and OpenMP suffer most: one thread and CPU time (the "
            "defaults) are steadier"
        )
    print("\n".join(header), flush=True)

    rows: list[Row] = []
    if "startup" in only:
        with tempfile.TemporaryDirectory() as tmp:
            rows += startup(11 if ARGS.quick else 31, Path(tmp))
    if "json" in only:
        rows += json_vs_tables(3 if ARGS.quick else 7)
    if "mlp" in only:
        rows += training("mlp", rounds, 40 if ARGS.quick else 100, torch_note)
    if "cnn" in only:
        rows += training("cnn", rounds, 10 if ARGS.quick else 25, torch_note)
    if "train" in only:
        rows += train_command(3 if ARGS.quick else 5, torch_note, peak)
    if "memory" in only:
        rows += memory(3200)

    print()
    w = max(len(r.what) for r in rows)
    m = max(34, *(len(r.measured) for r in rows))
    print(f"{'comparison':<{w}}  {'measured (medians)':<{m}}  {'ratio':>6}  {'target':>8}  result")
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        result = (
            "ok"
            if r.ok
            else "MISSED"
            if r.ok is not None
            else "reference"
            if r.target == REFERENCE
            else "skipped"
        )
        print(f"{r.what:<{w}}  {r.measured:<{m}}  {ratio:>6}  {r.target:>8}  {result}")
        if r.note:
            print(f"{'':<{w}}  {r.note}")
    missed = [r for r in rows if r.ok is False]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} rows met their target, were skipped or are references; {len(missed)} missed."
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
