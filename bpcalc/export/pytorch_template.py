# ruff: noqa: F401, F821
# The fixed part of every script `bpcalc export --to pytorch` writes. bpcalc never imports this
# file (it needs torch): bpcalc/export/pytorch.py reads it as text, keeps the optional blocks
# the network needs ("# {{if NAME}}" ... "# {{end NAME}}"), and writes the network's own
# section (its data, the nn.Module, the loss and the optimizer) where "# {{network}}" stands.
# The names that section defines (Net, LAYERS, training_data, ...) are what F821 would flag.
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
EPS = 1e-12  # bpcalc clamps a probability of 0 at this in ∂L/∂p (bpcalc/losses.py: EPS)


def fail(message: str) -> None:
    """Bad usage: one line on stderr, exit code 2 (as bpcalc)."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    sys.exit(2)


def tensor(values) -> torch.Tensor:
    """A float64 tensor of exactly these numbers."""
    return torch.tensor(np.asarray(values, dtype=np.float64))


@dataclass(frozen=True)
class Layer:
    """How bpcalc names a layer's values: <name>.z, <name>.a, grad.<name>.input, ...

    params, buffers: bpcalc's parameter names, in its order; extras: other values the layer
    records in the forward pass, as (suffix, one per sample?); shown_in, shown_out: the shape
    of one sample's input and output as the file writes them (an image given as H x W has no
    channel axis)."""

    name: str
    params: tuple[str, ...] = ()
    buffers: tuple[str, ...] = ()
    extras: tuple[tuple[str, bool], ...] = ()
    has_z: bool = False
    shown_in: tuple[int, ...] = ()
    shown_out: tuple[int, ...] = ()


# How a parameter in PyTorch's layout is shown as the file writes it (numpy in, numpy out).
def as_written(shape):
    return lambda a: a.reshape(shape)


def transposed(shape):
    """layout: in_out: the file's W is in x out (z = x·W + b), nn.Linear keeps out x in."""
    return lambda a: a.T.reshape(shape)


def flipped(shape):
    """flip: true: the file's kernel is convolved (rotated 180°); nn.Conv2d cross-correlates
    with the flipped kernel, which is flipped back to be shown."""
    return lambda a: a[:, :, ::-1, ::-1].reshape(shape)


class Recorded(nn.Module):
    """An nn.Module that can keep its intermediate tensors under bpcalc's value names.

    With `seen` a dict, forward() stores each <layer>.z and <layer>.a there and asks autograd
    to keep their gradients (retain_grad): that is how the script shows grad.<layer>.a and
    grad.<layer>.z, which PyTorch computes but frees. With `seen` None it costs nothing."""

    seen: dict | None = None

    def see(self, name: str, t: torch.Tensor) -> torch.Tensor:
        if self.seen is not None:
            if t.requires_grad:
                t.retain_grad()
            self.seen[name] = t
        return t

    # {{if batchnorm}}
    def see_batchnorm(self, name: str, bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor):
        """bn.mean, bn.var and bn.xhat as bpcalc shows them: nn.BatchNorm computes the batch
        mean and the biased variance inside its kernel and shows neither, so they are
        recomputed here (for the record only; the forward pass is nn.BatchNorm's)."""
        if self.seen is None or not bn.training:
            return
        axes = (0,) if x.dim() == 2 else (0, 2, 3)
        x = x.detach()
        mean = x.mean(dim=axes)
        var = x.var(dim=axes, unbiased=False)
        shape = (1, -1) if x.dim() == 2 else (1, -1, 1, 1)
        xhat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + bn.eps)
        self.seen.update({f"{name}.mean": mean, f"{name}.var": var, f"{name}.xhat": xhat})

    # {{end batchnorm}}


