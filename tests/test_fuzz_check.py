"""Fuzz bpcalc check with mutated answer sheets: exit 0, 1 or 2, a located message, no
traceback."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import EXAMPLE_FILES, mutate_data, mutate_text, numbers, run_cli, scalars
from tests.helpers import strict_json


def _correct_answers(example: Path) -> dict[str, Any]:
    code, out, err = run_cli(b"", ["step", str(example), "--json"])
    assert code == 0, err
    return strict_json(out)["steps"][0]["values"]


_ANSWERS: dict[Path, dict[str, Any]] = {}


@st.composite
def answer_sheets(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    example = draw(st.sampled_from(EXAMPLE_FILES))
    if example not in _ANSWERS:
        _ANSWERS[example] = _correct_answers(example)
    sheet = copy.deepcopy(_ANSWERS[example])
    names = sorted(sheet)
    for _ in range(draw(st.integers(0, 3))):
        how = draw(st.sampled_from(["data", "perturb", "element", "drop"]))
        if how == "data":
            sheet = draw(mutate_data(sheet))
        elif how == "perturb" and names:  # a wrong answer: the checker should say so (exit 1)
            name = draw(st.sampled_from(names))
            if isinstance(sheet.get(name), (int, float)) and not isinstance(sheet[name], bool):
                sheet[name] = sheet[name] * draw(st.sampled_from([-1, 0, 0.5, 2, 10])) + 1
        elif how == "element" and names:  # one element on its own line, maybe out of range
            name = draw(st.sampled_from(names + ["nosuch.value"]))
            idx = ",".join(str(draw(st.integers(-1, 3))) for _ in range(draw(st.integers(0, 3))))
            sheet[f"{name}[{idx}]"] = draw(numbers | scalars)
        elif how == "drop" and names:
            sheet.pop(draw(st.sampled_from(names)), None)
    text = yaml.safe_dump(sheet, default_flow_style=draw(st.sampled_from([None, True])))
    for _ in range(draw(st.integers(0, 2))):
        text = draw(mutate_text(text))
    args = ["check", str(example), "-"]
    if draw(st.booleans()):
        args.append("--json")
    if draw(st.integers(0, 3)) == 0:
        args += ["--round-each", str(draw(st.integers(0, 6)))]
    return text.encode("utf-8", errors="surrogatepass"), args


CHECK_LOCATED = re.compile(r"bpcalc: error: (<stdin>|\S+\.yaml):\d+:\d+: \S")


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(answer_sheets())
def test_mutated_answer_sheets_exit_0_1_or_2_with_a_located_message_and_no_traceback(
    case: tuple[bytes, list[str]],
) -> None:
    raw, args = case
    code, out, err = run_cli(raw, args)
    event(f"exit {code}")
    assert code in (0, 1, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    if code == 2:
        assert out == ""
        *warnings, error = err.strip().splitlines()
        assert CHECK_LOCATED.match(error), err
        assert all(line.startswith("bpcalc: warning: ") for line in warnings), err
    else:
        assert all(line.startswith("bpcalc: warning: ") for line in err.splitlines()), err
        if "--json" in args:
            strict_json(out)
