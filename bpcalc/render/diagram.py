"""A picture of the network: neurons as nodes with their names, weights on the edges, biases
under the nodes; conv and pooling layers as grids (input, kernel, output). With a step's
values: the forward values on the nodes and grids, or (stage backward) ∂L/∂z on the nodes
and ∂L/∂w on the edges.

The picture is laid out once as plain shapes (lines, circles, boxes, labels) and written by
one of three writers:
  svg(pic)        SVG, through the optional drawing library drawsvg (pip install
                  'bpcalc[diagram]'), imported only here, only when an SVG is asked for
  tikz(pic)       TikZ code for LaTeX documents (text, no dependency)
  picture(pic)    LaTeX's own picture environment (compiles where TikZ is not installed)
latex_figure(pic) gives both, TikZ where the LaTeX installation has it (see LATEX_PREAMBLE).
Coordinates are points, y pointing down (as in SVG).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcalc.errors import UsageError
from bpcalc.network.types import Conv2dSpec, DenseSpec, NetworkSpec, PoolSpec
from bpcalc.render.numbers import fmt
from bpcalc.render.texmath import text as tx
from bpcalc.trace import StepTrace

R = 14.0  # node radius
ROW = 64.0  # between nodes of a column
COL = 140.0  # between columns
CELL = 24.0  # a grid cell
KCELL = 20.0  # a kernel's cell
MAX_CELLS = 144  # a larger image is drawn as its frame
MAX_NODES = 10  # a longer column shows its first ones and how many more
EDGE_AT = 0.3  # where along an edge (from its source) its label sits
SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# For LaTeX documents: TikZ where it is installed, else LaTeX's picture environment.
LATEX_PREAMBLE = r"""\usepackage{graphicx}
\newif\ifbptikz
\IfFileExists{tikz.sty}{\bptikztrue\usepackage{tikz}}{}
"""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    width: float = 0.8


@dataclass(frozen=True)
class Circle:
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str  # Unicode, for SVG
    tex: str  # LaTeX (text mode, math in $...$)
    anchor: str = "middle"  # middle | start | end
    size: float = 9.0
    backed: bool = False  # a white background (a label on an edge)


Shape = Line | Circle | Box | Label


@dataclass
class Picture:
    width: float = 0.0
    height: float = 0.0
    shapes: list[Shape] = field(default_factory=list)

    def labels(self) -> list[str]:
        return [s.text for s in self.shapes if isinstance(s, Label)]


def _t(text: str) -> str:
    """Unicode label text -> LaTeX text (math symbols wrapped by texmath.text)."""
    return tx(text)


def _label(x: float, y: float, text: str, **kw: object) -> Label:
    return Label(x, y, text, _t(text), **kw)  # type: ignore[arg-type]


# --- the layout -------------------------------------------------------------------------


@dataclass
class _Column:
    """Nodes in a vertical column (a vector), or grids (an image: C x H x W)."""

    x: float
    ys: list[float] = field(default_factory=list)  # node centres (vector)
    shown: list[int] = field(default_factory=list)  # which units the nodes are
    image: tuple[int, int, int] | None = None
    right: float = 0.0  # the column's right edge


@dataclass
class _Values:
    """What the picture shows: given values (a handout) or a step's values."""

    st: StepTrace | None
    stage: str
    decimals: int
    batched: bool

    def get(self, name: str) -> np.ndarray | None:
        if self.st is None or name not in self.st:
            return None
        v = self.st[name]
        return v[0] if self.batched and self.st.records[name].per_sample else v