# {{if dropout}}
class Dropout(nn.Module):
    """Inverted dropout as bpcalc (and nn.Dropout): a = x ⊙ m / (1 − p), m = 1 kept, 0 dropped.

    nn.Dropout draws its mask from torch's generator. bpcalc takes the file's mask, or keeps a
    unit when u ≥ p for u from numpy.random.default_rng(seed); this module does the same, so
    the numbers match. begin_step(samples) chooses a step's mask (bpcalc uses it for the step
    and for the loss after its update); without one, a training forward pass draws a mask of
    its own. In evaluation mode it is the identity."""

    def __init__(self, p: float, sample_shape: tuple[int, ...], seed: int = 0, masks=None):
        super().__init__()
        self.p = p
        self.sample_shape = tuple(sample_shape)
        self.rng = np.random.default_rng(seed)
        self.masks = None if masks is None else np.asarray(masks, dtype=np.float64)
        self.mask: torch.Tensor | None = None  # this step's, (N, *sample_shape)
        self.last_mask: torch.Tensor | None = None  # the one the last forward pass used

    def begin_step(self, samples: np.ndarray) -> None:
        n = len(samples)
        if self.masks is None:
            m = (self.rng.random((n, *self.sample_shape)) >= self.p).astype(np.float64)
        elif self.masks.shape[0] == 1:  # one mask for every sample
            m = np.repeat(self.masks, n, axis=0)
        else:  # one mask per sample of the data
            m = self.masks[np.asarray(samples)]
        self.mask = torch.from_numpy(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        mask = self.mask
        if mask is None or tuple(mask.shape) != tuple(x.shape):
            self.begin_step(np.arange(x.shape[0]))
            mask, self.mask = self.mask, None  # drawn for this pass only
        mask = mask.to(device=x.device, dtype=x.dtype)
        self.last_mask = mask
        return x * mask * (1.0 / (1.0 - self.p))


# {{end dropout}}
# {{if files}}
def read_array(path: Path, fmt: str, key: str | None = None) -> np.ndarray:
    """An array from .npy, .npz, .csv (a first line of column names is skipped) or MNIST's
    IDX format (gzipped or not), as bpcalc reads them."""
    if fmt == "npy":
        return np.load(path, allow_pickle=False)
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as npz:
            return npz[key if key is not None else npz.files[0]]
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        import gzip

        raw = gzip.decompress(raw)
    if fmt == "csv":
        import io

        text = raw.decode("utf-8-sig")
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        try:
            [float(f) for f in lines[0].split(",")]
            skip = 0
        except ValueError:
            skip = 1  # a line of column names
        body = "\n".join(lines[skip:])
        arr = np.loadtxt(io.StringIO(body), delimiter=",", ndmin=2)
        return arr[:, 0] if arr.shape[1] == 1 else arr
    types = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    dtype, ndim = np.dtype(types[raw[2]]), raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=4 + 4 * ndim)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def load_reference(ref: dict, data_dir: Path) -> np.ndarray:
    """The data a bpcalc file reference describes, in bpcalc's order: the array (key), one
    sample (single), columns, limit, one_hot, then x / scale, (x − mean) / std in float64,
    then flatten or shape."""
    arr = read_array(data_dir / ref["file"], ref["format"], ref.get("key"))
    if ref.get("single"):
        arr = arr[None, ...]
    if "columns" in ref:
        arr = arr[:, ref["columns"]]
    if "limit" in ref:
        arr = arr[: ref["limit"]]
    if "one_hot" in ref:
        arr = np.eye(ref["one_hot"])[arr.reshape(len(arr)).astype(np.int64)]
    x = arr.astype(np.float64)
    if "scale" in ref:
        x /= ref["scale"]
    if "normalize" in ref:
        x -= ref["normalize"]["mean"]
        x /= ref["normalize"]["std"]
    if ref.get("flatten"):
        x = x.reshape(len(x), -1)
    if "shape" in ref:
        x = x.reshape(len(x), *ref["shape"])
    return x


def class_indices(labels: np.ndarray, classes: int) -> np.ndarray:
    """Whole numbers 0..K−1, one per sample, as one-hot rows (bpcalc reads a file of labels
    for a cross_entropy network this way)."""
    return np.eye(classes)[labels.reshape(len(labels)).astype(np.int64)]


# {{end files}}
# {{network}}


# --- the step: bpcalc step NET --json, in PyTorch ---------------------------------------------


