"""`bpcalc exercise`: variants drawn on a grid that keep every rule (checked here on each
variant's own trace, independently of the rule module), reproducible from the seed and the
variant number alone, with answer keys that equal `bpcalc step` and grade as all ✓."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.check.diagnose import slips
from bpcalc.network.parse import parse_network
from bpcalc.network.types import Conv2dSpec, DenseSpec, PoolSpec
from bpcalc.network.yaml_source import load_yaml_text
from bpcalc.teach import generate, rules
from tests.helpers import cli, strict_json

EXAMPLES = Path(__file__).parent.parent / "examples" / "exercises"
MLP, CNN = str(EXAMPLES / "mlp.yaml"), str(EXAMPLES / "cnn.yaml")


@pytest.fixture(scope="module")
def templates() -> dict[str, generate.Template]:
    return {"mlp": generate.load_template(MLP), "cnn": generate.load_template(CNN)}


def _own_checks(spec, t: generate.Template) -> None:
    """Every rule, checked directly on the variant's trace (not through bpcalc.teach.rules)."""
    r = t.exercise.rounding
    st = engine.run(spec, round_each=r).steps[0]
    prev = "input"
    for layer in spec.layers:
        if isinstance(layer, (DenseSpec, Conv2dSpec)) and layer.activation is not None:
            z = st[f"{layer.name}.z"]
            if layer.activation.kind == "relu":
                assert np.all(z != 0), f"{layer.name}.z has a 0: {z}"  # kink
                per_unit = z.reshape(-1) if isinstance(layer, DenseSpec) else z.reshape(1, -1)
                if isinstance(layer, DenseSpec):
                    assert np.all(per_unit > 0)  # one sample, dead_units 0: every neuron on
                else:
                    assert np.any(per_unit > 0)  # the kernel is alive somewhere
        if isinstance(layer, PoolSpec):
            x = st[prev].reshape(-1, *layer.in_shape[1:])
            (kh, kw), (sh, sw) = layer.size, layer.stride
            for c in range(x.shape[0]):
                for i in range(layer.out_shape[1]):
                    for j in range(layer.out_shape[2]):
                        win = x[c, i * sh : i * sh + kh, j * sw : j * sw + kw]
                        assert np.sum(win == win.max()) == 1, f"a tie in {layer.name}: {win}"
        prev = f"{layer.name}.a"
    for ref in t.asked:
        v = st[ref]
        if ref.startswith("grad."):
            assert np.any(v != 0), f"{ref} is 0"
        nonzero = np.abs(v[v != 0])
        assert np.all(nonzero <= t.exercise.max_abs), ref
        assert np.all(nonzero >= t.exercise.smallest), f"{ref} = {v} has a tiny number"


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_every_variant_of_many_seeds_keeps_every_rule_on_its_own_trace(templates, which):
    t = templates[which]
    checked = 0
    seeds, ks = (range(10), (1, 2)) if which == "mlp" else (range(12), (1, 2, 3))
    for seed in seeds:
        for k in ks:
            v = generate.draw_variant(t, seed, k, f"variant-{k:02d}")
            spec = parse_network(load_yaml_text(v.text, "v.yaml"))  # what the file says
            _own_checks(spec, t)
            assert rules.check(spec, t.exercise, t.asked) == []
            checked += 1
    assert checked >= 20


def test_drawn_values_lie_on_the_exercise_grid(templates):
    t = templates["mlp"]
    for seed in range(5):
        spec = generate.draw_variant(t, seed, 1, "v").spec
        x = spec.inputs.reshape(-1)
        assert np.all(x == np.round(x)) and x.min() >= -2 and x.max() <= 3 and np.all(x != 0)
        for layer in spec.layers:
            w = layer.weights * 10
            assert np.allclose(w, np.round(w)) and np.all(np.abs(layer.weights) <= 1)
            assert np.all(layer.weights != 0)
            assert np.all(np.abs(layer.bias) <= 0.5)
        assert spec.targets.reshape(-1)[0] in (0.0, 1.0)


