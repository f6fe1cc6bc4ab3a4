"""Sizes from shapes, before anything is allocated: the memory budget and the printed budget.

From the network file alone bpcalc knows every tensor's shape, so it can say what a command
will need before it allocates any of it, and refuse, with one message at the offending line,
what would not fit:

  memory   the arrays of a run: the data, the parameters, every value a step records (with
           --steps, every step's), the working arrays of the computation (conv's patch
           matrix), and what the output holds while it is written (JSON text).
           Default 1 GiB; `--max-memory 4GiB` raises it.
  printed  what tables, write-ups and --explain would print (a person reads them; rich takes
           about 10 µs a number). Default 8 MiB of text; `--max-output 64MiB` raises it.

The estimates are upper bounds of what the engine does (tests/test_budget_and_bombs.py
measures steps against their estimates): a step records for every layer its output, z, the
gradients of both and of its input (RECORDED_PER_OUT, RECORDED_PER_IN numbers per sample),
for every parameter its value, gradient and new value, the optimizer's state and the
penalty's gradients (PARAM_ARRAYS), holds the working arrays of its caches twice (the step's
forward and the forward after the update) and copies of the input (INPUT_COPIES). While a
network file is parsed, before the optimizer is known, a parameter counts PARSE_PER_PARAM
times: no command needs less. The limits are per process, set by the command line (`using`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bpcalc.errors import Location, SpecError, UsageError

DEFAULT_MEMORY = 1 << 30  # bytes of arrays
DEFAULT_OUTPUT = 8 << 20  # characters of tables, write-ups and explanations

RECORDED_PER_OUT = 5  # z, a, ∂L/∂a, ∂L/∂z, (the mask or x̂ of dropout and batchnorm)
RECORDED_PER_IN = 1  # ∂L/∂x
# Arrays of a parameter's size in a step (recorded, held besides). Recorded: θ, ∂L/∂θ, θ′ and
# the optimizer's slots (adam: m, v, m̂, v̂); held: the spec's θ, the run's copy, the carried
# state, the update's temporaries. A penalty adds (2, 1): ∂L/∂θ of the data and the penalty.
PARAM_ARRAYS = {
    "sgd": (3, 5),
    "momentum": (4, 6),
    "nesterov": (4, 7),
    "rmsprop": (4, 7),
    "adam": (7, 10),
}
PENALTY_ARRAYS = (2, 1)
PARSE_PER_PARAM = 2  # the drawn float64 array and one more its size: what any command needs
INPUT_COPIES = 5  # the file's array, the input as float64, the batch, its rounding, ∂L/∂x
YAML_BYTES_PER_VALUE = 320  # a number read from YAML: the float, its list slot, its location
JSON_BYTES_PER_NUMBER = 16  # --json: each value's text while orjson writes it, one at a time
CHARS_PER_NUMBER = 4  # a number in a table besides its decimals: sign, digits, spacing
TRAIN_PER_PARAM = 14  # train: θ, ∂L/∂θ, optimizer state and temporaries in the training dtype
EPOCH_RECORD_BYTES = 1024  # `bpcalc train`: what one epoch's result keeps
EPOCH_PRINTED = 80  # `bpcalc train`: one row of the epoch table


@dataclass(frozen=True)
class Limits:
    memory: int = DEFAULT_MEMORY
    output: int = DEFAULT_OUTPUT


_LIMITS: ContextVar[Limits] = ContextVar("bpcalc_limits", default=Limits())  # noqa: B039


def limits() -> Limits:
    return _LIMITS.get()


def set_limits(memory: int | None = None, output: int | None = None) -> None:
    """Change the limits of this context (the CLI's --max-memory and --max-output)."""
    now = _LIMITS.get()
    _LIMITS.set(Limits(memory or now.memory, output or now.output))


@contextmanager
def using(memory: int | None = None, output: int | None = None) -> Iterator[Limits]:
    """The limits for the code inside (the CLI wraps each command in it)."""
    now = _LIMITS.get()
    new = Limits(memory if memory is not None else now.memory, output or now.output)
    token = _LIMITS.set(new)
    try:
        yield new
    finally:
        _LIMITS.reset(token)


# --- sizes as text -------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})
_UNITS.update({"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4})
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, option: str) -> int:
    """'4GiB', '512MiB', '2G' (10⁹), '1.5e9', '4096' -> bytes; UsageError naming `option`."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise UsageError(
            f"{option} should be a size such as 4GiB, 512MiB, 2G or 3000000000 (bytes), "
            f"found {text!r}"
        )
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1 << 20:
        raise UsageError(f"{option} should be at least 1MiB, found {text!r}")
    return int(min(value, 1 << 62))


def physical_memory() -> int | None:
    """This computer's memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def parse_memory(text: str, option: str = "--max-memory") -> int:
    """parse_size, and no more than the computer has: a budget beyond it would let bpcalc
    start what can only end in 'out of memory'."""
    size = parse_size(text, option)
    have = physical_memory()
    if have is not None and size > have:
        raise UsageError(
            f"{option} {text} is more than this computer's memory ({size_text(have)}); "
            f"at most {size_text(have)}"
        )
    return size


def size_text(n: int | float) -> str:
    """Bytes for people: 512 bytes, 3.5 KiB, 7.45 GiB; astronomical sizes as 1.2e+22 GiB."""
    if n < 1024:
        return f"{int(n)} bytes"
    if n > 1 << 1000:  # beyond float64: 10^k bytes
        return f"about 10^{len(str(int(n))) - 1} bytes"
    for unit, scale in (("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30)):
        if n < 1024 * scale or unit == "GiB":
            v = n / scale
            if v >= 1e6:
                return f"{v:.3g} {unit}"
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    raise AssertionError  # pragma: no cover


def suggest(need: int | float) -> str:
    """A neat --max-memory/--max-output value above `need`: the next power of two in MiB/GiB."""
    mib = max(1, math.ceil(need / (1 << 20)))
    p = 1 << (mib - 1).bit_length()
    return f"{p // 1024}GiB" if p >= 1024 else f"{p}MiB"


def over_memory(need: int | float) -> str:
    """', more than the memory budget of 1 GiB; raise it with --max-memory 8GiB' (or why not)."""
    lim = limits().memory
    if need > (1 << 50):  # a petabyte: no limit helps, the input is a mistake
        return f", more than the memory budget of {size_text(lim)} (and than any computer has)"
    have = physical_memory()
    if have is not None and need > have:
        return (
            f", more than the memory budget of {size_text(lim)} and than this computer's "
            f"{size_text(have)}"
        )
    return (
        f", more than the memory budget of {size_text(lim)}; raise it with "
        f"--max-memory {suggest(need)} if the computer has that much"
    )


def over_output(need: int | float, narrow: str) -> str:
    lim = limits().output
    hint = f"{narrow}, or raise the limit with --max-output {suggest(need)}"
    return f", more than the {size_text(lim)} limit for printed output; {hint}"


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(str(int(s)) for s in shape)


# --- shapes -> numbers ---------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """A layer's numbers: `params` in its parameters; per sample, `inp` in and `out` out, and
    `work` held by its computation beyond those (conv's padded input and patch matrix)."""

    params: int
    inp: int
    out: int
    work: int = 0


def layer_cost(layer: Any) -> Cost:
    """From a LayerSpec's type and shapes (Python ints: no overflow however large)."""
    inp, out = math.prod(layer.in_shape), math.prod(layer.out_shape)
    params = sum(int(math.prod(v.shape)) for v in getattr(layer, "params", {}).values())
    work = 0
    if layer.type == "conv2d":
        c, h, w = layer.in_shape
        _, kc, kh, kw = layer.kernel.shape
        ph, pw = layer.padding
        ho, wo = layer.out_shape[1:]
        work = c * kh * kw * ho * wo + (c * (h + 2 * ph) * (w + 2 * pw) if ph or pw else 0)
    elif layer.type in ("maxpool2d", "avgpool2d", "dropout", "batchnorm"):
        work = inp + out  # the window maxima / the mask / x̂ and friends
    return Cost(params, inp, out, work)


def param_arrays(spec: Any) -> tuple[int, int]:
    """(recorded, held) arrays of a parameter's size in a step of `spec` (PARAM_ARRAYS)."""
    rec, held = PARAM_ARRAYS.get(spec.optimizer.type, (9, 11))
    if getattr(spec, "regularization", None):
        rec, held = rec + PENALTY_ARRAYS[0], held + PENALTY_ARRAYS[1]
    return rec, held


def step_numbers(
    costs: Sequence[Cost], batch: int, n: int, arrays: tuple[int, int]
) -> tuple[int, int]:
    """(numbers one step records, numbers its computation holds besides) for a batch of
    `batch` samples out of `n` (the loss over all n after the update runs a forward on all)."""
    per_sample = sum(RECORDED_PER_OUT * c.out + RECORDED_PER_IN * c.inp for c in costs)
    first_in = costs[0].inp if costs else 0
    params = sum(c.params for c in costs)
    recorded = batch * (per_sample + first_in) + arrays[0] * params
    working = (
        2 * batch * sum(c.work for c in costs)
        + n * sum(c.out + c.work for c in costs)
        + INPUT_COPIES * n * first_in
        + arrays[1] * params
    )
    return recorded, working


def _largest(costs: Sequence[Cost], batch: int, arrays: tuple[int, int]) -> int:
    """The layer that holds the most per step."""
    sizes = [
        batch * (RECORDED_PER_OUT * c.out + RECORDED_PER_IN * c.inp + 2 * c.work)
        + sum(arrays) * c.params
        for c in costs
    ]
    return max(range(len(sizes)), key=sizes.__getitem__)


def _layer_words(layer: Any, cost: Cost) -> str:
    parts = [f"output {_shape(layer.out_shape)} per sample"]
    if cost.params:
        parts.append(f"{cost.params:,} parameters")
    if layer.type == "conv2d" and cost.work:
        c, h, w = layer.in_shape
        ph, pw = layer.padding
        kh, kw = layer.kernel.shape[2:]
        if ph or pw:
            parts.append(f"padded input {_shape((c, h + 2 * ph, w + 2 * pw))}")
        parts.append(f"patches {_shape((c * kh * kw, math.prod(layer.out_shape[1:])))}")
    return ", ".join(parts)


def _layer_src(layers_src: Any, i: int, layer: Any) -> Any:
    """Where a layer's size comes from: the key that made it large, else the layer."""
    lsrc = layers_src.child(i)
    v = lsrc.value
    keys = {
        "dense": ("units", "weights"),
        "conv2d": ("padding", "out_channels", "kernel_size", "kernel"),
    }.get(layer.type, ())
    if layer.type == "conv2d" and tuple(layer.padding) == (0, 0):
        keys = keys[1:]
    for key in keys:
        if isinstance(v, dict) and key in v:
            return lsrc.child(key)
    return lsrc


# --- the checks ----------------------------------------------------------------------------


def check_param(src: Any, shape: Sequence[int], what: str) -> None:
    """Before drawing a parameter of `shape` (float64) at `src` (units:, out_channels:):
    any command holds it PARSE_PER_PARAM times (its values and their gradient at least)."""
    count = math.prod(int(s) for s in shape)
    need = 8 * PARSE_PER_PARAM * count
    if need > limits().memory:
        raise src.error(
            f"{what}: {_shape(shape)} numbers, and every command holds at least "
            f"{PARSE_PER_PARAM} arrays that size (the values and their gradient): "
            f"{size_text(need)}" + over_memory(need)
        )


def check_layer(layers_src: Any, i: int, layer: Any, prev: str) -> None:
    """One sample through the layer just parsed, before the next one is (a flatten of a huge
    padded image would otherwise be allocated by the batchnorm after it)."""
    cost = layer_cost(layer)
    need = 8 * (RECORDED_PER_OUT * cost.out + 2 * cost.work + PARSE_PER_PARAM * cost.params)
    if need > limits().memory:
        raise _layer_src(layers_src, i, layer).error(
            f"{layer.type} layer {layer.name!r} (after {prev}) needs {size_text(need)} for a "
            f"single sample ({_layer_words(layer, cost)})" + over_memory(need)
        )


def step_bytes(spec: Any, steps: int, json_out: bool) -> int:
    """`bpcalc step`/`check`: everything the run holds, its output included."""
    from bpcalc import batching

    n = spec.inputs.shape[0]
    b = spec.batching
    batch = batching.batch_size_for(b.mode, b.batch_size, n)
    costs = [layer_cost(x) for x in spec.layers]
    recorded, working = step_numbers(costs, batch, n, param_arrays(spec))
    data = spec.inputs.nbytes + spec.targets.nbytes
    per_number = 8 + (JSON_BYTES_PER_NUMBER if json_out else 0)
    return data + 8 * working + steps * recorded * per_number


def check_run(spec: Any, steps: int, json_out: bool, asked: str) -> None:
    """Before the engine runs `steps` steps of `spec` (with JSON text when json_out): a
    SpecError at the layer that holds most when one step of the file is too much, else a
    UsageError naming the command-line options (`asked`) that make it too much."""
    need = step_bytes(spec, steps, json_out)
    if need <= limits().memory:
        return
    from bpcalc import batching

    n = spec.inputs.shape[0]
    b = spec.batching
    batch = batching.batch_size_for(b.mode, b.batch_size, n)
    costs = [layer_cost(x) for x in spec.layers]
    i = _largest(costs, batch, param_arrays(spec))
    layer = spec.layers[i]
    about = f"layer {layer.name!r}: {_layer_words(layer, costs[i])}"
    one = step_bytes(spec, 1, False)
    if one > limits().memory or not asked:
        where = _layer_src(spec.doc.root().child("layers"), i, layer) if spec.doc else None
        message = (
            f"a step of this network on {batch} sample{'s' if batch != 1 else ''} needs about "
            f"{size_text(one)} ({about})" + over_memory(one)
        )
        if where is None:
            raise SpecError(message, layer.where)
        raise where.error(message)
    raise UsageError(
        f"{asked}: this run would hold about {size_text(need)} ({steps} step"
        f"{'s' if steps != 1 else ''} of {batch} sample{'s' if batch != 1 else ''}"
        + (", with the JSON text" if json_out else "")
        + f"; {about})"
        + over_memory(need)
    )


def check_printed(chars: int, what: str, narrow: str) -> None:
    if chars > limits().output:
        raise UsageError(
            f"{what} would print about {size_text(chars)}" + over_output(chars, narrow)
        )


def check_training(
    spec: Any, batch: int, itemsize: int, epochs: int, json_out: bool, extra: int = 0
) -> None:
    """`bpcalc train`: one batch's arrays and the record of every epoch fit (UsageError naming
    --batch-size or --epochs); `extra`: bytes of test data loaded."""
    costs = [layer_cost(x) for x in spec.layers]
    n = spec.inputs.shape[0]
    per_sample = sum(3 * c.out + c.inp + 2 * c.work for c in costs)
    params = sum(c.params for c in costs)
    evaluation = min(n, 1024)  # Trainer.evaluate's batches

    def needs(b: int) -> int:
        data = 2 * (spec.inputs.nbytes + spec.targets.nbytes + extra)  # and a batch's copy
        # the spec's float64 parameters, and TRAIN_PER_PARAM arrays of the training dtype
        kept = params * (8 + TRAIN_PER_PARAM * itemsize)
        return data + kept + itemsize * max(b, evaluation) * per_sample

    need = needs(batch)
    if need > limits().memory:
        i = _largest(costs, batch, (0, TRAIN_PER_PARAM))
        about = f"layer {spec.layers[i].name!r}: {_layer_words(spec.layers[i], costs[i])}"
        if needs(1) > limits().memory and spec.doc is not None:  # not the batch's fault
            raise _layer_src(spec.doc.root().child("layers"), i, spec.layers[i]).error(
                f"training this network needs about {size_text(needs(1))} ({about})"
                + over_memory(needs(1))
            )
        raise UsageError(
            f"--batch-size {batch}: training needs about {size_text(need)} ({about})"
            + over_memory(need)
        )
    kept = need + epochs * EPOCH_RECORD_BYTES
    if kept > limits().memory:
        raise UsageError(
            f"--epochs {epochs}: the results of so many epochs would hold about "
            f"{size_text(kept)}" + over_memory(kept)
        )
    if not json_out:
        check_printed(
            epochs * EPOCH_PRINTED,
            f"--epochs {epochs}: the table of epochs",
            "use --json, which writes one line per epoch as it ends",
        )


def check_data(where: Location, nbytes: int, what: str) -> None:
    """A data file's array (its header's shape times its item size) before it is read."""
    if nbytes > limits().memory:
        raise SpecError(f"{what}: {size_text(nbytes)}" + over_memory(nbytes), where)


YAML_SHARE = 8  # a YAML file may take an eighth of the budget while read: the run needs the rest


def yaml_values() -> int:
    """How many values a YAML file may hold: each costs YAML_BYTES_PER_VALUE while it is
    read, and reading may take 1/YAML_SHARE of the budget (1 GiB: 419,430 values)."""
    return limits().memory // (YAML_SHARE * YAML_BYTES_PER_VALUE)


__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_OUTPUT",
    "Cost",
    "Limits",
    "check_data",
    "check_layer",
    "check_param",
    "check_printed",
    "check_run",
    "check_training",
    "layer_cost",
    "limits",
    "parse_size",
    "set_limits",
    "size_text",
    "step_bytes",
    "using",
]