def build(
    spec: NetworkSpec, st: StepTrace | None = None, stage: str = "forward", decimals: int = 4
) -> Picture:
    """The network's picture; with `st`, the step's values of `stage` (forward or backward)."""
    vals = _Values(st, stage, decimals, spec.batched)
    pic = Picture()
    s = pic.shapes
    x = 60.0
    x0 = spec.inputs[0]
    first = spec.layers[0]
    top = 40.0 + max(
        (
            layer.kernel.shape[0]
            * (
                layer.kernel.shape[2]
                * _cell(layer.kernel if st is None else None, KCELL, decimals, 36.0)
                + 22
            )
            + 10
            for layer in spec.layers
            if isinstance(layer, Conv2dSpec)
        ),
        default=0.0,
    )
    if st is not None and spec.batched:
        s.append(_label(4, 12, f"values of sample 1 of {spec.inputs.shape[0]}", anchor="start"))
    if len(first.in_shape) == 3:
        col = _grids(s, x + 10, top, x0, "input x", vals.decimals if st else 4)
    elif len(first.in_shape) == 2:  # a sequence: one row of the grid per position
        t, d = first.in_shape
        col = _grids(s, x + 10, top, x0, "input x (T × d)", vals.decimals if st else 4, (1, t, d))
    else:
        col = _nodes(s, x, top, x0.reshape(-1), "x", "input", None, decimals)
    for i, layer in enumerate(spec.layers):
        last = i == len(spec.layers) - 1
        if layer.sequence_out or len(layer.in_shape) == 2:
            col = _sequence_layer(s, col, layer, vals, top)
        elif isinstance(layer, DenseSpec):
            col = _dense(s, col, layer, vals, top, last)
        elif isinstance(layer, Conv2dSpec):
            col = _conv(s, col, layer, vals, top)
        elif isinstance(layer, PoolSpec):
            a = vals.get(f"{layer.name}.a")
            col = _arrow_to_grids(
                s,
                col,
                top,
                f"{layer.kind} pool {layer.size[0]}×{layer.size[1]}",
                a,
                f"{layer.name}: a",
                layer.out_shape,
                vals.decimals,
            )
        elif layer.type == "flatten":
            col = _flatten(s, col, layer.out_shape[0], top)
        elif col.image is None:  # an activation, dropout or batchnorm on a vector
            col = _vector_layer(s, col, layer, vals, top)
        else:
            a = vals.get(f"{layer.name}.a")
            col = _arrow_to_grids(
                s, col, top, layer.type, a, f"{layer.name}: a", layer.out_shape, vals.decimals
            )
    _target(s, col, spec, vals)
    xs = [
        sh.x
        + (0.6 * sh.size * len(sh.text) if sh.anchor == "start" else 0.3 * sh.size * len(sh.text))
        + 10
        for sh in s
        if isinstance(sh, Label)
    ]
    xs += [col.right + 60] + [sh.x + sh.w + 10 for sh in s if isinstance(sh, Box)]
    ys = [sh.y + 20 for sh in s if isinstance(sh, (Label, Circle))]
    ys += [sh.y + sh.h + 10 for sh in s if isinstance(sh, Box)]
    pic.width = max(xs)
    pic.height = max(ys)
    return pic


def _nodes(
    s: list[Shape],
    x: float,
    top: float,
    values: np.ndarray | None,
    letter: str,
    header: str,
    shown_values: np.ndarray | None,
    decimals: int,
    n: int | None = None,
) -> _Column:
    """A column of nodes; the input's values beside the input nodes."""
    n = n if n is not None else (values.size if values is not None else 0)
    shown = list(range(n)) if n <= MAX_NODES else list(range(MAX_NODES - 1)) + [n - 1]
    col = _Column(x, right=x + R)
    s.append(_label(x, top - 18, header, size=10.0))
    for row, unit in enumerate(shown):
        y = top + 10 + R + row * ROW
        if n > MAX_NODES and row == MAX_NODES - 1:
            s.append(_label(x, y - ROW / 2, f"⋮ ({n - MAX_NODES + 1} more)", size=8.0))
        s.append(Circle(x, y, R))
        s.append(_label(x, y, f"{letter}{str(unit + 1).translate(SUB)}", size=9.0))
        if letter == "x" and values is not None:
            s.append(_label(x - R - 4, y, fmt(float(values[unit]), decimals), anchor="end"))
        col.ys.append(y)
        col.shown.append(unit)
    return col


