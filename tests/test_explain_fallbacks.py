"""--explain never crashes (a value without an explainer shows its formula), and which
values are explained: large ones only when named, bad names are usage errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bpcalc import engine, explain
from bpcalc.explain import FALLBACK_NOTE
from bpcalc.explain.registry import Item, classify, explain_element
from bpcalc.explain.work import Ctx, Fmt
from bpcalc.network.parse import load_network
from bpcalc.trace import Record
from tests.explain_helpers import CONV_NET, run_text

# --- never crash ----------------------------------------------------------------------------


def test_a_value_without_an_explainer_shows_its_formula_and_value():
    trace = engine.run(load_network("examples/example1.yaml"))
    st = trace.steps[0]
    rec = Record(
        "dropout1.mask", np.array([1.0, 0.0]), "forward", "dropout1", "m ~ Bernoulli(1 − p)"
    )
    item = classify(trace.spec, rec)
    assert item.role == "other"
    w = explain_element(Ctx(trace, st, trace.spec, Fmt(4)), item, (1,))
    assert (w.symbolic, w.result, w.name) == ("m ~ Bernoulli(1 − p)", "0", "dropout1.mask[1]")
    assert w.note.startswith(FALLBACK_NOTE)


def test_an_explainer_that_fails_falls_back_instead_of_crashing(monkeypatch):
    trace = engine.run(load_network("examples/example1.yaml"))
    st = trace.steps[0]

    def broken(ctx, item, index):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(explain.registry._REGISTRY, ("linear", "conv2d"), broken)
    item = classify(trace.spec, st.records["conv.z"])
    w = explain_element(Ctx(trace, st, trace.spec, Fmt(4)), item, (0, 0))
    assert w.result == "4.5" and "ZeroDivisionError" in w.note


def test_a_new_optimizer_can_register_its_own_explainer(monkeypatch):
    trace = engine.run(load_network("examples/example1.yaml"))
    st = trace.steps[0]
    monkeypatch.delitem(explain.registry._REGISTRY, ("update", "sgd"))
    item = classify(trace.spec, st.records["new.conv.bias"])
    ctx = Ctx(trace, st, trace.spec, Fmt(4))
    assert explain_element(ctx, item, ()).note.startswith(FALLBACK_NOTE)

    @explain.register("update", "sgd")
    def custom(ctx, item: Item, index):
        return explain.Work("new.conv.bias", index, "b − η·g", "1.5 − 0.01 × (−5.5)", "1.555")

    assert explain_element(ctx, item, ()).symbolic == "b − η·g"


# --- selection ------------------------------------------------------------------------------


def test_large_values_are_explained_only_when_named():
    trace = run_text(CONV_NET)
    request = explain.parse_requests(["all"], trace)
    exps = {e.record.name: e for e in explain.explain_trace(trace, request)[1]}
    assert exps["input"].skipped and not exps["input"].works  # 32 elements > 16
    assert not exps["conv.bias"].skipped and len(exps["conv.bias"].works) == 2
    request = explain.parse_requests(["input", "conv.z[1,0,1,1]"], trace)
    exps = {e.record.name: e for e in explain.explain_trace(trace, request)[1]}
    assert len(exps["input"].works) == 32
    assert [w.name for w in exps["conv.z"].works] == ["conv.z[1,0,1,1]"]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("conv.zz", "did you mean conv.z"),
        ("conv.z[0]", "conv.z has shape 1x1"),
        ("conv.z[5,0]", "conv.z has shape 1x1"),
    ],
)
def test_unknown_names_and_bad_indices_are_usage_errors(ref, message):
    from bpcalc.errors import UsageError

    trace = engine.run(load_network("examples/example1.yaml"))
    with pytest.raises(UsageError, match=re.escape(message)):
        explain.parse_requests([ref], trace)
