"""The handout of one variant, in Markdown and LaTeX: the title, the instructions and the
rounding rule, the conventions in words, a diagram of the network, the given values in
tables, and a blank worksheet with one line per number to compute. It speaks of the network
and the maths only: nothing in it names the program that made it."""

from __future__ import annotations

import numpy as np

from bpcalc.network.types import Conv2dSpec, DenseSpec, NetworkSpec
from bpcalc.render import diagram
from bpcalc.render.numbers import fmt
from bpcalc.render.texmath import text as tx
from bpcalc.teach import symbols
from bpcalc.teach.model import Template, Variant
from bpcalc.trace import parse_ref

DEFAULT_INSTRUCTIONS = (
    "Compute one step of gradient descent on the network below: the forward pass, the loss, "
    "the backward pass and the update. Write each value asked for in the worksheet."
)
NAMES = {
    "loss": "Loss",
    "output": "Output and loss together",
    "batch": "Batch",
    "batches": "Batches",
    "update": "Update",
    "regularization": "Regularization",
    "relu": "ReLU",
}
LATEX_HEAD = r"""\documentclass[11pt]{article}
\usepackage[T1]{fontenc}
\usepackage[margin=2cm]{geometry}
\usepackage{amsmath}
\usepackage{longtable}
\usepackage{array}
"""


def rounding_rule(t: Template) -> str:
    r = t.exercise.rounding
    if r is None:
        return "Keep full precision in every intermediate value; give your answers to 4 decimals."
    return (
        f"Round every intermediate value to {r} decimals as soon as you have computed it, and "
        "compute on with the rounded number."
    )


def conventions(t: Template, spec: NetworkSpec) -> list[tuple[str, str]]:
    """(what, words): the teacher's words, else each unit's convention line."""
    if t.exercise.conventions is not None:
        return [("", c) for c in t.exercise.conventions]
    from bpcalc import losses, notation, optim

    rule = optim.build(spec.optimizer).rule
    lines = notation.conventions(spec, rule)
    layer_names = {layer.name for layer in spec.layers}
    out = []
    for key, text in lines.items():
        if key in ("dtype", "rounding"):
            continue
        if key == "loss":
            loss = losses.get(spec.loss.kind)
            text = f"{loss.formula} ({loss.words})"
        text = text.replace(spec.loss.kind, spec.loss.kind.replace("_", " "))
        what = f"Layer {key}" if key in layer_names else NAMES.get(key, key.capitalize())
        out.append((what, text))
    return out


# --- the given values ---------------------------------------------------------------------


def _given(spec: NetworkSpec) -> list[tuple[str, str, list[list[str]], list[str], list[str]]]:
    """(title, symbol, cells, column heads, row heads) for each table of given values."""
    out = []
    x = spec.inputs
    d = 6
    if len(spec.layers[0].in_shape) == 3:
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                what = "Input image" + (f", sample {n + 1}" if spec.batched else "")
                what += f", channel {c + 1}" if x.shape[1] > 1 else ""
                out.append(_grid_table(what, "x", x[n, c], d))
    else:
        flat = x.reshape(x.shape[0], -1)
        heads = [f"x{_sub(i)}" for i in range(flat.shape[1])]
        rows = [f"sample {n + 1}" for n in range(flat.shape[0])] if spec.batched else [""]
        out.append(("Input", "x", [[fmt(v, d) for v in r] for r in flat], heads, rows))
    for layer in spec.layers:
        if isinstance(layer, DenseSpec):
            w = layer.weights
            n_out = layer.out_shape[0]
            act = f", activation {layer.activation.kind}" if layer.activation else ""
            if layer.layout == "out_in":
                heads = [f"from x{_sub(i)}" for i in range(w.shape[1])]
                rows = [f"to neuron {j + 1}" for j in range(w.shape[0])]
                how = "one row per neuron"
            else:
                heads = [f"to neuron {j + 1}" for j in range(w.shape[1])]
                rows = [f"from x{_sub(i)}" for i in range(w.shape[0])]
                how = "one column per neuron"
            out.append(
                (
                    f"Layer {layer.name} ({n_out} neuron{'s' if n_out > 1 else ''}{act}): "
                    f"weights W, {how}",
                    f"W^{{({layer.name})}}",
                    [[fmt(v, d) for v in r] for r in w],
                    heads,
                    rows,
                )
            )
            b = layer.bias
            if b is None:  # a layer without a bias
                continue
            bheads = (
                ["all neurons"] if layer.bias_shared else [f"neuron {j + 1}" for j in range(b.size)]
            )
            out.append(
                (
                    f"Layer {layer.name}: bias b",
                    f"b^{{({layer.name})}}",
                    [[fmt(v, d) for v in b]],
                    bheads,
                    [""],
                )
            )
        elif isinstance(layer, Conv2dSpec):
            o, c = layer.kernel.shape[:2]
            act = f", activation {layer.activation.kind}" if layer.activation else ""
            for oi in range(o):
                for ci in range(c):
                    what = f"Layer {layer.name} (convolution{act}): kernel K"
                    if o > 1 or c > 1:
                        what += f", output channel {oi + 1}, input channel {ci + 1}"
                    out.append(_grid_table(what, "K", layer.kernel[oi, ci], d))
            if layer.bias is None:
                continue
            out.append(
                (
                    f"Layer {layer.name}: bias b (one per output channel)",
                    "b",
                    [[fmt(v, d) for v in layer.bias]],
                    [f"channel {i + 1}" for i in range(o)],
                    [""],
                )
            )
    y = spec.targets.reshape(spec.targets.shape[0], -1)
    rows = [f"sample {n + 1}" for n in range(y.shape[0])] if spec.batched else [""]
    if spec.target_classes is not None:
        cells = [
            [str(int(c) + 1), " ".join(fmt(v, 0) for v in r)]
            for c, r in zip(spec.target_classes, y, strict=True)
        ]
        out.append(
            ("Target: the correct class (one-hot y)", "y", cells, ["class", "one-hot y"], rows)
        )
    else:
        out.append(
            (
                "Target",
                "y",
                [[fmt(v, d) for v in r] for r in y],
                [f"y{_sub(i)}" for i in range(y.shape[1])],
                rows,
            )
        )
    return out


