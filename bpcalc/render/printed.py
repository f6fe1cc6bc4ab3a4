"""What tables and --explain would print, measured before they are drawn, so that
`bpcalc.budget.check_printed` can refuse output no one could read (see docs/errors.md)."""

from __future__ import annotations

from typing import Any

from bpcalc.budget import CHARS_PER_NUMBER

WORK_BYTES_PER_CHAR = 6  # an explanation in memory (its Work record, lines, JSON) per character


def table_chars(trace: Any, keep: Any, decimals: int, full: bool) -> tuple[int, str]:
    """What the tables of `trace` would print (characters) and the largest value in them."""
    from bpcalc.render.numbers import SUMMARY_THRESHOLD
    from bpcalc.render.writeup import SAMPLES_SHOWN

    total, big, big_size = 0, "", -1
    per = decimals + CHARS_PER_NUMBER
    for st in trace.steps:
        for r in st:
            if not keep(r):
                continue
            size = r.value.size
            if r.per_sample and not full and r.value.shape[0] > SAMPLES_SHOWN + 1:
                size = size // r.value.shape[0] * SAMPLES_SHOWN
            if not full and size > SUMMARY_THRESHOLD:
                size = 9 + 3
            chars = per * size + len(r.formula) + 40
            total += chars
            if chars > big_size:
                big, big_size = r.name, chars
    return total, big


def work_chars(
    trace: Any, request: Any, decimals: Any, full: bool, keep: Any, writeup: bool = False
) -> tuple[int, str]:
    """What --explain would print (characters, every step) and the value that prints most:
    one element of each value is explained, and counted for all the value's elements.
    writeup: for Markdown and LaTeX, whose long sums show their first and last terms."""
    from bpcalc.explain import classify, explain_element, selected, work_lines
    from bpcalc.explain.work import Ctx, Fmt
    from bpcalc.render.writeup import abbreviated

    st = trace.steps[0]
    ctx = Ctx(trace, st, trace.spec, Fmt(decimals))
    total, big, big_chars = 0, "", -1
    for rec in st:
        if not keep(rec):
            continue
        chosen = selected(rec, request, full)
        if chosen is None or chosen == "skipped":
            total += 100 if chosen else 0
            continue
        named = request.elements.get(rec.name, [])
        count = len(named) if chosen == "elements" else rec.value.size
        first = named[0] if chosen == "elements" else (0,) * rec.value.ndim
        work = explain_element(ctx, classify(trace.spec, rec, st.records), tuple(first))
        lines = work_lines(work)
        if writeup:
            lines = [abbreviated(line)[0] for line in lines]
        chars = count * (sum(len(line) + 1 for line in lines) + 40)
        total += chars
        if chars > big_chars:
            big, big_chars = rec.name, chars
    return total * len(trace.steps), big