def schedule(n: int, mode: str, batch_size: int | None, shuffle: bool, seed: int):
    """The samples of each step, as bpcalc takes them: all (batch), one (sgd) or batch_size
    (minibatch), in order or shuffled every epoch by numpy.random.default_rng(seed), wrapping
    around; a last batch that does not fill up is smaller."""
    size = n if mode == "batch" else 1 if mode == "sgd" else batch_size
    rng = np.random.default_rng(seed) if shuffle and size < n else None
    while True:
        order = rng.permutation(n) if rng is not None else np.arange(n)
        for start in range(0, n, size):
            yield order[start : start + size]


def batches_line(n: int, mode: str, batch_size: int | None, shuffle: bool, seed: int) -> str:
    """bpcalc's conventions line for the batches (bpcalc/batching.py: describe)."""
    size = n if mode == "batch" else 1 if mode == "sgd" else batch_size
    what = {
        "batch": f"batch gradient descent: every step uses all {n} samples",
        "sgd": "stochastic gradient descent: every step uses one sample",
        "minibatch": f"mini-batch gradient descent: every step uses {size} samples",
    }[mode]
    if mode != "batch":
        what += f", {-(-n // size)} steps per epoch"
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


class Values(dict):
    """The step's values under bpcalc's names, as float64 numpy arrays of the shape bpcalc
    shows: one sample's shape (with the batch axis first when the file gives inputs:)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def add(self, name: str, value, shape: tuple[int, ...], per_sample: bool = False) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu", torch.float64).numpy()
        full = ((self.n,) if BATCHED else ()) + tuple(shape) if per_sample else tuple(shape)
        self[name] = np.array(value, dtype=np.float64).reshape(full)


def parameters_shown(model: Net) -> dict[str, np.ndarray]:
    """Every parameter and buffer under its bpcalc name, as the file writes it."""
    out = {}
    for name, (t, show) in {**model.file_parameters(), **model.file_buffers()}.items():
        out[name] = show(t.detach().to("cpu", torch.float64).numpy().copy())
    return out


class RunningStatisticsKept:
    """bpcalc's loss after the update is a second training-mode pass that leaves batchnorm's
    running statistics as the step made them; nn.BatchNorm would update them again."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.saved = {k: b.clone() for k, b in self.model.named_buffers()}

    def __exit__(self, *exc):
        with torch.no_grad():
            for k, b in self.model.named_buffers():
                b.copy_(self.saved[k])


class FrozenGradientsShown:
    """bpcalc shows the gradient of a frozen parameter too; PyTorch computes none for a
    parameter with requires_grad=False. For the recorded pass they are switched on; the
    optimizer never holds them, so they are still not updated."""

    def __init__(self, model: Net):
        self.frozen = [t for name, (t, _) in model.file_parameters().items() if name in FROZEN]

    def __enter__(self):
        for t in self.frozen:
            t.grad = None
            t.requires_grad_(True)

    def __exit__(self, *exc):
        for t in self.frozen:
            t.requires_grad_(False)  # .grad stays, to be shown


def full_loss(model: Net, x: torch.Tensor, y: torch.Tensor) -> float:
    """L (with any penalty) for these samples, without gradients."""
    with torch.no_grad():
        return (reduce(loss_per_sample(model(x), y)) + penalty(model)).item()