def _dense(
    s: list[Shape], prev: _Column, layer: DenseSpec, vals: _Values, top: float, last: bool
) -> _Column:
    x = prev.right + COL
    n = layer.out_shape[0]
    act = layer.activation.kind if layer.activation is not None else None
    header = f"{layer.name}" + (f" ({act})" if act else "")
    col = _nodes(s, x, top, None, "a", header, None, vals.decimals, n=n)
    backward = vals.st is not None and vals.stage == "backward"
    w = vals.get(f"grad.{layer.name}.weights") if backward else layer.weights
    b = vals.get(f"grad.{layer.name}.bias") if backward else layer.bias
    if w is None:
        w = layer.weights
    w = np.asarray(w).reshape(layer.weights.shape)
    if b is None:
        b = layer.bias
    b = None if b is None else np.asarray(b).reshape(-1)  # None: a layer without a bias
    labels = len(prev.shown) * len(col.shown) <= 60
    for j, yj in zip(col.shown, col.ys, strict=True):
        for i, yi in zip(prev.shown, prev.ys, strict=True):
            x1, y1, x2, y2 = _between(prev.x, yi, x, yj)
            s.append(Line(x1, y1, x2, y2))
            if labels:
                wij = w[j, i] if layer.layout == "out_in" else w[i, j]
                lx, ly = x1 + (x2 - x1) * EDGE_AT, y1 + (y2 - y1) * EDGE_AT
                s.append(_label(lx, ly, fmt(float(wij), vals.decimals), backed=True, size=8.0))
    for j, yj in zip(col.shown, col.ys, strict=True):
        if b is not None:
            bj = b[0] if layer.bias_shared else b[j]
            word = "∂L/∂b" if backward else "b"
            s.append(_label(x, yj + R + 9, f"{word} = {fmt(float(bj), vals.decimals)}", size=8.0))
        if vals.st is not None:
            _node_value(s, layer.name, j, x, yj, vals, n)
    if backward:
        s.append(_label(x, top - 6, "∂L/∂w on the edges", size=7.5))
    return col


def _node_value(
    s: list[Shape], name: str, j: int, x: float, y: float, vals: _Values, n: int
) -> None:
    """The step's value of unit j above its node: a (forward) or ∂L/∂z (backward)."""
    if vals.stage == "backward":
        v = vals.get(f"grad.{name}.z")
        word = "∂L/∂z"
        if v is None:
            v, word = vals.get(f"grad.{name}.a"), "∂L/∂a"
    else:
        v, word = vals.get(f"{name}.a"), "a"
    if v is None:
        return
    s.append(
        _label(
            x,
            y - R - 6,
            f"{word} = {fmt(float(np.asarray(v).reshape(-1)[j]), vals.decimals)}",
            size=8.0,
        )
    )


def _vector_layer(
    s: list[Shape], prev: _Column, layer: object, vals: _Values, top: float
) -> _Column:
    """An activation (or dropout, batchnorm) of its own on a vector: a new column, one edge
    per unit."""
    name = layer.name  # type: ignore[attr-defined]
    n = layer.out_shape[0]  # type: ignore[attr-defined]
    x = prev.right + COL * 0.6
    col = _nodes(s, x, top, None, "a", f"{name} ({layer.type})", None, vals.decimals, n=n)  # type: ignore[attr-defined]
    for yi, yj in zip(prev.ys, col.ys, strict=False):
        x1, y1, x2, y2 = _between(prev.x, yi, x, yj)
        s.append(Line(x1, y1, x2, y2))
    if vals.st is not None:
        for j, yj in zip(col.shown, col.ys, strict=True):
            _node_value(s, name, j, x, yj, vals, n)
    return col


def _sequence_layer(
    s: list[Shape], prev: _Column, layer: object, vals: _Values, top: float
) -> _Column:
    """A layer that reads or makes a sequence (embedding, rnn, attention, dense at every
    position): an arrow with its type, then its output as a grid, one row per position (or,
    an RNN that returns its last step, a column of nodes)."""
    name, kind = layer.name, layer.type  # type: ignore[attr-defined]
    act = layer.activation  # type: ignore[attr-defined]
    text = kind + (f" + {act.kind}" if act is not None else "")
    a = vals.get(f"{name}.a")
    if layer.sequence_out:  # type: ignore[attr-defined]
        t, d = layer.out_shape  # type: ignore[attr-defined]
        return _arrow_to_grids(
            s, prev, top, text, a, f"{name}: a (T × d)", (1, t, d), vals.decimals
        )
    n = layer.out_shape[0]  # type: ignore[attr-defined]
    x = prev.right + 90
    _arrow(s, prev.right + 6, x - R - 6, prev.ys[0], f"{text} (last step)")
    col = _nodes(s, x, top, None, "a", name, None, vals.decimals, n=n)
    if vals.st is not None:
        for j, yj in zip(col.shown, col.ys, strict=True):
            _node_value(s, name, j, x, yj, vals, n)
    return col