def _grid_table(
    what: str, sym: str, m: np.ndarray, d: int
) -> tuple[str, str, list[list[str]], list[str], list[str]]:
    return (
        what,
        sym,
        [[fmt(v, d) for v in r] for r in m],
        [f"col {j + 1}" for j in range(m.shape[1])],
        [f"row {i + 1}" for i in range(m.shape[0])],
    )


def _sub(i: int) -> str:
    return str(i + 1).translate(symbols.SUBSCRIPT)


def _learning(spec: NetworkSpec) -> str:
    opt = spec.optimizer
    extra = {
        "momentum": f", momentum μ = {opt.momentum:g}",
        "nesterov": f", momentum μ = {opt.momentum:g}",
        "rmsprop": f", α = {opt.alpha:g}, ε = {opt.eps:g}",
        "adam": f", β₁ = {opt.beta1:g}, β₂ = {opt.beta2:g}, ε = {opt.eps:g}",
    }.get(opt.type, "")
    return f"Learning rate η = {opt.lr:g}{extra}."


# --- Markdown -----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    from bpcalc.render.markdown import cell

    return cell(text)


def _md_table(cells: list[list[str]], heads: list[str], rows: list[str]) -> list[str]:
    lead = any(rows)
    head = ([""] if lead else []) + heads
    out = ["| " + " | ".join(_md_cell(h) for h in head) + " |"]
    out.append("|" + "|".join(" --- " for _ in head) + "|")
    for r, row in zip(rows, cells, strict=True):
        out.append("| " + " | ".join(([_md_cell(r)] if lead else []) + row) + " |")
    return out + [""]


def worksheet_rows(t: Template, spec: NetworkSpec) -> list[tuple[str, str, str]]:
    """(element reference, LaTeX symbol, plain symbol): one line per number to compute."""
    from bpcalc import engine

    st = engine.run(spec).steps[0]
    out = []
    for ref in t.asked:
        name, index = parse_ref(ref)
        shape = st.records[name].shape
        idxs = [index] if index is not None else list(np.ndindex(*shape))
        for ix in idxs:
            el = f"{name}[{','.join(map(str, ix))}]" if ix else name
            out.append((el, symbols.latex(el), symbols.plain(el)))
    return out


