"""Unicode formula text -> LaTeX, for the Markdown ($...$) and LaTeX write-ups.

`math(s)` converts the explanations' notation (x11·k11, ∂L/∂k11, e^(−z1), ReLU′(z11), ½·(…)²,
x1⁽²⁾) to math-mode LaTeX: x_{11} \\cdot k_{11}, \\frac{\\partial L}{\\partial k_{11}}, ...
`text(s)` makes any other text (formulas of the records, conventions, names) safe for
LaTeX text mode: specials escaped, known symbols as \\ensuremath{...}. Characters it does not
know become '?', so the document always compiles with pdflatex.
"""

from __future__ import annotations

import re

import numpy as np

from bpcalc import activations
from bpcalc.render.numbers import ROW_LENGTH, Precision, fmt

SYMBOLS = {
    "×": r"\times",
    "·": r"\cdot",
    "−": "-",
    "′": "'",
    "⊙": r"\odot",
    "Σ": r"\sum",
    "∑": r"\sum",
    "∏": r"\prod",
    "η": r"\eta",
    "σ": r"\sigma",
    "α": r"\alpha",
    "β": r"\beta",
    "γ": r"\gamma",
    "δ": r"\delta",
    "Δ": r"\Delta",
    "ε": r"\varepsilon",
    "θ": r"\theta",
    "λ": r"\lambda",
    "μ": r"\mu",
    "ν": r"\nu",
    "π": r"\pi",
    "ρ": r"\rho",
    "τ": r"\tau",
    "φ": r"\varphi",
    "χ": r"\chi",
    "ψ": r"\psi",
    "ω": r"\omega",
    "∂": r"\partial",
    "∇": r"\nabla",
    "…": r"\dots",
    "≤": r"\le",
    "≥": r"\ge",
    "≠": r"\ne",
    "≈": r"\approx",
    "∈": r"\in",
    "→": r"\to",
    "←": r"\leftarrow",
    "⋆": r"\star",
    "∗": r"\ast",
    "√": r"\surd",
    "∞": r"\infty",
    "°": r"^\circ",
    "½": r"\tfrac{1}{2}",
    "²": "^{2}",
    "³": "^{3}",
    "ᵀ": "^{T}",
    "ᵗ": "^{t}",
    "ⁿ": "^{n}",
    "ₙ": "_{n}",
    "ᵢ": "_{i}",
    "ⱼ": "_{j}",
    "ₖ": "_{k}",
    "ℓ": r"\ell",
    "∓": r"\mp",
    "±": r"\pm",
    "⌀": r"\oslash",
    "∘": r"\circ",
    "≡": r"\equiv",
    "⇒": r"\Rightarrow",
    "‖": r"\|",
    "⌈": r"\lceil",
    "⌉": r"\rceil",
    "⌊": r"\lfloor",
    "⌋": r"\rfloor",
}
TEXT_ONLY = {"—": "---", "–": "--", "’": "'", "‘": "`", "“": "``", "”": "''", "\u00a0": "~"}
SUPER = {"⁽": "(", "⁾": ")", **{c: str(i) for i, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")}, "⁻": "-"}
SUB = {c: str(i) for i, c in enumerate("₀₁₂₃₄₅₆₇₈₉")}
FUNCTIONS = {"ln": r"\ln", "max": r"\max", "min": r"\min", "tanh": r"\tanh", "exp": r"\exp"}
# Operator names of the layers' formulas; each activation unit names its own.
OPERATORS = {
    **{op: rf"\operatorname{{{op}}}" for op in ("flatten", "flip", "maxpool", "avgpool")},
    **activations.operators(),
}
TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
MATH_ESCAPES = {"$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%", "~": r"\sim ", "|": r"\vert "}

GREEK = "αβγδεηθλμνπρστφχψω"
_TOKEN = re.compile(
    r"(?P<partial>∂L/∂)"
    r"|(?P<hat>(?<![A-Za-z])[A-Za-z]\u0302(?:\d+|_\{[\d,]+\})?)"
    r"|(?P<greek>[" + GREEK + r"](?:\d+|_\{[\d,]+\}))"
    r"|(?P<sym>(?<![A-Za-z])[A-Za-z](?:\d+|_\{[\d,]+\})(?![A-Za-z]))"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<num>\d+(?:\.\d+)?(?:e[-+]\d+)?)"
    r"|(?P<sub>_\{[^}]*\})"
)


def _symbol_at(s: str, i: int) -> tuple[str, int]:
    """Convert the symbol starting at s[i] (a letter with digits, a word, ∂L/∂...), return
    (latex, next position)."""
    m = _TOKEN.match(s, i)
    if m is None:
        return _char(s[i]), i + 1
    return _token(m), m.end()


def _token(m: re.Match[str]) -> str:
    kind = m.lastgroup
    t = m.group(0)
    if kind in ("sym", "greek", "hat"):
        letter, rest = t[0], t[1:]
        head = SYMBOLS.get(letter, letter)
        if kind == "hat":
            head, rest = rf"\hat{{{letter}}}", rest[1:]
        elif kind == "greek":
            head += " "
        if not rest:
            return head
        return f"{head}_{{{rest[2:-1] if rest.startswith('_') else rest}}}"
    if kind == "word":
        if t in FUNCTIONS:
            return FUNCTIONS[t]
        if len(t) == 1:
            return t
        if t in OPERATORS:
            return OPERATORS[t]
        return rf"\text{{{t}}}"
    if kind == "sub":
        return "_" + t[1:]
    if kind == "num" and "e" in t:
        mant, exp = t.split("e")
        return rf"{mant}\times 10^{{{int(exp)}}}"
    return t


def _char(ch: str) -> str:
    if ch in SYMBOLS:
        out = SYMBOLS[ch]
        return out + (" " if out[-1].isalpha() else "")
    if ch in MATH_ESCAPES:
        return MATH_ESCAPES[ch]
    if ch == "\\":
        return r"\backslash "
    if ch in "{}":
        return "\\" + ch
    if ord(ch) < 128:
        return ch
    return "?"


def _text_word(s: str, i: int) -> bool:
    """A word set in text (\\text{mean}) starts at s[i], not a function or a symbol."""
    m = _TOKEN.match(s, i)
    return (
        m is not None
        and m.lastgroup == "word"
        and len(m.group(0)) > 1
        and m.group(0) not in FUNCTIONS
        and m.group(0) not in OPERATORS
    )


def math(s: str) -> str:
    """Unicode explanation notation -> LaTeX math (without the surrounding $)."""
    out: list[str] = []
    i = 0
    word = False  # the last token was a word set in text: a space after it is kept
    while i < len(s):
        ch = s[i]
        if ch == " ":
            # math mode drops spaces: keep the ones around words (mean over the batch,
            # 1 if z > 0 else 0) as control spaces
            j = i
            while j < len(s) and s[j] == " ":
                j += 1
            out.append(r"\ " if word or (j < len(s) and _text_word(s, j)) else " ")
            i = j
            continue
        word = _text_word(s, i)
        if s.startswith("∂L/∂", i):
            # the symbol after ∂L/∂ goes to the denominator, with any prime / sample mark
            j = i + 4
            sym, j = _symbol_at(s, j) if j < len(s) else ("", j)
            marks, j = _marks(s, j)
            out.append(rf"\frac{{\partial L}}{{\partial {sym}{marks}}}")
            i = j
            continue
        if ch == "^":
            if i + 1 < len(s) and s[i + 1] == "(":
                end = _closing(s, i + 1)
                out.append("^{" + math(s[i + 2 : end]) + "}")
                i = end + 1
            elif i + 1 < len(s):
                tok, j = _symbol_at(s, i + 1)
                out.append("^{" + tok + "}")
                i = j
            else:
                out.append(r"\hat{}")
                i += 1
            continue
        if ch == "√":
            if i + 1 < len(s) and s[i + 1] == "(":
                end = _closing(s, i + 1)
                out.append(r"\sqrt{" + math(s[i + 2 : end]) + "}")
                i = end + 1
            else:
                tok, j = _symbol_at(s, i + 1) if i + 1 < len(s) else ("", i + 1)
                out.append(r"\sqrt{" + tok + "}")
                i = j
            continue
        if ch in SUPER:
            marks, i = _marks(s, i)
            out.append(marks)
            continue
        if ch in SUB:
            j = i
            while j < len(s) and s[j] in SUB:
                j += 1
            out.append("_{" + "".join(SUB[c] for c in s[i:j]) + "}")
            i = j
            continue
        m = _TOKEN.match(s, i)
        if m is not None and m.lastgroup != "partial":
            out.append(_token(m))
            i = m.end()
            continue
        out.append(_char(ch))
        i += 1
    return "".join(out).replace("  ", " ").strip()


def _marks(s: str, i: int) -> tuple[str, int]:
    """Primes and superscript sample marks after a symbol: ′ -> ', ⁽²⁾ -> ^{(2)}."""
    out = ""
    sup = ""
    while i < len(s) and (s[i] == "′" or s[i] in SUPER):
        if s[i] == "′":
            out += "'"
        else:
            sup += SUPER[s[i]]
        i += 1
    return out + (f"^{{{sup}}}" if sup else ""), i


def _closing(s: str, i: int) -> int:
    depth = 0
    for j in range(i, len(s)):
        if s[j] == "(":
            depth += 1
        elif s[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    return len(s) - 1


ARROWS = {"->": r"\to", "<-": r"\leftarrow", "=>": r"\Rightarrow"}
_SUBSCRIPT = re.compile(r"_\{([^{}]*)\}|_([A-Za-z0-9]+)")


def _subscript_at(s: str, i: int) -> re.Match[str] | None:
    """A subscript starts at s[i]: _{h,w} always; _n after a symbol (Σ_n, ℓ_n, Σ_batch);
    _i, _j, _k, _n or _data after a one-letter symbol (z_i, L_data); never inside a name
    (binary_cross_entropy, conv_1, h_1.z)."""
    m = _SUBSCRIPT.match(s, i)
    if m is None or i == 0:
        return None
    if m.group(1) is not None:
        return m
    before = s[i - 1]
    if not before.isascii():
        return m
    single = before.isalpha() and (i < 2 or not s[i - 2].isalnum())
    if single and m.group(2) in ("i", "j", "k", "n", "data") and s[m.end() : m.end() + 1] != ".":
        return m
    return None


def text(s: str) -> str:
    """Any text -> LaTeX text mode: specials escaped, symbols in \\ensuremath, subscripts
    (Σ_{h,w}, ℓ_n) and arrows (->) as math, -- kept as two hyphens."""
    out: list[str] = []
    skip = 0
    for i, ch in enumerate(s):
        if skip:
            skip -= 1
            continue
        if s[i : i + 2] in ARROWS:
            out.append(rf"\ensuremath{{{ARROWS[s[i : i + 2]]}}}")
            skip = 1
            continue
        if ch == "_":
            m = _subscript_at(s, i)
            if m is not None:
                sub = m.group(1) if m.group(1) is not None else m.group(2)
                out.append(rf"\ensuremath{{_{{{math(sub)}}}}}")
                skip = m.end() - i - 1
                continue
        if ch == "-" and s[i + 1 : i + 2] == "-":  # not an en dash
            out.append("-{}")
            continue
        if ch == "\u0302":  # a combining hat, already written with its letter
            continue
        if i + 1 < len(s) and s[i + 1] == "\u0302" and ch.isascii() and ch.isalpha():
            out.append(rf"\ensuremath{{\hat{{{ch}}}}}")
            continue
        if ch in TEXT_ESCAPES:
            out.append(TEXT_ESCAPES[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in TEXT_ONLY:
            out.append(TEXT_ONLY[ch])
        elif ch in SYMBOLS or ch in SUPER or ch in SUB:
            piece = SYMBOLS.get(ch) or SUPER.get(ch) or ""
            if ch in SUPER:
                piece = "^{" + SUPER[ch] + "}"
            elif ch in SUB:
                piece = "_{" + SUB[ch] + "}"
            out.append(rf"\ensuremath{{{piece}}}")
        else:
            out.append("?")
    return "".join(out)


def name(s: str) -> str:
    """A value name as typewriter text: \\texttt{grad.conv\\_1.kernel[0,1]}."""
    return r"\texttt{" + text(s) + "}"


def matrix(value: np.ndarray, decimals: int | Precision, row_end: str = r" \\ ") -> str:
    """A number, vector or matrix as LaTeX math (a row vector for 1-D, bmatrix for 2-D);
    higher ranks as labelled 2-D slices. A vector longer than ROW_LENGTH wraps onto rows of
    ROW_LENGTH numbers, as the terminal shows it. row_end: Markdown uses \\cr, which no
    Markdown processor mistakes for an escaped backslash."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return number(float(value), decimals)
    if value.ndim == 1:
        cells = [number(v, decimals) for v in value]
        rows = [cells[i : i + ROW_LENGTH] for i in range(0, len(cells), ROW_LENGTH)]
        return r"\begin{bmatrix}" + row_end.join(" & ".join(r) for r in rows) + r"\end{bmatrix}"
    if value.ndim == 2:
        rows = [" & ".join(number(v, decimals) for v in row) for row in value]
        return r"\begin{bmatrix}" + row_end.join(rows) + r"\end{bmatrix}"
    parts = []
    for idx in np.ndindex(*value.shape[:-2]):
        label = ",".join(str(i) for i in idx)
        parts.append(rf"{{}}_{{[{label},:,:]}}" + matrix(value[idx], decimals, row_end))
    return r",\ ".join(parts)


def number(v: float, decimals: int | Precision) -> str:
    """A number in math mode: 4.386e-06 as 4.386\\times 10^{-6}."""
    s = fmt(float(v), decimals)
    if "e" in s and s[0] in "-0123456789":
        mant, exp = s.split("e")
        return rf"{mant}\times 10^{{{int(exp)}}}"
    return s