def _between(xa: float, ya: float, xb: float, yb: float) -> tuple[float, float, float, float]:
    """The segment between two node circles (from rim to rim)."""
    dx, dy = xb - xa, yb - ya
    d = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    return xa + dx / d * R, ya + dy / d * R, xb - dx / d * R, yb - dy / d * R


def _cell(values: np.ndarray | None, base: float, decimals: int, unknown: float = 0.0) -> float:
    """A square cell wide enough for the longest number of `values` (`unknown` when none)."""
    if values is None:
        return max(base, unknown)
    longest = max((len(fmt(float(v), decimals)) for v in np.asarray(values).reshape(-1)), default=1)
    return max(base, 4.6 * longest + 8)


def _grid(
    s: list[Shape],
    x: float,
    y: float,
    values: np.ndarray | None,
    shape: tuple[int, int],
    cell: float,
    decimals: int,
) -> None:
    h, w = shape
    if h * w > MAX_CELLS:  # a large image: its frame and its size
        s.append(Box(x, y, w * cell / 4, h * cell / 4))
        s.append(_label(x + w * cell / 8, y + h * cell / 8, f"{h}×{w}", size=8.0))
        return
    for i in range(h):
        for j in range(w):
            s.append(Box(x + j * cell, y + i * cell, cell, cell))
            if values is not None:
                s.append(
                    _label(
                        x + j * cell + cell / 2,
                        y + i * cell + cell / 2,
                        fmt(float(values[i, j]), decimals),
                        size=7.5 if cell < CELL else 8.0,
                    )
                )


def _grids(
    s: list[Shape],
    x: float,
    top: float,
    values: np.ndarray | None,
    header: str,
    decimals: int,
    shape: tuple[int, ...] | None = None,
) -> _Column:
    """An image as one grid per channel, stacked."""
    shape = tuple(shape if shape is not None else np.shape(values))
    c, h, w = shape if len(shape) == 3 else (1, *shape)
    img = np.asarray(values).reshape(c, h, w) if values is not None else None
    large = h * w > MAX_CELLS
    cs = CELL if large else _cell(img, CELL, decimals)
    step = cs / 4 if large else cs  # _grid draws a large image as a frame a quarter the size
    s.append(_label(x + w * step / 2, top - 18, header, size=10.0))
    y = top
    for k in range(min(c, 4)):
        if c > 1:
            s.append(_label(x - 4, y + h * step / 2, f"ch {k + 1}", anchor="end", size=7.5))
        _grid(s, x, y, img[k] if img is not None else None, (h, w), cs, decimals)
        y += h * step + 12
    if c > 4:
        s.append(_label(x + w * step / 2, y, f"⋮ ({c - 4} more channels)", size=8.0))
        y += 16
    col = _Column(x, image=(c, h, w), right=x + w * step)
    col.ys = [top + (y - top) / 2]
    return col


def _arrow(s: list[Shape], x1: float, x2: float, y: float, text: str) -> None:
    s.append(Line(x1, y, x2, y))
    s.append(Line(x2 - 6, y - 4, x2, y))
    s.append(Line(x2 - 6, y + 4, x2, y))
    s.append(_label((x1 + x2) / 2, y - 8, text, size=8.0))


def _arrow_to_grids(
    s: list[Shape],
    prev: _Column,
    top: float,
    text: str,
    values: np.ndarray | None,
    header: str,
    shape: tuple[int, ...],
    decimals: int,
) -> _Column:
    x = prev.right + 64
    _arrow(s, prev.right + 6, x - 6, prev.ys[0], text)
    return _grids(s, x, top, values, header, decimals, shape)


