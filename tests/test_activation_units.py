"""The activation units: every registered activation's derivative against finite differences,
GELU, SiLU, softplus, ELU and softsign against PyTorch's modules, their hand-derived numbers
through `bpcalc step`, their worked explanations, and the checker naming each one's slips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bpcalc import activations, engine
from bpcalc.cli import run
from tests.check_helpers import check, slips_of, write
from tests.explain_helpers import evaluate
from tests.helpers import spec_from

ELEMENTWISE = [k for k in activations.kinds() if activations.unit_class(k).elementwise]

# Printed by tests/torch_scripts/activations.py (torch 2.13.0+cpu, float64): F.gelu (erf
# form), F.silu, F.softplus (threshold lifted so it is the exact ln(1 + e^z)), F.elu with
# alpha = 0.7, F.softsign, and their derivatives by autograd.
TORCH_VALUES = {
    "z": [-3.0, -1.2, -0.3, 0.0, 0.4, 1.14, 2.5, 25.0],
    "gelu": {
        "a": [-0.00404969409489031, -0.13808360426604993, -0.1146265733433142, 0.0,
              0.2621686966441297, 0.9950568083584099, 2.4844758366855597, 25.0],
        "da_dz": [-0.01194564720418392, -0.11795359575814726, 0.26767223317289013, 0.5,
                  0.8027297977316535, 1.1103277300909054, 1.037611085908145, 1.0],
    },
    "silu": {
        "a": [-0.14227761953270035, -0.2777702598011788, -0.1276672449565023, 0.0,
              0.2394750640449808, 0.8637547884642234, 2.3103545499468914, 24.9999999996528],
        "da_dz": [-0.08810410601516962, 0.01800188772481552, 0.3522199896811173, 0.5,
                  0.6947919584090636, 0.966985011156634, 1.0994011113415267, 1.000000000333312],
    },
    "softplus": {
        "a": [0.04858735157374206, 0.26328246733803123, 0.5543552444685271,
              0.6931471805599453, 0.9130152523999526, 1.4174946225139546,
              2.5788897342925496, 25.000000000013888],
        "da_dz": [0.04742587317756679, 0.23147521650098238, 0.425557483188341, 0.5,
                  0.598687660112452, 0.7576796390037048, 0.9241418199787564,
                  0.9999999999861121],
    },
    "elu": {
        "a": [-0.6651490521424952, -0.4891640516614585, -0.1814272455227975, 0.0, 0.4, 1.14,
              2.5, 25.0],
        "da_dz": [0.03485094785750476, 0.2108359483385415, 0.5185727544772025, 0.7, 1.0, 1.0,
                  1.0, 1.0],
    },
    "softsign": {
        "a": [-0.75, -0.5454545454545454, -0.23076923076923075, 0.0, 0.28571428571428575,
              0.5327102803738318, 0.7142857142857143, 0.9615384615384616],
        "da_dz": [0.0625, 0.20661157024793392, 0.5917159763313609, 1.0, 0.5102040816326531,
                  0.2183596820683029, 0.08163265306122447, 0.001479289940828403],
    },
}  # fmt: skip
OPTIONS = {"elu": {"alpha": 0.7}}


@pytest.mark.parametrize("kind", ELEMENTWISE)
def test_every_elementwise_derivative_matches_central_differences(kind):
    options = {k: v * 20 for k, v in activations.unit_class(kind).options.items()}
    unit = activations.get(kind, **options)
    rng = np.random.default_rng(7)
    z = rng.uniform(-3, 3, size=(4, 5))
    z[np.abs(z) < 0.05] = 0.5  # off the kinks of ReLU and LeakyReLU
    h = 1e-6
    numeric = (unit.forward(z + h) - unit.forward(z - h)) / (2 * h)
    da = rng.normal(size=z.shape)
    analytic = unit.backward(da, z, unit.forward(z))
    np.testing.assert_allclose(analytic, da * numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["gelu", "silu", "softplus", "elu", "softsign"])
def test_the_newer_activations_agree_with_pytorch(kind):
    unit = activations.get(kind, **OPTIONS.get(kind, {}))
    z = np.array(TORCH_VALUES["z"])
    a = unit.forward(z)
    np.testing.assert_allclose(a, TORCH_VALUES[kind]["a"], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(
        unit.backward(np.ones_like(z), z, a), TORCH_VALUES[kind]["da_dz"], rtol=1e-13, atol=1e-15
    )


NET = """
input: [0.5, -1.2]
target: [0.3]
layers:
  - {name: h, type: dense, weights: [[0.4, -0.7], [0.2, 0.9]], bias: [0.1, -0.3], activation: gelu}
  - {name: s, type: dense, weights: [[0.6, -0.5]], bias: [0.05], activation: silu}
  - {name: sp, type: softplus}
