"""`bpcalc check` grading a class: simulated students (tests/student.py, their own NumPy
forward and backward pass) write honest sheets rounded to 2, 3 and 4 decimals (or 3
significant figures), each named value rounded or every sub-step too, and sheets with one
slip planted, on every hand-sized example and every kind of network the tests use.

Honest sheets get no ✗. A slipped sheet gets its first ✗ at the first value the slip moves
(or, when the slip moves that value by less than its rounding, a note that the value is
within rounding of both), the slip named there, and no ✗ for what merely follows from it.

The whole class (about 700 sheets) is marked slow; one precision and style of it runs by
default.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpcalc.network.parse import load_network
from tests.class_helpers import (
    NETWORKS,
    PUBLISHED_SHEET,
    copied_names,
    grade_text,
    network_files,
    write_sheet,
)
from tests.student import Slip

MULTI_STEP = {"momentum_two_steps": 2, "nesterov": 2, "rmsprop": 2, "adam": 2}
NAMES = ["example1", "example2", "mlp_2_3_1", "scalar_linear", "scalar_quadratic"]
NAMES += ["gd_variants", "layernorm", "residual", *NETWORKS]


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return network_files(tmp_path_factory.mktemp("class"))


def steps_of(name: str) -> int:
    return MULTI_STEP.get(name, 1)


def not_right(doc: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    return [
        (a["label"], a["verdict"], a["answer"], a["expected"])
        for a in doc["answers"]
        if a["verdict"] != "correct"
    ]


# --- the published example ---------------------------------------------------------------


def test_the_published_example_marks_its_one_slip_and_carries_the_rest(nets, tmp_path):
    # out.z[1] written 0.185 for 0.157; softmax(0.428, 0.185) = [0.56045, 0.43955] written
    # [0.561, 0.439] (a digit more kept than written), L = −ln 0.5605 = 0.579
    doc = grade_text(nets["published_3_2_2"], PUBLISHED_SHEET, tmp_path)
    verdicts = {a["label"]: a for a in doc["answers"]}
    z = verdicts["out.z"]
    assert z["verdict"] == "wrong" and z["first_wrong"]
    assert z["wrong_elements"] == [[1]]
    for name in ("out.a", "loss"):
        assert verdicts[name]["verdict"] == "carried_forward", name
        assert verdicts[name]["rests_on"] == ["out.z"], name
    assert verdicts["hidden.a"]["verdict"] == "correct"
    # |0.561 − 0.560453| = 0.000547: beyond ½ in the third decimal, within the rounding of
    # the two z's it rests on and of e^z (the allowance, 0.00082, as in the docs)
    assert verdicts["out.a"]["allowance"][0] == pytest.approx(0.000821, abs=2e-6)


# --- honest sheets -------------------------------------------------------------------------


def honest_case(nets: dict[str, str], name: str, tmp: Path, **kwargs: Any) -> None:
    _, text = write_sheet(nets[name], steps=steps_of(name), **kwargs)
    doc = grade_text(nets[name], text, tmp)
    assert not_right(doc) == [], text
    assert doc["summary"]["wrong"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_an_honest_sheet_worked_sub_step_by_sub_step_to_3_decimals_has_no_wrong_answer(
    nets, name, tmp_path
):
    honest_case(nets, name, tmp_path, decimals=3, style="steps")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("decimals", "style"),
    [(2, "values"), (2, "steps"), (3, "values"), (4, "values"), (4, "steps")],
)
def test_an_honest_sheet_at_any_precision_and_style_has_no_wrong_answer(
    nets, name, decimals, style, tmp_path
):
    honest_case(nets, name, tmp_path, decimals=decimals, style=style)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("style", ["values", "steps"])
def test_an_honest_sheet_to_3_significant_figures_has_no_wrong_answer(nets, name, style, tmp_path):
    honest_case(nets, name, tmp_path, sigfigs=3, style=style)


# --- sheets with one slip --------------------------------------------------------------------


def planted(net: str, name: str, honest: dict[tuple[int, str], np.ndarray]) -> list[Slip]:
    """Three arithmetic slips at random places, and every named slip that applies."""
    spec = load_network(net)
    rng = random.Random(name)
    copied = copied_names(net)
    own = [
        key
        for key in honest
        if not (key[1] in copied and (key[0] == 1 or key[1] in ("input", "target")))
        and not key[1].endswith(".mask")
    ]
    out = []
    for _ in range(3):
        k, value = rng.choice(own)
        element = tuple(rng.randrange(s) for s in honest[(k, value)].shape)
        out.append(Slip("arith", value, k, element))
    layers = spec.layers
    trained = [
        layer for layer in layers if layer.type in ("dense", "conv2d", "batchnorm", "layernorm")
    ]
    out.append(Slip("sign", f"grad.{trained[-1].name}.z"))
    if spec.loss.kind.startswith("half_"):
        out.append(Slip("half_missing"))
    last = layers[-1].activation
    fused = last is not None and (last.kind, spec.loss.kind) in (
        ("softmax", "cross_entropy"),
        ("sigmoid", "binary_cross_entropy"),
    )
    inner = [
        layer
        for i, layer in enumerate(layers)
        if layer.activation is not None and not (fused and i == len(layers) - 1)
    ]
    if inner:
        out.append(Slip("no_derivative", layer=inner[0].name))
    if any(layer.activation.kind == "sigmoid" for layer in inner):
        out.append(Slip("sigmoid_as_sigma"))
    opt = spec.optimizer
    if opt.type == "sgd":
        out.append(Slip("update_plus"))
        if opt.lr != 1:
            out += [Slip("update_no_lr"), Slip("update_lr_twice")]
        if len(trained) >= 2:
            out.append(Slip("updated_weights_in_backprop"))
    for layer in spec.all_layers:
        if layer.type == "layernorm":
            out.append(Slip("layernorm_unbiased", layer=layer.name))
        if layer.type == "residual":
            out.append(Slip("residual_no_skip", layer=layer.name))
        if layer.type == "conv2d":
            for kind in ("conv_flip", "conv_flip_backward", "conv_flip_kernel_grad"):
                out.append(Slip(kind, layer=layer.name))
        if layer.type == "dense":
            w = layer.weights
            if w.shape[0] == w.shape[1] > 1 and not np.allclose(w, w.T):
                out.append(Slip("dense_transposed", layer=layer.name))
    if opt.type == "adam":
        out += [Slip("adam_no_bias_correction"), Slip("eps_inside_sqrt")]
    if opt.type == "rmsprop":
        out.append(Slip("eps_inside_sqrt"))
    if opt.type in ("momentum", "nesterov"):
        out.append(Slip("velocity_textbook"))
    if spec.loss.kind == "cross_entropy":
        out.append(Slip("log10"))
    if spec.loss.kind in ("cross_entropy", "binary_cross_entropy"):
        out.append(Slip("other_class", "target"))
    if spec.batched and spec.loss.reduction == "mean" and spec.inputs.shape[0] > 1:
        out.append(Slip("batch_sum"))
    return out


def check_slipped(net: str, name: str, tmp: Path, slip: Slip, style: str) -> str | None:
    """None when the slipped sheet is graded as a teacher would, else what is wrong."""
    steps = steps_of(name)
    honest, _ = write_sheet(net, decimals=3, style=style, steps=steps)
    st, text = write_sheet(net, decimals=3, style=style, steps=steps, slip=slip)
    moved = [k for k in honest.sheet if not np.allclose(st.sheet[k], honest.sheet[k])]
    if not moved:
        return None  # the slip changes nothing this student writes
    labels = [n if k == 1 else f"{n} (step {k})" for k, n in moved]
    doc = grade_text(net, text, tmp)
    entries = {a["label"]: a for a in doc["answers"]}
    wrong = [a for a in doc["answers"] if a["verdict"] == "wrong"]
    # values the slip moves by less than their rounding: right, and said to fit the slip too
    i = 0
    while i < len(labels) and entries[labels[i]]["verdict"] != "wrong":
        if not entries[labels[i]]["also_fits"]:
            return f"{slip}: {labels[i]} moved but neither wrong nor noted as within rounding"
        i += 1
    if i == len(labels):
        return None  # every value it moves is within rounding of both
    first = entries[labels[i]]
    if not first["first_wrong"]:
        got = next((a["label"] for a in wrong if a["first_wrong"]), None)
        return f"{slip}: the first wrong value is {got}, the slip is at {labels[i]}"
    named = {d["slip"] for d in first["diagnoses"]}
    if slip.kind == "arith":
        others = [a["label"] for a in wrong if a is not first]
        return f"{slip}: also wrong: {others}" if others else None
    if slip.kind not in named:
        return f"{slip}: {labels[i]} diagnosed {sorted(named)}"
    # every other ✗ is a value the slip makes again (named), not one that follows from it
    others = [a["label"] for a in wrong if slip.kind not in {d["slip"] for d in a["diagnoses"]}]
    return f"{slip}: wrong without the slip named: {others}" if others else None


def slipped_cases(nets: dict[str, str], name: str, tmp: Path, style: str) -> list[str]:
    net = nets[name]
    honest, _ = write_sheet(net, decimals=3, style=style, steps=steps_of(name))
    problems = []
    for slip in planted(net, name, honest.sheet):
        problem = check_slipped(net, name, tmp, slip, style)
        if problem:
            problems.append(problem)
    return problems


FAST_SLIPS = {
    "example1": Slip("conv_flip", layer="conv"),
    "example2": Slip("arith", "fc.a", 1, (1,)),
    "mlp_2_3_1": Slip("no_derivative", layer="hidden"),
    "published_3_2_2": Slip("arith", "out.z", 1, (1,)),
    "sigmoid_mse": Slip("sigmoid_as_sigma"),
    "adam": Slip("adam_no_bias_correction"),
    "momentum_two_steps": Slip("velocity_textbook"),
    "rmsprop": Slip("eps_inside_sqrt"),
    "conv_channels_padding": Slip("conv_flip_backward", layer="conv"),
    "conv_pool": Slip("conv_flip_kernel_grad", layer="conv"),
    "relu_two_layers": Slip("updated_weights_in_backprop"),
    "batchnorm": Slip("arith", "bn.var", 1, (1,)),
    "regularized_batch": Slip("batch_sum"),
    "dense_half_sse": Slip("half_missing"),
    "layernorm_batch": Slip("layernorm_unbiased", layer="ln"),
    "residual_relu": Slip("residual_no_skip", layer="res"),
}


@pytest.mark.parametrize("name", sorted(FAST_SLIPS))
def test_one_planted_slip_is_the_first_wrong_value_named_with_everything_after_carried(
    nets, name, tmp_path
):
    assert check_slipped(nets[name], name, tmp_path, FAST_SLIPS[name], "steps") is None


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("style", ["values", "steps"])
def test_every_planted_slip_is_found_where_it_is_made_and_named(nets, name, style, tmp_path):
    assert slipped_cases(nets, name, tmp_path, style) == []
