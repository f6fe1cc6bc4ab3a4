"""Fuzz bpcalc new with options that make sense and options that do not: it writes a
network its own loader accepts, or exits 2."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import run_cli

NEW_VALID = {  # values that make sense, so that about half the cases write a network
    "--sizes": ["2,3,1", "4,8,2", "3,1", "64,32,10"],
    "--activation": ["relu", "tanh", "sigmoid", "leaky_relu"],
    "--loss": ["mse", "cross_entropy", "binary_cross_entropy", "half_sse"],
    "--input": ["1,8,8", "3,6,6", "1,4,4", "2,5,7"],
    "--channels": ["1", "4"],
    "--kernel": ["1", "3", "5"],
    "--pool": ["1", "2", "3"],
    "--classes": ["2", "10"],
    "--lr": ["0.1", "1e-3"],
}
new_values = st.one_of(
    st.text(max_size=8),
    st.from_regex(r"-?[0-9]{1,4}(,-?[0-9]{0,3}){0,4}", fullmatch=True),
    st.sampled_from(["relu", "softmax", "cross_entropy", "0", "-1", "inf", "nan"]),
)
new_options = st.sampled_from(sorted(NEW_VALID)).flatmap(  # 3 values in 4 make sense
    lambda opt: st.tuples(st.just(opt), st.sampled_from(NEW_VALID[opt] * 3) | new_values)
)


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("BPCALC_FUZZ_EXAMPLES", "2000")) // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.sampled_from(["mlp", "cnn", "rnn"]),
    st.lists(new_options, max_size=3),
    st.sampled_from(NEW_VALID["--sizes"]) | new_values,
)
def test_new_writes_a_network_its_own_loader_accepts_or_exits_2(
    kind: str, options: list[tuple[str, str]], sizes: str
) -> None:
    from bpcalc.network.parse import parse_network
    from bpcalc.network.yaml_source import load_yaml_text

    if kind == "mlp":  # mlp needs its sizes
        options = [("--sizes", sizes), *options]
    args = ["new", kind] + [f"{opt}={value}" for opt, value in options]
    code, out, err = run_cli(b"", args)
    event(f"exit {code}")
    assert code in (0, 2), f"exit {code}: {err}"
    assert "Traceback" not in out + err
    if code == 0:
        parse_network(load_yaml_text(out, "new.yaml"))  # a SpecError here fails the test