def one_step(model: Net, optimizer, x_np, y_np, device, everything) -> Values:
    """One forward / loss / backward / update / loss-after step, every value recorded."""
    n = x_np.shape[0]
    values = Values(n)
    x = torch.tensor(x_np, device=device).requires_grad_(True)
    y = torch.tensor(y_np, device=device)
    before = parameters_shown(model)
    model.seen = {}
    with FrozenGradientsShown(model):
        out = model(x)
        per = loss_per_sample(out, y)
        data_loss = reduce(per)
        pen = penalty(model)
        optimizer.zero_grad()
        data_loss.backward()  # the penalty's gradient is added below, or by weight_decay
    seen, model.seen = model.seen, None

    # forward: each layer's parameters, the values it records, z and a
    values.add("input", x_np, SHOWN_INPUT, per_sample=True)
    for layer in LAYERS:
        for p in layer.params + layer.buffers:
            key = f"{layer.name}.{p}"
            values.add(key, before[key], before[key].shape)
        for suffix, per_sample in layer.extras:
            t = seen[f"{layer.name}.{suffix}"]
            values.add(
                f"{layer.name}.{suffix}", t, layer.shown_out if per_sample else (-1,), per_sample
            )
        if layer.has_z:
            values.add(f"{layer.name}.z", seen[f"{layer.name}.z"], layer.shown_out, True)
        values.add(f"{layer.name}.a", seen[f"{layer.name}.a"], layer.shown_out, True)
    values.add("target", y_np, LAYERS[-1].shown_out, per_sample=True)
    if BATCHED:
        values.add("loss.per_sample", per, (), per_sample=True)
    if REGULARIZATION:
        values.add("loss.data", data_loss, ())
        values.add("loss.penalty", pen, ())
    values.add("loss", data_loss + pen, ())

    # backward: from the loss back to the input, layer by layer
    params = model.file_parameters()
    grads = {}
    for i in range(len(LAYERS) - 1, -1, -1):
        layer = LAYERS[i]
        a = seen[f"{layer.name}.a"]
        if i == len(LAYERS) - 1 and FUSED:
            da = output_grad(a.detach(), y)  # PyTorch never forms ∂L/∂p: the loss takes z
        else:
            da = a.grad
        values.add(f"grad.{layer.name}.a", da, layer.shown_out, True)
        if layer.has_z:
            values.add(f"grad.{layer.name}.z", seen[f"{layer.name}.z"].grad, layer.shown_out, True)
        for p in layer.params:
            key = f"{layer.name}.{p}"
            t, show = params[key]
            g = show(t.grad.detach().cpu().numpy().copy())
            if key in REGULARIZATION:  # ∂L/∂θ = ∂L_data/∂θ + λ₂·θ + λ₁·sign(θ)
                l2, l1 = REGULARIZATION[key]
                extra = show((l2 * t + l1 * torch.sign(t)).detach().cpu().numpy())
                values.add(f"grad.{key}.data", g, g.shape)
                values.add(f"grad.{key}.penalty", extra, g.shape)
                g = g + extra
            grads[key] = g
            values.add(f"grad.{key}", g, g.shape)
        x_in = seen[f"{LAYERS[i - 1].name}.a"] if i > 0 else x
        values.add(f"grad.{layer.name}.input", x_in.grad, layer.shown_in, True)

    # update: the optimizer of torch.optim; explicit penalty terms first (see add_penalty_grads)
    add_penalty_grads(model)
    optimizer.step()
    after = parameters_shown(model)
    for layer in LAYERS:
        for p in layer.params:
            key = f"{layer.name}.{p}"
            t, show = params[key]
            if key not in FROZEN:
                for slot, value in optimizer_state(optimizer, t).items():
                    shown = show(value.detach().cpu().numpy().copy())
                    values.add(f"state.{key}.{slot}", shown, shown.shape)
            values.add(f"new.{key}", after[key], after[key].shape)
        for b in layer.buffers:
            key = f"{layer.name}.{b}"
            values.add(f"new.{key}", after[key], after[key].shape)

    # the loss after the update: the same samples (and dropout masks), training mode
    with RunningStatisticsKept(model):
        values.add("loss_after", full_loss(model, x.detach(), y), ())
    if everything is not None:  # the step used part of the data: L over all of it
        model.eval()  # no dropout, batchnorm on its running statistics
        x_all, y_all = (torch.tensor(a, device=device) for a in everything)
        values.add("dataset_loss_after", full_loss(model, x_all, y_all), ())
        model.train()
    return values


