"""Numbers that overflow during the run are one message naming the value and the layer
(exit 2), and numpy's own warnings never reach the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.errors_helpers import (
    CONV,
    DENSE,
    Case,
    assert_one_located_error,
    run_cli,
    sub,
)

CASES = [
    # --- numbers that overflow during the run ---------------------------------------------
    Case(
        "an input that overflows the first layer",
        sub(DENSE, "input: [1, 2]", "input: [1.0e200, 1]").replace("0.1, 0.2", "1.0e200, 1"),
        "4:5",  # the layer fc, whose z = W·x + b is 1e400
        ("fc.z[0] became inf", "z = W·x + b", "overflowed"),
    ),
    Case(
        "an image that overflows a convolution",
        sub(CONV, "[[1, 0], [0, 1]]", "[[1.0e200, 0], [0, 1]]").replace(
            "[1, 2, 3]", "[1.0e200, 2, 3]"
        ),
        "6:5",  # the layer conv: z[0,0] = 1e200·1e200 + 5 = inf, shown as a 2 x 2 image
        ("conv.z[0,0] became inf", "z = x ⋆ K + b"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_located_message_with_exit_code_2(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_located_error(case, tmp_path, capsys, monkeypatch)


def test_numpy_warnings_do_not_reach_the_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1e200 · 1e200 overflows inside numpy: the user sees bpcalc's message, not numpy's.
    path = tmp_path / "net.yaml"
    path.write_text(
        sub(DENSE, "input: [1, 2]", "input: [1.0e200, 1]").replace("0.1, 0.2", "1.0e200, 1")
    )
    code, out, err = run_cli(["step", str(path)], capsys)
    assert code == 2
    assert "RuntimeWarning" not in err
    assert err.count("\n") == 1, err