def test_variant_k_comes_from_the_seed_and_k_alone(templates, tmp_path):
    t = templates["mlp"]
    alone = generate.draw_variant(t, 7, 3, "variant-03").text
    generate.generate(MLP, variants=3, seed=7, out_dir=str(tmp_path / "a"), pdf=False)
    assert (tmp_path / "a" / "variant-03" / "network.yaml").read_text() == alone
    assert generate.draw_variant(t, 8, 3, "variant-03").text != alone
    assert generate.draw_variant(t, 7, 2, "variant-03").text != alone


def test_a_rejected_draw_is_counted_under_the_rule_that_rejected_it(templates):
    t = templates["mlp"]
    v = generate.draw_variant(t, 1, 1, "v")
    assert v.draws > 1  # this seed's first draws break rules
    assert set(v.rejected) <= set(rules.RULES)
    assert sum(v.rejected.values()) >= v.draws - 1  # each rejected draw names a rule


def test_a_relu_at_zero_and_a_dead_unit_and_a_tie_are_found_by_name():
    text = """
input: [1, 1]
target: 1
layers:
  - {name: h, type: dense, weights: [[0.5, -0.5], [-1, -1]], bias: [0, 0], activation: relu}
  - {name: o, type: dense, weights: [[1, 1]], bias: [0], activation: sigmoid}
loss: binary_cross_entropy
learning_rate: 0.5
"""
    spec = parse_network(load_yaml_text(text, "t.yaml"))
    t_ex = generate.parse_exercise(load_yaml_text(text, "t.yaml").root())
    found = {v.rule for v in rules.check(spec, t_ex, ["grad.h.weights"])}
    assert {"kink", "dead_unit"} <= found
    pool = """
input: [[1, 3], [3, 0]]
target: 1
layers:
  - {name: p, type: maxpool2d, size: 2}
  - {name: f, type: flatten}
  - {name: o, type: dense, weights: [[0.5]], bias: [0.1], activation: sigmoid}
loss: binary_cross_entropy
learning_rate: 0.5
"""
    spec = parse_network(load_yaml_text(pool, "p.yaml"))
    found = {v.rule for v in rules.check(spec, t_ex, ["o.z"])}
    assert "maxpool_tie" in found


def test_a_value_half_way_between_two_roundings_is_a_rounding_tie():
    # z = 0.5 · 0.25 = 0.125 rounded to 2 decimals: 0.12 or 0.13
    text = """
input: [0.25]
target: 1
layers:
  - {name: o, type: dense, weights: [[0.5]], bias: [0], activation: sigmoid}
loss: binary_cross_entropy
learning_rate: 0.5
exercise: {rounding: 2, limits: {min: 0.001}}
"""
    doc = load_yaml_text(text, "t.yaml")
    found = rules.check(parse_network(doc), generate.parse_exercise(doc.root()), ["o.z"])
    assert [v.rule for v in found] == ["rounding_tie"]
    assert "o.z[0] = 0.125" in found[0].message


def _exercise(tmp_path, net=MLP, n=2, seed=3, pdf=False) -> Path:
    out = tmp_path / "ex"
    generate.generate(net, variants=n, seed=seed, out_dir=str(out), pdf=pdf)
    return out


@pytest.mark.parametrize("net", [MLP, CNN])
def test_the_key_equals_bpcalc_step_with_the_handouts_rounding(tmp_path, capsys, net):
    out = _exercise(tmp_path, net)
    t = generate.load_template(net)
    r = t.exercise.rounding
    for folder in ("variant-01", "variant-02"):
        code, text, err = cli(
            capsys, "step", str(out / folder / "network.yaml"), "--round-each", str(r), "--json"
        )
        assert code == 0, err
        values = strict_json(text)["steps"][0]["values"]
        key = load_yaml_text((out / folder / "key.yaml").read_text(), "k").data
        assert key["variant"] == int(folder[-2:])
        assert [k for k in key if k != "variant"] == t.asked
        for ref in t.asked:
            assert np.allclose(key[ref], np.round(values[ref], r), atol=1e-12), ref