def markdown(t: Template, v: Variant, svg: str | None) -> str:
    spec = v.spec
    ex = t.exercise
    out = [
        f"# {_md_cell(t.title)}",
        "",
        f"**Variant {v.number}** · Name: ______________________",
        "",
    ]
    out += [ex.instructions or DEFAULT_INSTRUCTIONS, "", f"**Rounding.** {rounding_rule(t)}", ""]
    out += ["## Conventions", ""]
    for what, text in conventions(t, spec):
        out.append(f"- {'**' + _md_cell(what) + '**: ' if what else ''}{_md_cell(text)}")
    out += ["", "## The network", ""]
    if svg is not None:
        out += [f"![The network: nodes, weights on the edges, biases under the nodes]({svg})", ""]
    out += ["## Given values", ""]
    for title, _, cells, heads, rows in _given(spec):
        out += [f"**{_md_cell(title)}**", ""] + _md_table(cells, heads, rows)
    out += [_md_cell(_learning(spec)), "", "## Worksheet", ""]
    keys = ex.worksheet_keys
    if keys:
        out += [
            "Write each number in the answer column, and in the answer sheet you hand in under "
            "the name in the key column (indices there count from 0).",
            "",
        ]
    head = "| # | value | " + ("key | " if keys else "") + "your answer |"
    out += [head, "| --- | --- | " + ("--- | " if keys else "") + "--- |"]
    for i, (ref, tex, _) in enumerate(worksheet_rows(t, spec), start=1):
        key = f"`{ref}` | " if keys else ""
        out.append(f"| {i} | ${tex}$ | {key} |")
    return "\n".join(out) + "\n"


# --- LaTeX --------------------------------------------------------------------------------


def _tex_table(cells: list[list[str]], heads: list[str], rows: list[str]) -> list[str]:
    lead = any(rows)
    cols = ("l|" if lead else "") + "r" * len(heads)
    out = [r"\begin{tabular}{" + cols + "}"]
    out.append(" & ".join(([""] if lead else []) + [tx(h) for h in heads]) + r" \\ \hline")
    for r, row in zip(rows, cells, strict=True):
        out.append(" & ".join(([tx(r)] if lead else []) + [f"${c}$" for c in row]) + r" \\")
    out.append(r"\end{tabular}")
    return out


def latex_document(title: str, body: list[str]) -> str:
    head = LATEX_HEAD + diagram.LATEX_PREAMBLE
    return head + "\\begin{document}\n" + "\n".join(body) + "\n\\end{document}\n"


def latex(t: Template, v: Variant) -> str:
    spec = v.spec
    ex = t.exercise
    body = [
        rf"\section*{{{tx(t.title)}}}",
        rf"\textbf{{Variant {v.number}}} \hfill Name: \rule{{7cm}}{{0.4pt}}",
        "",
        tx(ex.instructions or DEFAULT_INSTRUCTIONS),
        "",
        rf"\textbf{{Rounding.}} {tx(rounding_rule(t))}",
        r"\subsection*{Conventions}",
        r"\begin{itemize}",
    ]
    for what, text in conventions(t, spec):
        body.append(r"\item " + (rf"\textbf{{{tx(what)}}}: " if what else "") + tx(text))
    body += [r"\end{itemize}", r"\subsection*{The network}"]
    body.append(diagram.latex_figure(diagram.build(spec)))
    body.append(r"\subsection*{Given values}")
    for title, _, cells, heads, rows in _given(spec):
        body += [r"\par\medskip\noindent\textbf{" + tx(title) + r"}\par\smallskip\noindent"]
        body += _tex_table(cells, heads, rows)
        body.append("")
    body += [r"\par\medskip\noindent " + tx(_learning(spec)), r"\subsection*{Worksheet}"]
    keys = ex.worksheet_keys
    if keys:
        body.append(
            tx(
                "Write each number in the answer column, and in the answer sheet you hand in "
                "under the name in the key column (indices there count from 0)."
            )
        )
        body.append("")
    cols = r"r>{$}l<{$}" + ("l" if keys else "") + "p{5.5cm}"
    body += [r"\renewcommand{\arraystretch}{1.9}", r"\begin{longtable}{" + cols + "}"]
    body.append(r"\# & \text{value} & " + (r"key & " if keys else "") + r"your answer \\ \hline")
    for i, (ref, tex, _) in enumerate(worksheet_rows(t, spec), start=1):
        key = r"{\small\texttt{" + tx(ref) + "}} & " if keys else ""
        body.append(rf"{i} & {tex} & {key}\hrulefill \\")
    body.append(r"\end{longtable}")
    return latex_document(t.title, body)


def diagram_svg(spec: NetworkSpec) -> str:
    return diagram.svg(diagram.build(spec))
