"""How a handout writes a value: a letter with the layer as a superscript and the element's
1-based position as a subscript (z₂ of layer hidden: z^{(hidden)}_{2}), ∂L/∂… for gradients
and a prime for updated parameters. LaTeX math (for the handouts in Markdown and LaTeX) and
plain Unicode (for the diagram and the tables)."""

from __future__ import annotations

from bpcalc.render.texmath import text as tx
from bpcalc.trace import parse_ref

LETTERS = {
    "z": "z",
    "a": "a",
    "weights": "W",
    "bias": "b",
    "kernel": "K",
    "input": "x",
}
WHOLE = {"input": "x", "target": "y", "loss": "L", "loss_after": "L_{\\text{after}}"}
SUBSCRIPT = str.maketrans("0123456789,", "₀₁₂₃₄₅₆₇₈₉,")


def _index(index: tuple[int, ...] | None) -> str:
    if not index:
        return ""
    return "_{" + ",".join(str(i + 1) for i in index) + "}"


def latex(ref: str) -> str:
    """The math-mode symbol of a value or element: grad.hidden.weights[0,1] ->
    \\frac{\\partial L}{\\partial W^{(\\text{hidden})}_{1,2}}."""
    name, index = parse_ref(ref)
    parts = name.split(".")
    if parts[0] == "grad":
        inner = latex(".".join(parts[1:]) + (f"[{','.join(map(str, index))}]" if index else ""))
        return r"\frac{\partial L}{\partial " + inner + "}"
    prime = ""
    if parts[0] == "new":
        parts, prime = parts[1:], r"\prime"
    if len(parts) == 1:
        base = WHOLE.get(parts[0], r"\text{" + tx(parts[0]) + "}")
        return base + (("^{" + prime + "}") if prime else "") + _index(index)
    layer, what = parts[0], ".".join(parts[1:])
    letter = LETTERS.get(what, r"\text{" + tx(what) + "}")
    return f"{letter}^{{{prime}(\\text{{{tx(layer)}}})}}" + _index(index)


def plain(ref: str) -> str:
    """The same in Unicode text: ∂L/∂W(hidden)₁,₂."""
    name, index = parse_ref(ref)
    parts = name.split(".")
    sub = ",".join(str(i + 1) for i in index).translate(SUBSCRIPT) if index else ""
    if parts[0] == "grad":
        return "∂L/∂" + plain(
            ".".join(parts[1:]) + (f"[{','.join(map(str, index))}]" if index else "")
        )
    prime = ""
    if parts[0] == "new":
        parts, prime = parts[1:], "′"
    if len(parts) == 1:
        base = {"input": "x", "target": "y", "loss": "L", "loss_after": "L after"}.get(
            parts[0], parts[0]
        )
        return base + prime + sub
    letter = LETTERS.get(".".join(parts[1:]), ".".join(parts[1:]))
    return f"{letter}{prime}{sub} ({parts[0]})"
