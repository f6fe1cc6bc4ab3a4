"""The `exercise:` section of a network file: how `bpcalc exercise` draws the values, what
the students compute, and the words of the handout.

    exercise:
      title: One step of backpropagation
      instructions: Compute the values below for one step of gradient descent.
      conventions: [The loss is ½ times the squared error.]   # default: from the network
      rounding: 4                 # round every intermediate value to 4 decimals (null: none)
      ask: [hidden.z, hidden.a, out.a, loss, grad.out.z, 'grad.hidden.*', new.hidden.weights]
      weights: {decimals: 1, range: [-1, 1]}          # weights and kernels
      biases: {decimals: 1, range: [-0.5, 0.5], zero: true}
      inputs: {decimals: 0, range: [-3, 3]}           # or: given (keep the file's)
      targets: {decimals: 1, range: [0, 1]}           # default: what fits the loss; or given
      layers: {conv: {weights: {decimals: 0, range: [-2, 2]}}}   # per layer, instead
      dead_units: 0               # ReLU units allowed off for every sample ('any': no limit)
      limits: {max: 1000, min: 0.01}    # |value| a person computes (min: 0.01 at 4 decimals)
      attempts: 1000              # draws tried per variant before giving up

Only what the network gives by shape (`units:`, `out_channels:`/`kernel_size:`) is drawn,
and a bias only where the layer writes none; values written in the file are kept. The
inputs and targets are drawn unless the section says `given`. `bpcalc step` ignores this
section; `bpcalc exercise` checks it, every mistake at its file:line:column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bpcalc.errors import Location
from bpcalc.network import values as V
from bpcalc.network.yaml_source import Src

KEYS = (
    "title",
    "instructions",
    "conventions",
    "rounding",
    "ask",
    "weights",
    "biases",
    "inputs",
    "targets",
    "layers",
    "dead_units",
    "limits",
    "attempts",
    "worksheet_keys",
)
DRAW_KEYS = ("decimals", "range", "zero")
MAX_DECIMALS = 6
MAX_ATTEMPTS = 100_000


@dataclass(frozen=True)
class Grid:
    """Numbers k·10⁻ᵈ in [low, high]; zero left out unless allowed. given: keep the file's."""

    decimals: int = 1
    low: float = -1.0
    high: float = 1.0
    zero: bool = False
    given: bool = False

    def words(self) -> str:
        if self.given:
            return "as given"
        kind = "whole numbers" if self.decimals == 0 else f"{self.decimals} decimal(s)"
        return f"{kind} from {self.low:g} to {self.high:g}" + ("" if self.zero else ", not 0")


@dataclass(frozen=True)
class AskItem:
    """One entry of `ask:`: a value name, an element (`fc.z[1]`) or a glob (`grad.*`)."""

    pattern: str
    where: Location


@dataclass(frozen=True)
class Exercise:
    title: str | None = None
    instructions: str | None = None
    conventions: tuple[str, ...] | None = None  # None: in words from the network's units
    rounding: int | None = 4
    ask: tuple[AskItem, ...] = ()  # empty: the default list (see generate.default_ask)
    weights: Grid = Grid(1, -1.0, 1.0, False)
    biases: Grid = Grid(1, -0.5, 0.5, True)
    inputs: Grid = Grid(0, -3.0, 3.0, False)
    targets: Grid | None = None  # None: what fits the loss (a class, 0/1, one decimal)
    layers: dict[str, dict[str, Grid]] = field(default_factory=dict)
    dead_units: int | None = 0  # None: any number
    max_abs: float = 1000.0
    min_abs: float | None = None  # None: from the rounding (three significant digits survive it)
    attempts: int = 1000
    worksheet_keys: bool = True
    where: Location | None = None

    def grid(self, layer: str, what: str) -> Grid:
        """The grid for a layer's weights (or kernel) or biases: its own, else the section's."""
        own = self.layers.get(layer, {})
        return own.get(what, self.weights if what == "weights" else self.biases)

    @property
    def smallest(self) -> float:
        """The smallest |value| (other than 0) a hand computation keeps with three significant
        digits: 0.01 when rounding to 4 decimals."""
        if self.min_abs is not None:
            return self.min_abs
        if self.rounding is None:
            return 1e-3
        return 10.0 ** -max(self.rounding - 2, 0)