def run_steps(args) -> dict:
    """The document `bpcalc step NET --json` prints, computed by PyTorch."""
    device = torch.device(args.device)
    x_all, y_all = training_data(args.data_dir)
    n = x_all.shape[0]
    mode, size = MODE, BATCH_SIZE
    if args.mode is not None or args.batch_size is not None:
        mode = args.mode or ("minibatch" if args.batch_size is not None else MODE)
        size = args.batch_size if args.batch_size is not None else BATCH_SIZE
        size = size if mode == "minibatch" else None
        if mode == "minibatch" and size is None:
            fail("--mode minibatch needs --batch-size")
        if size is not None and size > n:
            fail(f"--batch-size {size} is larger than the data ({n})")
    conventions = dict(CONVENTIONS)
    if "batches" in conventions:
        conventions["batches"] = batches_line(n, mode, size, SHUFFLE, SEED)
    model = Net().to(device)
    optimizer = make_optimizer(model)
    order = schedule(n, mode, size, SHUFFLE, SEED)
    steps = []
    for k in range(1, args.steps + 1):
        idx = next(order)
        for m in model.modules():
            if hasattr(m, "begin_step"):  # dropout: this step's mask
                m.begin_step(idx)
        everything = (x_all, y_all) if BATCHED and len(idx) < n else None
        values = one_step(model, optimizer, x_all[idx], y_all[idx], device, everything)
        entry = {"step": k, "values": {k2: v.tolist() for k2, v in values.items()}}
        if BATCHED:
            entry["samples"] = idx.tolist()
        steps.append(entry)
    return {"bpcalc": BPCALC, "network": NETWORK, "conventions": conventions, "steps": steps}


def print_steps(doc: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(doc, allow_nan=False, ensure_ascii=False, indent=1))
        return
    print(f"{doc['network']} (PyTorch {torch.__version__}, float64)")
    for step in doc["steps"]:
        print(
            f"step {step['step']}" + (f", samples {step['samples']}" if "samples" in step else "")
        )
        for name, value in step["values"].items():
            text = np.array2string(np.asarray(value), precision=6, threshold=20)
            print(f"  {name} = " + text.replace("\n", "\n  " + " " * (len(name) + 3)))


# --- training: DataLoader, any device, torchrun -----------------------------------------------


