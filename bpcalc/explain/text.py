"""Plain-text lines for a Work, in the seed's style:

    conv.z[0,0] = x11·k11 + x12·k12 + x21·k21 + x22·k22 + b
                = 0.2×0.5 + 0.8×(−0.3) + 0.6×0.2 + 0.1×0.4 + 0.1 = 0.12

One line when it fits in `width` columns, else the numbers go on a second line under the
first '='. A note (why a branch was taken) follows, indented the same.
"""

from __future__ import annotations

from bpcalc.explain.work import Work

WIDTH = 80


def chain(w: Work) -> list[str]:
    """The right-hand sides: symbols, numbers (when they say more than the result), result."""
    parts = [w.symbolic]
    bare = w.substituted.strip("()")
    if (
        w.substituted
        and w.substituted != w.result
        and bare != w.result
        and w.substituted != w.symbolic
    ):
        parts.append(w.substituted)
    if w.result != parts[-1]:
        parts.append(w.result)
    return parts


def work_lines(w: Work, width: int = WIDTH) -> list[str]:
    parts = chain(w)
    one = f"{w.name} = " + " = ".join(parts)
    pad = " " * (len(w.name) + 1)
    if len(one) <= width or len(parts) == 1:
        lines = [one]
    else:
        lines = [f"{w.name} = {parts[0]}", pad + "= " + " = ".join(parts[1:])]
    if w.note:
        lines.append(f"{pad}  ({w.note})")
    return lines