def parse_exercise(root: Src) -> Exercise:
    """The `exercise:` section of the network at `root` (the defaults when there is none)."""
    if "exercise" not in root.value:
        return Exercise(where=root.loc)
    src = root.child("exercise")
    if src.value is None:
        return Exercise(where=src.loc)
    V.check_keys(src, KEYS, (), "the exercise section")
    v = src.value
    out: dict[str, object] = {"where": src.loc}
    for key in ("title", "instructions"):
        if key in v:
            out[key] = V.text(src.child(key), key).strip()
    if "conventions" in v:
        out["conventions"] = _texts(src.child("conventions"), "conventions")
    if "rounding" in v:
        r = src.child("rounding")
        if r.value is None or r.value == "none":
            out["rounding"] = None
        else:
            out["rounding"] = _int(r, "rounding (decimals)", 0, 10)
    if "ask" in v:
        out["ask"] = tuple(
            AskItem(text, s.loc)
            for s, text in ((s, V.text(s, "a value to ask for")) for s in _items(src.child("ask")))
        )
    defaults = Exercise()
    for key in ("weights", "biases", "inputs"):
        if key in v:
            out[key] = _grid(src.child(key), key, getattr(defaults, key), given=key == "inputs")
    if "targets" in v:
        out["targets"] = _grid(src.child("targets"), "targets", Grid(1, 0.0, 1.0, True), True)
    if "layers" in v:
        out["layers"] = _layers(src.child("layers"))
    if "dead_units" in v:
        d = src.child("dead_units")
        out["dead_units"] = None if d.value == "any" else _int(d, "dead_units", 0, 10**6)
    if "limits" in v:
        lim = src.child("limits")
        V.check_keys(lim, ("max", "min"), (), "limits")
        if "max" in lim.value:
            out["max_abs"] = V.positive_number(lim.child("max"), "limits.max")
        if "min" in lim.value:
            out["min_abs"] = V.positive_number(lim.child("min"), "limits.min")
    if "attempts" in v:
        out["attempts"] = _int(src.child("attempts"), "attempts", 1, MAX_ATTEMPTS)
    if "worksheet_keys" in v:
        out["worksheet_keys"] = V.boolean(src.child("worksheet_keys"), "worksheet_keys")
    return Exercise(**out)  # type: ignore[arg-type]


def _int(src: Src, what: str, low: int, high: int) -> int:
    n = int(V.number(src, what, integer=True))
    if not low <= n <= high:
        raise src.error(f"{what} should be a whole number from {low} to {high}, found {n}")
    return n


def _items(src: Src) -> list[Src]:
    if isinstance(src.value, list):
        if not src.value:
            raise src.error(f"{src.dotted} is an empty list")
        return [src.child(i) for i in range(len(src.value))]
    return [src]


def _texts(src: Src, what: str) -> tuple[str, ...]:
    return tuple(V.text(s, what).strip() for s in _items(src))


def _grid(src: Src, what: str, default: Grid, given: bool) -> Grid:
    if src.value == "given":
        if not given:
            raise src.error(f"{what}: given applies to inputs and targets only")
        return Grid(given=True)
    V.check_keys(src, DRAW_KEYS, (), what)
    v = src.value
    decimals = (
        _int(src.child("decimals"), f"{what}.decimals", 0, MAX_DECIMALS)
        if "decimals" in v
        else default.decimals
    )
    low, high = default.low, default.high
    if "range" in v:
        r = src.child("range")
        if not isinstance(r.value, list) or len(r.value) != 2:
            raise r.error(f"{what}.range should be two numbers [low, high]")
        low, high = V.number(r.child(0), f"{what}.range"), V.number(r.child(1), f"{what}.range")
        if low > high:
            raise r.error(
                f"{what}.range should be [low, high] with low ≤ high, found [{low:g}, {high:g}]"
            )
        if max(abs(low), abs(high)) * 10**decimals > 10**9:
            raise r.error(f"{what}.range is too wide for {decimals} decimals")
    zero = V.boolean(src.child("zero"), f"{what}.zero") if "zero" in v else default.zero
    step = 10.0**-decimals
    import math

    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    if last < first or (not zero and first == last == 0):
        raise src.error(
            f"{what}: no number with {decimals} decimal(s) lies in [{low:g}, {high:g}]"
            + ("" if zero else " other than 0 (write zero: true to allow it)")
        )
    return Grid(decimals, low, high, zero)


def _layers(src: Src) -> dict[str, dict[str, Grid]]:
    V.mapping(src, "the layers of the exercise: layer name -> {weights, biases}")
    out: dict[str, dict[str, Grid]] = {}
    base = Exercise()
    for name in src.value:
        lsrc = src.child(name)
        V.check_keys(lsrc, ("weights", "biases"), (), f"exercise layer {name!r}")
        out[str(name)] = {
            k: _grid(lsrc.child(k), f"{name}.{k}", getattr(base, k), False) for k in lsrc.value
        }
    return out
