"""Explanations that add up: every substituted line, read back from the printed text and
evaluated with a calculator, gives the printed result to its last printed digit, for every
explanation of every example and test network, at the default 4 significant digits, at
--digits 3 and at --decimals 4 (rounded operands that would not add up are printed with more
digits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpcalc import engine, explain
from bpcalc.explain.text import work_lines
from bpcalc.network.parse import load_network
from bpcalc.render.numbers import Precision, decimals_shown
from tests.explain_helpers import NETWORKS, evaluate, run_text
from tests.test_render_formats import EVERYTHING_NET, UNDERSCORE_NET

# the examples that run as they are, but the digits' 1497-sample batches (their sums run to
# thousands of terms: the batch sums are checked on the smaller batches below)
EXAMPLES = {
    p.stem: (lambda p=p: engine.run(load_network(str(p)), steps=2))
    for p in Path("examples").glob("*.yaml")
    if p.name != "mnist_784_128_10.yaml"
}
ALL = {
    **{f"example:{k}": v for k, v in EXAMPLES.items()},
    **NETWORKS,
    "everything": lambda: run_text(EVERYTHING_NET, steps=3),
    "underscore": lambda: run_text(UNDERSCORE_NET, steps=2),
    "round-each": lambda: engine.run(load_network("examples/example2.yaml"), round_each=3),
}
PRECISIONS = {
    "4 digits": Precision(),
    "3 digits": Precision(digits=3),
    "4 decimals": Precision(decimals=4),
}


def printed_lines(trace, p: Precision) -> list[str]:  # noqa: ANN001
    """Every explanation as the terminal prints it (one logical line each)."""
    request = explain.parse_requests(["all"], trace)
    lines = []
    for exps in explain.explain_trace(trace, request, p, full=True).values():
        for e in exps:
            for w in e.works:
                body = work_lines(w, width=10_000)
                lines.append(body[0])  # the note (why a branch was taken) is not arithmetic
    return lines


def adds_up(line: str) -> tuple[bool, str]:
    """Split 'name = symbols = numbers = result', evaluate the numbers, compare with the
    result to half a unit of its last printed digit. (True, '') when there are no numbers."""
    parts = line.split(" = ")
    if len(parts) < 3:
        return True, ""
    numbers, result = parts[-2], parts[-1]
    try:
        got = evaluate(numbers)
    except (ValueError, SyntaxError):
        return True, ""  # symbols, not numbers (x11 = the input's element)
    want = float(result.replace("−", "-"))
    half = 0.5 * 10.0 ** -decimals_shown(result)
    ok = abs(got - want) <= half * (1 + 1e-9) + 1e-12 * abs(want)
    return ok, f"{numbers} = {got!r}, printed {result}"


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
@pytest.mark.parametrize("net", sorted(ALL))
def test_every_printed_explanation_adds_up_to_its_last_digit(net: str, precision: str) -> None:
    trace = ALL[net]()
    lines = printed_lines(trace, PRECISIONS[precision])
    assert lines
    checked = 0
    for line in lines:
        ok, why = adds_up(line)
        assert ok, f"{line}\n{why}"
        checked += bool(why)
    assert checked > 0


def test_the_seed_line_gets_a_digit_more_where_four_would_not_add_up() -> None:
    # ∂L/∂z_conv = 0.6 × 0.3724 + (−0.3) × (−0.3724) = 0.33516, which reads 0.3352, but the
    # value is 0.335146 -> 0.3351: the operands are printed as 0.37238
    trace = engine.run(load_network("examples/example2.yaml"))
    (w,) = explain.explain_value(trace, "grad.fc.input[0]", Precision())
    assert w.substituted == "0.6×0.37238 + (−0.3)×(−0.37238)" and w.result == "0.3351"
    # where four digits add up, they stay: 0.1 − 0.01 × (−5.5) = 0.155
    trace = engine.run(load_network("examples/example1.yaml"))
    (w,) = explain.explain_value(trace, "new.conv.kernel[0,0]", Precision())
    assert w.substituted == "0.1 − 0.01 × (−5.5)" and w.result == "0.155"


def test_small_values_keep_their_significant_digits_in_the_work() -> None:
    # Mazur's network: ∂E/∂w1 = 0.000438568 shows as 0.0004386, not 0.0004
    mazur = """
    input: [0.05, 0.10]
    target: [0.01, 0.99]
    layers:
      - {name: h, type: dense, weights: [[0.15, 0.20], [0.25, 0.30]], bias: [0.35, 0.35],
         activation: sigmoid}
      - {name: o, type: dense, weights: [[0.40, 0.45], [0.50, 0.55]], bias: [0.60, 0.60],
         activation: sigmoid}
    loss: half_sse
    learning_rate: 0.5
    """
    trace = run_text(mazur)
    assert trace.steps[0]["grad.h.weights"][0, 0] == pytest.approx(0.000438568, abs=1e-9)
    (w,) = explain.explain_value(trace, "grad.h.weights[0,0]", Precision())
    assert w.result == "0.0004386"
    ok, why = adds_up(work_lines(w, width=10_000)[0])
    assert ok, why