loss: half_sse
learning_rate: 0.1
"""


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_the_worked_network_gives_the_hand_derived_numbers(tmp_path, capsys):
    # h.z = [0.4·0.5 − 0.7·(−1.2) + 0.1, 0.2·0.5 + 0.9·(−1.2) − 0.3] = [1.14, −1.28]
    # h.a = z·Φ(z): Φ(1.14) = 0.872857, Φ(−1.28) = 0.100273 -> [0.995057, −0.128349]
    # s.z = 0.6·0.995057 − 0.5·(−0.128349) + 0.05 = 0.711209
    # s.a = z·σ(z) = 0.711209 · 1/(1 + e^−0.711209) = 0.711209·0.670668 = 0.476985
    # sp.a = ln(1 + e^0.476985) = 0.959813; L = ½(0.959813 − 0.3)² = 0.217677
    net = write(tmp_path, "net.yaml", NET)
    assert run(["step", net, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    v = {k: np.array(x) for k, x in doc["steps"][0]["values"].items()}
    np.testing.assert_allclose(v["h.z"], [1.14, -1.28], rtol=1e-12)
    np.testing.assert_allclose(v["h.a"], [0.995057, -0.128349], atol=1e-6)
    assert v["h.a"][0] == pytest.approx(1.14 * _phi(1.14), rel=1e-15)
    np.testing.assert_allclose(v["s.z"], [0.711209], atol=1e-6)
    np.testing.assert_allclose(v["s.a"], [0.476985], atol=1e-6)
    np.testing.assert_allclose(v["sp.a"], [0.959813], atol=1e-6)
    assert v["loss"] == pytest.approx(0.217677, abs=1e-6)
    # ∂L/∂(sp input) = (a − y)·σ(x) = 0.659813·σ(0.476985) = 0.659813·0.617033 = 0.407127
    np.testing.assert_allclose(v["grad.sp.input"], [0.407127], atol=2e-6)
    formulas = {r.name: r.formula for r in engine.run(spec_from(NET)).steps[0]}
    assert formulas["h.a"] == "a = GELU(z) = z·Φ(z), Φ(z) = ½(1 + erf(z/√2))"
    assert formulas["s.a"] == "a = SiLU(z) = z·σ(z)"
    assert formulas["sp.a"] == "a = softplus(x) = ln(1 + e^x)"
    assert "GELU′(z) = Φ(z) + z·φ(z)" in formulas["grad.h.z"]
    assert "SiLU′(z) = σ(z)·(1 + z·(1 − σ(z)))" in formulas["grad.s.z"]


def test_the_explanations_of_each_activation_evaluate_to_their_results(tmp_path, capsys):
    net = write(tmp_path, "net.yaml", NET)
    names = ["h.a", "grad.h.z", "s.a", "grad.s.z", "sp.a", "grad.sp.input"]
    args = ["step", net, "--json", "--decimals", "12"]
    for name in names:
        args += ["--explain", name]
    assert run(args) == 0
    doc = json.loads(capsys.readouterr().out)
    seen = set()
    for element, w in doc["steps"][0]["work"].items():
        assert evaluate(w["substituted"]) == pytest.approx(w["value"], rel=1e-9), w
        seen.add(element.split("[")[0])
    assert seen == set(names)


def _slip_sheet(tmp_path, capsys, value_name: str, slipped: float) -> set[str]:
    net = write(tmp_path, "net.yaml", NET)
    sheet = write(tmp_path, "sheet.yaml", f"{value_name}: {slipped!r}\n")
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1
    return slips_of(doc, value_name)


def test_the_checker_names_gelus_left_out_product_rule_term(tmp_path, capsys):
    # GELU′ taken as Φ(z) alone on h.z[0] = 1.14: ∂L/∂z = ∂L/∂a · Φ(1.14)
    run(["step", write(tmp_path, "n.yaml", NET), "--json"])
    v = json.loads(capsys.readouterr().out)["steps"][0]["values"]
    slipped = [v["grad.h.a"][0] * _phi(1.14), v["grad.h.a"][1] * _phi(-1.28)]
    sheet = write(tmp_path, "sheet.yaml", f"grad.h.z: {[round(x, 6) for x in slipped]}\n")
    code, doc, _ = check(capsys, write(tmp_path, "net.yaml", NET), sheet)
    assert code == 1
    assert "gelu_cdf_only" in slips_of(doc, "grad.h.z")


def test_the_checker_names_silus_sigma_only_and_softplus_sign_slips(tmp_path, capsys):
    run(["step", write(tmp_path, "n.yaml", NET), "--json"])
    v = json.loads(capsys.readouterr().out)["steps"][0]["values"]
    z = v["s.z"][0]
    sigma = 1 / (1 + math.exp(-z))
    assert "silu_sigma_only" in _slip_sheet(
        tmp_path, capsys, "grad.s.z", round(v["grad.s.a"][0] * sigma, 6)
    )
    x = v["s.a"][0]
    wrong = v["grad.sp.a"][0] / (1 + math.exp(x))  # σ(−x) for σ(x)
    assert "softplus_sigma_of_minus_z" in _slip_sheet(
        tmp_path, capsys, "grad.sp.input", round(wrong, 6)
    )


@pytest.mark.parametrize("value_name,layer", [("grad.h.z", "h"), ("grad.s.z", "s")])
def test_the_checker_names_a_left_out_derivative_of_the_new_activations(
    tmp_path, capsys, value_name, layer
):
    run(["step", write(tmp_path, "n.yaml", NET), "--json"])
    v = json.loads(capsys.readouterr().out)["steps"][0]["values"]
    da = v[f"grad.{layer}.a"]
    sheet = write(tmp_path, "sheet.yaml", f"{value_name}: {[round(x, 6) for x in da]}\n")
    code, doc, _ = check(capsys, write(tmp_path, "net.yaml", NET), sheet)
    assert code == 1
    assert "no_derivative" in slips_of(doc, value_name)


NET2 = """
input: [0.5, -1.2]
target: [0.3, -0.2]
layers:
  - {name: e, type: dense, weights: [[0.4, 0.7], [0.2, 0.9]], bias: [0.1, -0.3], activation: elu,
     alpha: 0.5}
  - {name: s, type: softsign}