def _conv(s: list[Shape], prev: _Column, layer: Conv2dSpec, vals: _Values, top: float) -> _Column:
    o, c, kh, kw = layer.kernel.shape
    backward = vals.st is not None and vals.stage == "backward"
    k = vals.get(f"grad.{layer.name}.kernel") if backward else None
    k = np.asarray(k).reshape(layer.kernel.shape) if k is not None else layer.kernel
    b = vals.get(f"grad.{layer.name}.bias") if backward else None
    b = np.asarray(b).reshape(-1) if b is not None else layer.bias
    kc = _cell(k, KCELL, vals.decimals)
    gap = max(76.0, kw * kc * c + 24)
    x = prev.right + gap
    y = prev.ys[0]
    op = "∗ (flipped)" if layer.flip else "⋆"
    _arrow(s, prev.right + 8, x - 8, y, f"{op} K + b")
    # the kernels above the arrow: one row of C grids per output channel
    kx = prev.right + (gap - kw * kc * c - 6 * (c - 1)) / 2
    ky = y - 22 - o * (kh * kc + 22)
    word = "∂L/∂K" if backward else "K"
    for oi in range(o):
        for ci in range(c):
            _grid(s, kx + ci * (kw * kc + 6), ky, k[oi, ci], (kh, kw), kc, vals.decimals)
        bw = "∂L/∂b" if backward else "b"
        s.append(
            _label(
                kx,
                ky - 6,
                f"{word}{str(oi + 1).translate(SUB) if o > 1 else ''}"
                + ("" if b is None else f", {bw} = {fmt(float(b[oi]), vals.decimals)}"),
                anchor="start",
                size=7.5,
            )
        )
        ky += kh * kc + 22
    z = vals.get(f"grad.{layer.name}.z" if backward else f"{layer.name}.z")
    zhead = f"{layer.name}: ∂L/∂z" if backward else f"{layer.name}: z"
    col = _grids(s, x, top, z, zhead, vals.decimals, layer.out_shape)
    if layer.activation is not None:
        a = vals.get(f"grad.{layer.name}.a" if backward else f"{layer.name}.a")
        head = f"{layer.name}: ∂L/∂a" if backward else f"{layer.name}: a"
        col = _arrow_to_grids(
            s, col, top, layer.activation.kind, a, head, layer.out_shape, vals.decimals
        )
    return col


def _flatten(s: list[Shape], prev: _Column, n: int, top: float) -> _Column:
    x = prev.right + 70
    _arrow(s, prev.right + 6, x - R - 6, prev.ys[0], "flatten")
    col = _nodes(s, x, top, None, "x", "flattened", None, 4, n=n)
    return col


def _target(s: list[Shape], col: _Column, spec: NetworkSpec, vals: _Values) -> None:
    """The targets beside the output nodes (or under the output grid), and the loss."""
    y = spec.targets[0].reshape(-1)
    if col.image is None:
        for unit, yy in zip(col.shown, col.ys, strict=True):
            s.append(
                _label(
                    col.x + R + 8,
                    yy,
                    f"y{str(unit + 1).translate(SUB)} = {fmt(float(y[unit]), 4)}",
                    anchor="start",
                )
            )
        at = col.ys[-1] + R + 28
        s.append(_label(col.x, at, f"loss: {spec.loss.kind.replace('_', ' ')}", size=8.0))
    else:
        text = (
            "y = " + ", ".join(fmt(float(v), 4) for v in y)
            if y.size <= 24
            else f"y: {y.size} values (in the tables)"
        )
        s.append(_label(col.right + 8, col.ys[0], text, anchor="start"))
    if vals.st is not None and "loss" in vals.st and vals.stage != "backward":
        s.append(
            _label(
                col.right + 8,
                col.ys[-1] + 2 * R + 30,
                f"L = {fmt(float(vals.st['loss']), vals.decimals)}",
                anchor="start",
            )
        )


# --- the writers ------------------------------------------------------------------------