class EpochShuffle(torch.utils.data.Sampler):
    """The order bpcalc train takes the samples in: a new numpy.random.default_rng(seed)
    permutation every epoch (so a float64 run here follows bpcalc train --dtype float64)."""

    def __init__(self, n: int, seed: int):
        self.n = n
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        return iter(self.rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def count_correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Samples the network gets right, as bpcalc train counts them (see ACCURACY)."""
    a, y = network_output(out).flatten(1), y.flatten(1)
    if ACCURACY == "argmax":
        return (a.argmax(dim=1) == y.argmax(dim=1)).sum()
    if ACCURACY == "threshold":
        return ((a >= 0.5) == (y >= 0.5)).all(dim=1).sum()
    return torch.zeros((), dtype=torch.int64, device=a.device)


def evaluate(model: Net, x: torch.Tensor, y: torch.Tensor, batch: int = 1024):
    """(mean per-sample loss, accuracy or None) in evaluation mode, no update."""
    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = model(x[i : i + batch])
            total += loss_per_sample(out, y[i : i + batch]).sum().item()
            correct += int(count_correct(out, y[i : i + batch]))
    model.train()
    return total / x.shape[0], (correct / x.shape[0] if ACCURACY else None)


def train(args) -> None:
    """bpcalc train NET --json in PyTorch: one JSON line per epoch (rank 0 under torchrun)."""
    import torch.distributed as dist
    from torch.utils.data import DataLoader, TensorDataset

    # torchrun sets these; then each process trains on its share of every batch (DDP)
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    rank, world = 0, 1
    device = torch.device(args.device)
    if distributed:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    epochs = args.epochs or TRAIN["epochs"]
    if epochs is None:
        fail("how many epochs? give --epochs N")
    x, y = training_data(args.data_dir)
    n = x.shape[0]
    batch = min(args.batch_size or TRAIN["batch_size"], n)
    lr = args.lr
    shuffle = TRAIN["shuffle"] if args.shuffle is None else args.shuffle
    seed = TRAIN["seed"] if args.seed is None else args.seed
    data = TensorDataset(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype))
    if distributed:
        # every process takes 1/world of the samples; the file's batch is split across them,
        # and DDP averages the gradients, so one update equals one update of the whole batch
        sampler = torch.utils.data.DistributedSampler(data, world, rank, shuffle=shuffle, seed=seed)
        per_process = -(-batch // world)
    else:
        sampler = EpochShuffle(n, seed) if shuffle else None
        per_process = batch
    loader = DataLoader(data, batch_size=per_process, sampler=sampler)
    test = test_data(args.data_dir)
    if test is not None:
        test = tuple(torch.tensor(t, dtype=dtype, device=device) for t in test)

    net = Net().to(device=device, dtype=dtype)
    model = net
    if distributed:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    optimizer = make_optimizer(net, lr)
    lr = optimizer.param_groups[0]["lr"]
    # with reduction: sum, DDP's average over the processes would divide the sum by world
    factor = world if REDUCTION == "sum" else 1
    for epoch in range(1, epochs + 1):
        start, cpu_start = time.perf_counter(), time.process_time()
        if distributed:
            sampler.set_epoch(epoch)
        total = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            per = loss_per_sample(out, yb)
            loss = reduce(per) * factor
            optimizer.zero_grad()
            loss.backward()
            add_penalty_grads(net)
            optimizer.step()
            total += per.detach().sum()
            correct += count_correct(out.detach(), yb)
        if distributed:
            for t in (total, correct):
                dist.all_reduce(t)
        train_loss = total.item() / n
        if not math.isfinite(train_loss):
            fail(f"the loss became {train_loss} at epoch {epoch}")
        test_loss = test_acc = None
        if test is not None and rank == 0:
            test_loss, test_acc = evaluate(net, *test)
        line = {
            "epoch": epoch,
            "epochs": epochs,
            "train_loss": train_loss,
            "train_accuracy": correct.item() / n if ACCURACY else None,
            "test_loss": test_loss,
            "test_accuracy": test_acc,
            "seconds": round(time.perf_counter() - start, 4),
            "cpu_seconds": round(time.process_time() - cpu_start, 4),
            "dtype": args.dtype,
            "batch_size": batch,
            "lr": lr,
            "samples": n,
        }
        if rank == 0:
            if args.json:
                print(json.dumps(line, allow_nan=False), flush=True)
            else:
                acc = (
                    ""
                    if line["train_accuracy"] is None
                    else f", accuracy {100 * line['train_accuracy']:.2f} %"
                )
                tst = "" if test_loss is None else f"; test loss {test_loss:.4f}"
                tst += "" if test_acc is None else f", accuracy {100 * test_acc:.2f} %"
                print(
                    f"epoch {epoch}/{epochs}: loss {train_loss:.4f}{acc}{tst} ({line['seconds']:.2f} s)",
                    flush=True,
                )
    if distributed:
        dist.barrier()  # rank 0 may still be testing: leave together
        dist.destroy_process_group()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=f"{NETWORK}: the bpcalc network in PyTorch (see the top of this file).",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--step", action="store_true", help="one step as bpcalc step (default)")
    what.add_argument("--train", action="store_true", help="train as bpcalc train")
    parser.add_argument("--json", action="store_true", help="JSON, as bpcalc's --json")
    parser.add_argument("--steps", "-n", type=int, default=1, help="updates to run (step)")
    parser.add_argument("--mode", choices=("batch", "sgd", "minibatch"), help="samples per step")
    parser.add_argument("--batch-size", "-b", type=int, help="samples per step or update")
    parser.add_argument("--epochs", "-e", type=int, help="passes over the data (train)")
    parser.add_argument("--lr", type=float, help="learning rate instead of the file's (train)")
    parser.add_argument("--seed", type=int, help="shuffling seed instead of the file's (train)")
    parser.add_argument(
        "--shuffle", action=argparse.BooleanOptionalAction, help="reshuffle every epoch (train)"
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default="float32",
        help="train's arithmetic (the step is always float64)",
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="cpu, cuda, cuda:1, ... (default: cuda when there is one)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=HERE,
        help="the folder the data paths start from (default: this script's)",
    )
    args = parser.parse_args(argv)
    for option in ("steps", "batch_size", "epochs"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} should be at least 1")
    if args.lr is not None and not args.lr > 0:
        parser.error("--lr should be greater than 0")
    if args.train:
        train(args)
    else:
        print_steps(run_steps(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