loss: half_sse
learning_rate: 0.1
"""


def test_elu_and_softsign_give_the_hand_derived_numbers(tmp_path, capsys):
    # e.z = [0.4·0.5 + 0.7·(−1.2) + 0.1, 0.2·0.5 + 0.9·(−1.2) − 0.3] = [−0.54, −1.28]
    # e.a = 0.5·(e^z − 1) = [0.5·(0.582748 − 1), 0.5·(0.278037 − 1)] = [−0.208626, −0.360981]
    # s.a = x/(1 + |x|) = [−0.208626/1.208626, −0.360981/1.360981] = [−0.172614, −0.265236]
    # ∂L/∂s.a = a − y = [−0.472614, −0.065236]; ∂L/∂x = that/(1 + |x|)²
    #   = [−0.472614/1.460777, −0.065236/1.852269] = [−0.323536, −0.035220]
    # ∂L/∂e.z = ∂L/∂a · (a + α) = [−0.323536·0.291374, −0.035220·0.139019] = [−0.094270, −0.004896]
    net = write(tmp_path, "net.yaml", NET2)
    assert run(["step", net, "--json"]) == 0
    v = {
        k: np.array(x) for k, x in json.loads(capsys.readouterr().out)["steps"][0]["values"].items()
    }
    np.testing.assert_allclose(v["e.z"], [-0.54, -1.28], rtol=1e-12)
    np.testing.assert_allclose(v["e.a"], [-0.208626, -0.360981], atol=1e-6)
    np.testing.assert_allclose(v["s.a"], [-0.172614, -0.265236], atol=1e-6)
    np.testing.assert_allclose(v["grad.s.input"], [-0.323536, -0.035220], atol=1e-6)
    np.testing.assert_allclose(v["grad.e.z"], [-0.094270, -0.004896], atol=1e-6)


def test_elu_and_softsign_explanations_evaluate_to_their_results(tmp_path, capsys):
    net = write(tmp_path, "net.yaml", NET2)
    names = ["e.a", "grad.e.z", "s.a", "grad.s.input"]
    args = ["step", net, "--json", "--decimals", "12"]
    for name in names:
        args += ["--explain", name]
    assert run(args) == 0
    work = json.loads(capsys.readouterr().out)["steps"][0]["work"]
    assert {e.split("[")[0] for e in work} == set(names)
    for w in work.values():
        assert evaluate(w["substituted"]) == pytest.approx(w["value"], rel=1e-9), w


def test_the_checker_names_elus_left_out_alpha_and_softsigns_left_out_square(tmp_path, capsys):
    run(["step", write(tmp_path, "n.yaml", NET2), "--json"])
    v = json.loads(capsys.readouterr().out)["steps"][0]["values"]
    net = write(tmp_path, "net.yaml", NET2)
    elu_slip = [da * a for da, a in zip(v["grad.e.a"], v["e.a"], strict=True)]  # ELU′ = a
    sheet = write(tmp_path, "a.yaml", f"grad.e.z: {[round(x, 6) for x in elu_slip]}\n")
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1 and "elu_alpha_left_out" in slips_of(doc, "grad.e.z")
    x = v["e.a"]
    soft_slip = [da / (1 + abs(xi)) for da, xi in zip(v["grad.s.a"], x, strict=True)]
    sheet = write(tmp_path, "b.yaml", f"grad.s.input: {[round(g, 6) for g in soft_slip]}\n")
    code, doc, _ = check(capsys, net, sheet)
    assert code == 1 and "softsign_square_left_out" in slips_of(doc, "grad.s.input")