@pytest.mark.parametrize("net", [MLP, CNN])
def test_the_key_graded_against_its_own_variant_is_all_right(tmp_path, capsys, net):
    out = _exercise(tmp_path, net)
    r = str(generate.load_template(net).exercise.rounding)
    for folder in ("variant-01", "variant-02"):
        d = out / folder
        code, text, err = cli(
            capsys,
            "check",
            str(d / "network.yaml"),
            str(d / "key.yaml"),
            "--round-each",
            r,
            "--json",
        )
        doc = strict_json(text)
        assert code == 0, doc["answers"]
        assert doc["summary"]["wrong"] == doc["summary"]["carried_forward"] == 0
        assert doc["summary"]["correct"] == len(generate.load_template(net).asked)


def plant(key_path: Path, net_path: Path, ref: str, slip_key: str, rounding: int) -> str:
    """The key with one value replaced by what the named slip gives."""
    spec = parse_network(load_yaml_text(net_path.read_text(), str(net_path)))
    slip = next(s for s in slips(spec) if s.key == slip_key)
    st = engine.run(slip.spec, round_each=rounding, substitute=slip.substitute).steps[0]
    value = np.round(st[ref], rounding)
    lines = []
    for line in key_path.read_text().splitlines():
        if line.startswith(f"{ref}:"):
            line = f"{ref}: {json.dumps(value.tolist())}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("net", "ref", "slip"),
    [(MLP, "new.out.weights", "update_plus"), (CNN, "conv.z", "conv_flip")],
)
def test_a_key_with_one_planted_slip_is_graded_with_that_slip_named(
    tmp_path, capsys, net, ref, slip
):
    out = _exercise(tmp_path, net)
    d = out / "variant-01"
    sheet = tmp_path / "slipped.yaml"
    sheet.write_text(plant(d / "key.yaml", d / "network.yaml", ref, slip, 4))
    code, text, _ = cli(
        capsys, "check", str(d / "network.yaml"), str(sheet), "--round-each", "4", "--json"
    )
    doc = strict_json(text)
    assert code == 1
    assert doc["first_wrong"] == ref
    wrong = [a for a in doc["answers"] if a["verdict"] == "wrong"]
    assert [a["ref"] for a in wrong] == [ref]
    assert slip in {d["slip"] for d in wrong[0]["diagnoses"]}


def test_the_exercise_section_is_checked_with_file_line_and_column(tmp_path, capsys):
    base = Path(MLP).read_text()
    cases = [
        (base + "  colour: red\n", "unknown key 'colour' in the exercise section"),
        (
            base.replace("    - new.out.weights\n", "    - new.out.weights\n    - hidden.zz\n"),
            "no value named 'hidden.zz'",
        ),
        (
            base.replace(
                "  weights: {decimals: 1, range: [-1, 1]}",
                "  weights: {decimals: 0, range: [0.2, 0.8]}",
            ),
            "no number with 0 decimal(s)",
        ),
        (base + "  layers: {hiden: {weights: {decimals: 1}}}\n", "did you mean 'hidden'"),
    ]
    p = tmp_path / "net.yaml"
    for text, message in cases:
        p.write_text(text)
        code, out, err = cli(capsys, "exercise", str(p), "-o", str(tmp_path / "o"), "--no-pdf")
        assert code == 2, (message, out, err)
        assert message in err, err
        assert f"{p}:" in err and err.count("\n") == 1


def test_the_output_folder_is_not_overwritten_without_force(tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "mine.txt").write_text("keep")
    code, _, err = cli(capsys, "exercise", MLP, "-o", str(tmp_path / "o"), "--no-pdf")
    assert code == 2 and "--force" in err
    code, out, err = cli(capsys, "exercise", MLP, "-o", str(tmp_path / "o"), "--no-pdf", "--force")
    assert code == 0, err
    assert (tmp_path / "o" / "mine.txt").read_text() == "keep"
    assert "variant-01: drawn in" in out
