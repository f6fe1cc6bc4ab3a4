"""The scope the engine hands a unit (bpcalc.layers.Scope): a unit records values of its own in
the forward and the backward pass, under its layer's name, through the recorder every other
value goes through (so --round-each and the checker's substitutions reach them); a silent
training pass records nothing and computes the same numbers."""

from __future__ import annotations

from typing import Any

import numpy as np

from bpcalc import engine
from bpcalc.engine import Substitution
from bpcalc.layers import Delegate, Params, Scope
from tests.helpers import spec_from

NET = """
inputs: [[1.0, 2.0], [0.5, -1.0]]
targets: [[0.5], [0.0]]
layers:
  - name: fc
    type: dense
    weights: [[0.5, -0.25]]
    bias: [0.1]
loss: half_sse
learning_rate: 0.1
"""


class Traced(Delegate):
    """The dense layer as it is, recording what it sees on the way in and on the way back."""

    def forward_with(self, x: np.ndarray, params: Params, scope: Scope) -> tuple[Any, Any]:
        x = scope.record("seen", x, "x as fc saw it", like="input")
        return self.inner.forward(x, params)

    def backward_with(
        self, dz: np.ndarray, cache: Any, params: Params, scope: Scope
    ) -> tuple[Any, dict[str, np.ndarray]]:
        scope.record("dz_seen", dz, "∂L/∂z as fc got it", like="output")
        return super().backward_with(dz, cache, params, scope)


def _traced_run(**kwargs: Any) -> engine.Trace:
    spec = spec_from(NET)
    op = Traced(engine.build_layer(spec.layers[0]).op)
    return engine.run(spec, substitute=Substitution(ops={"fc": op}), **kwargs)


def test_a_unit_records_its_own_values_in_the_forward_and_the_backward_pass():
    st = _traced_run().steps[0]
    seen, dz = st.records["fc.seen"], st.records["grad.fc.dz_seen"]
    assert (seen.stage, seen.formula, seen.value.tolist()) == (
        "forward",
        "x as fc saw it",
        [[1.0, 2.0], [0.5, -1.0]],
    )
    # z = [0.5 − 0.5 + 0.1, 0.25 + 0.25 + 0.1] = [0.1, 0.6]; ∂L/∂z = (z − y)/2 = [−0.2, 0.3]
    assert dz.stage == "backward" and np.allclose(dz.value, [[-0.2], [0.3]])
    names = list(st.records)
    assert names.index("fc.weights") < names.index("fc.seen") < names.index("fc.z")
    assert (
        names.index("grad.fc.z") < names.index("grad.fc.dz_seen") < names.index("grad.fc.weights")
    )


def test_what_a_unit_records_is_rounded_like_every_value():
    st = _traced_run(round_each=0).steps[0]
    assert st.records["fc.seen"].value.tolist() == [[1.0, 2.0], [0.0, -1.0]]  # 0.5 → 0


def test_the_checkers_substitution_reaches_a_value_a_unit_records():
    # the student's x for sample 0 is [2, 2]: z₀ = 1 − 0.5 + 0.1 = 0.6 follows from it
    st = _traced_run(overrides={"fc.seen": np.array([[2.0, 2.0], [np.nan, np.nan]])}).steps[0]
    assert np.allclose(st["fc.z"], [[0.6], [0.6]])


def test_a_silent_pass_records_nothing_and_gives_the_same_gradients():
    spec = spec_from(NET)
    op = Traced(engine.build_layer(spec.layers[0]).op)
    layers = Substitution(ops={"fc": op}).apply([engine.build_layer(s) for s in spec.layers])
    params = engine.initial_params(spec)
    fwd = engine.forward(layers, params, spec.inputs)
    grads = engine.backward(spec, layers, params, fwd, spec.targets)
    st = _traced_run().steps[0]
    assert np.allclose(grads["fc"]["weights"], st["grad.fc.weights"])