def svg(pic: Picture) -> str:
    """SVG text (needs the optional drawsvg)."""
    try:
        import drawsvg as draw
    except ImportError:
        raise UsageError(
            "an SVG diagram needs the optional drawing library: pip install 'bpcalc[diagram]' "
            "(or pip install drawsvg)"
        ) from None
    d = draw.Drawing(round(pic.width), round(pic.height))
    d.append(draw.Rectangle(0, 0, round(pic.width), round(pic.height), fill="white"))
    for sh in pic.shapes:
        if isinstance(sh, Line):
            d.append(draw.Line(sh.x1, sh.y1, sh.x2, sh.y2, stroke="#444", stroke_width=sh.width))
        elif isinstance(sh, Circle):
            d.append(draw.Circle(sh.x, sh.y, sh.r, fill="white", stroke="black", stroke_width=1))
        elif isinstance(sh, Box):
            d.append(
                draw.Rectangle(
                    sh.x, sh.y, sh.w, sh.h, fill="none", stroke="black", stroke_width=0.8
                )
            )
    for sh in pic.shapes:  # labels last, over the lines
        if isinstance(sh, Label):
            extra = (
                {"paint_order": "stroke", "stroke": "white", "stroke_width": 3} if sh.backed else {}
            )
            d.append(
                draw.Text(
                    sh.text,
                    sh.size,
                    sh.x,
                    sh.y,
                    text_anchor=sh.anchor,
                    dominant_baseline="central",
                    font_family="sans-serif",
                    fill="black",
                    **extra,
                )
            )
    return d.as_svg() + "\n"


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def tikz(pic: Picture, scale: float = 1.0) -> str:
    """A tikzpicture (needs \\usepackage{tikz}); y flipped to point up."""
    h = pic.height
    out = [
        rf"\begin{{tikzpicture}}[x=1pt,y=1pt,scale={scale:.3f},every node/.style={{inner sep=1pt}}]"
    ]
    anchors = {"middle": "center", "start": "west", "end": "east"}
    for sh in pic.shapes:
        if isinstance(sh, Line):
            out.append(
                rf"\draw[line width={sh.width}pt] ({_num(sh.x1)},{_num(h - sh.y1)}) -- ({_num(sh.x2)},{_num(h - sh.y2)});"
            )
        elif isinstance(sh, Circle):
            out.append(rf"\draw[fill=white] ({_num(sh.x)},{_num(h - sh.y)}) circle ({_num(sh.r)});")
        elif isinstance(sh, Box):
            out.append(
                rf"\draw ({_num(sh.x)},{_num(h - sh.y)}) rectangle ({_num(sh.x + sh.w)},{_num(h - sh.y - sh.h)});"
            )
    for sh in pic.shapes:
        if isinstance(sh, Label):
            fill = ",fill=white" if sh.backed else ""
            out.append(
                rf"\node[anchor={anchors[sh.anchor]}{fill},font={_font(sh.size)}] at ({_num(sh.x)},{_num(h - sh.y)}) {{{sh.tex}}};"
            )
    out.append(r"\end{tikzpicture}")
    return "\n".join(out)


def _font(size: float) -> str:
    return r"\scriptsize" if size < 8.5 else r"\footnotesize" if size < 9.5 else r"\small"


def picture(pic: Picture) -> str:
    """LaTeX's picture environment (no package): lines as \\qbezier, nodes as circles."""
    h = pic.height
    out = [r"\setlength{\unitlength}{1pt}", rf"\begin{{picture}}({_num(pic.width)},{_num(h)})"]
    pos = {"middle": "", "start": "[l]", "end": "[r]"}
    for sh in pic.shapes:
        if isinstance(sh, Line):
            x1, y1, x2, y2 = sh.x1, h - sh.y1, sh.x2, h - sh.y2
            out.append(
                rf"\qbezier({_num(x1)},{_num(y1)})({_num((x1 + x2) / 2)},{_num((y1 + y2) / 2)})({_num(x2)},{_num(y2)})"
            )
        elif isinstance(sh, Circle):
            out.append(rf"\put({_num(sh.x)},{_num(h - sh.y)}){{\circle{{{_num(2 * sh.r)}}}}}")
        elif isinstance(sh, Box):
            out.append(
                rf"\put({_num(sh.x)},{_num(h - sh.y - sh.h)}){{\framebox({_num(sh.w)},{_num(sh.h)}){{}}}}"
            )
        elif isinstance(sh, Label):
            out.append(
                rf"\put({_num(sh.x)},{_num(h - sh.y)}){{\makebox(0,0){pos[sh.anchor]}{{{_font(sh.size)} {sh.tex}}}}}"
            )
    out.append(r"\end{picture}")
    return "\n".join(out)


def latex_figure(pic: Picture, width: str = r"\linewidth") -> str:
    """The picture for a LaTeX document with LATEX_PREAMBLE: TikZ where installed, else the
    picture environment; scaled down to `width` when wider."""
    body_t, body_p = tikz(pic), picture(pic)
    wrap = pic.width > 420
    if wrap:
        body_t = rf"\resizebox{{{width}}}{{!}}{{{body_t}}}"
        body_p = rf"\resizebox{{{width}}}{{!}}{{{body_p}}}"
    return "\n".join(
        [r"\begin{center}", r"\ifbptikz", body_t, r"\else", body_p, r"\fi", r"\end{center}"]
    )
