"""Batches: the loss reduction over a batch, and which samples each step of batch, sgd and
minibatch gradient descent uses."""

import json

import numpy as np
import pytest

from bpcalc import engine
from bpcalc.cli import run
from bpcalc.network.parse import parse_network
from bpcalc.network.yaml_source import load_yaml_text

# One linear neuron z = w·x + b on three samples, half_sse: ℓ_n = ½ (z_n − y_n)², so
# ∂ℓ_n/∂w = (z_n − y_n)·x_n and ∂ℓ_n/∂b = z_n − y_n.
# w = 0.5, b = 0:  x = 1, 2, 3 -> z = 0.5, 1, 1.5;  y = 1, 0, 2 -> z − y = −0.5, 1, −0.5
BASE = """
inputs: [[1.0], [2.0], [3.0]]
targets: [[1.0], [0.0], [2.0]]
layers:
  - name: fc
    type: dense
    weights: [[0.5]]
    bias: [0.0]
learning_rate: 0.1
"""


def near(v):
    return pytest.approx(np.array(v, dtype=float))


def spec_of(text: str):
    return parse_network(load_yaml_text(text, "net.yaml"))


def net(extra: str = "", loss: str = "half_sse") -> str:
    return BASE + f"loss: {loss}\n" + extra


def test_mean_reduction_averages_losses_and_gradients_over_the_batch():
    trace = engine.run(spec_of(net(loss="{type: half_sse, reduction: mean}")))
    st = trace.steps[0]
    # ℓ = ½·0.25, ½·1, ½·0.25 = 0.125, 0.5, 0.125; L = 0.75 / 3 = 0.25
    assert st["loss.per_sample"] == near([0.125, 0.5, 0.125])
    assert float(st["loss"]) == near(0.25)
    # ∂L/∂w = (1/3)(−0.5·1 + 1·2 − 0.5·3) = (1/3)(0) = 0; ∂L/∂b = (1/3)(−0.5 + 1 − 0.5) = 0
    # (a stationary point: choose another w to see a non-zero gradient below)
    assert st["grad.fc.weights"] == near([[0.0]])
    assert st["grad.fc.z"] == near([[-0.5 / 3], [1 / 3], [-0.5 / 3]])


def test_sum_reduction_adds_losses_and_gradients_over_the_batch():
    text = net(loss="{type: half_sse, reduction: sum}").replace("[[0.5]]", "[[1.0]]")
    st = engine.run(spec_of(text)).steps[0]
    # w = 1: z = 1, 2, 3; z − y = 0, 2, 1; ℓ = 0, 2, 0.5; L = 2.5
    assert float(st["loss"]) == near(2.5)
    # ∂L/∂w = 0·1 + 2·2 + 1·3 = 7; ∂L/∂b = 0 + 2 + 1 = 3
    assert st["grad.fc.weights"] == near([[7.0]])
    assert st["grad.fc.bias"] == near([3.0])
    # new w = 1 − 0.1·7 = 0.3
    assert st["new.fc.weights"] == near([[0.3]])


def test_the_reduction_is_stated_in_the_conventions():
    trace = engine.run(spec_of(net(loss="{type: half_sse, reduction: sum}")))
    assert "sum over the batch" in trace.conventions["batch"]
    assert "sum over the batch" in trace.steps[0].records["loss"].formula


def samples_of(text: str, steps: int) -> list[list[int]]:
    return [st.samples for st in engine.run(spec_of(text), steps=steps).steps]


def test_batch_mode_uses_every_sample_every_step():
    assert samples_of(net("mode: batch\n"), 3) == [[0, 1, 2]] * 3


def test_sgd_mode_takes_one_sample_per_step_and_wraps_around():
    assert samples_of(net("mode: sgd\n"), 5) == [[0], [1], [2], [0], [1]]


def test_minibatch_mode_keeps_a_smaller_last_batch_then_starts_a_new_epoch():
    assert samples_of(net("batch_size: 2\n"), 4) == [[0, 1], [2], [0, 1], [2]]


def test_shuffle_draws_a_new_permutation_each_epoch_from_the_seed():
    got = samples_of(net("mode: sgd\nshuffle: true\nseed: 7\n"), 6)
    rng = np.random.default_rng(7)
    first, second = rng.permutation(3).tolist(), rng.permutation(3).tolist()
    assert got == [[i] for i in first + second]
    assert samples_of(net("mode: sgd\nshuffle: true\nseed: 7\n"), 6) == got  # reproducible


def test_batch_mode_ignores_shuffle():
    assert samples_of(net("shuffle: true\nseed: 3\n"), 2) == [[0, 1, 2]] * 2


def test_sgd_steps_follow_one_sample_after_another():
    st1, st2 = engine.run(spec_of(net("mode: sgd\n")), steps=2).steps
    # step 1, sample 0 (x = 1, y = 1): z = 0.5, ∂L/∂w = (0.5 − 1)·1 = −0.5, ∂L/∂b = −0.5
    #   w = 0.5 + 0.05 = 0.55, b = 0.05
    assert st1["input"] == near([[1.0]])
    assert st1["new.fc.weights"] == near([[0.55]])
    assert st1["new.fc.bias"] == near([0.05])
    # step 2, sample 1 (x = 2, y = 0): z = 0.55·2 + 0.05 = 1.15, ∂L/∂w = 1.15·2 = 2.3
    #   w = 0.55 − 0.23 = 0.32, b = 0.05 − 0.115 = −0.065
    assert st2["input"] == near([[2.0]])
    assert float(st2["loss"]) == near(0.5 * 1.15**2)
    assert st2["new.fc.weights"] == near([[0.32]])
    assert st2["new.fc.bias"] == near([-0.065])


def test_a_minibatch_step_averages_the_gradient_over_its_own_samples():
    st = engine.run(spec_of(net("mode: minibatch\nbatch_size: 2\n")), steps=2).steps[1]
    # step 2 uses sample 2 alone (x = 3, y = 2), from the starting w = 0.5 moved by step 1:
    # step 1 (samples 0, 1): ∂L/∂w = ½(−0.5·1 + 1·2) = 0.75, ∂L/∂b = ½(−0.5 + 1) = 0.25
    #   w = 0.5 − 0.075 = 0.425, b = −0.025
    # step 2: z = 0.425·3 − 0.025 = 1.25, z − y = −0.75, ∂L/∂w = −2.25
    assert st.samples == [2]
    assert st["grad.fc.weights"] == near([[-2.25]])


def test_tables_label_per_sample_values_with_their_dataset_index(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(net("mode: sgd\n"))
    code = run(["step", str(path), "--steps", "3", "--only", "input"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Step 3 · samples 2" in out.out
    assert "sample 2: [3]" in out.out
    code = run(["step", str(path), "--steps", "3"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Steps" in out.out  # the summary: one row per step with its samples
    assert "│    3 │ 2       │" in out.out


def test_json_lists_the_samples_of_each_step(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(net("batch_size: 2\n"))
    code = run(["step", str(path), "--steps", "2", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    doc = json.loads(out.out)
    assert [s["samples"] for s in doc["steps"]] == [[0, 1], [2]]
    assert len(doc["steps"][1]["values"]["input"]) == 1


def test_the_mode_option_overrides_the_file(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(net("batch_size: 2\n"))
    code = run(["step", str(path), "--steps", "2", "--json", "--mode", "sgd"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert [s["samples"] for s in json.loads(out.out)["steps"]] == [[0], [1]]
    code = run(["step", str(path), "--steps", "1", "--json", "--batch-size", "3"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["steps"][0]["samples"] == [0, 1, 2]


def test_a_batch_size_larger_than_the_data_on_the_command_line_is_a_usage_error(capsys, tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(net())
    code = run(["step", str(path), "--batch-size", "4"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--batch-size 4 is larger than the data, which has 3 samples" in err


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("batch_size: 4\n", "11:13", "batch_size 4 is larger than the data, which has 3 samples"),
        ("mode: batch\nbatch_size: 2\n", "12:13", "does not go with mode: batch"),
        ("mode: sgd\nbatch_size: 2\n", "12:13", "does not go with mode: sgd"),
        ("mode: minibatch\n", "11:7", "mode: minibatch needs a batch_size"),
        ("mode: minibach\n", "11:7", "did you mean 'minibatch'"),
        ("batch_size: 0\n", "11:13", "batch_size should be a whole number of at least 1"),
        ("shuffle: yes please\n", "11:10", "shuffle should be true or false"),
        ("seed: -1\n", "11:7", "seed should be a whole number of at least 0"),
    ],
)
def test_batching_mistakes_are_spec_errors_with_locations(capsys, tmp_path, extra, where, message):
    path = tmp_path / "net.yaml"
    path.write_text(net(extra))
    code = run(["step", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"net.yaml:{where}: " in err
    assert message in err
    assert "Traceback" not in err


def test_a_step_on_part_of_the_data_also_records_the_loss_over_all_samples():
    st1 = engine.run(spec_of(net("mode: sgd\n"))).steps[0]
    # after step 1 (sample 0): w = 0.55, b = 0.05, so z = 0.6, 1.15, 1.7 for x = 1, 2, 3;
    # z − y = −0.4, 1.15, −0.3; L = (1/3)·½·(0.16 + 1.3225 + 0.09) = 0.2620833…
    assert float(st1["dataset_loss_after"]) == pytest.approx((0.16 + 1.3225 + 0.09) / 6)
    full = engine.run(spec_of(net())).steps[0]
    assert "dataset_loss_after" not in full  # loss_after already covers every sample


def test_gd_variants_example_compares_the_three_modes_in_summaries(capsys):
    rows = {}
    for mode in ("batch", "sgd", "minibatch"):
        code = run(
            ["step", "examples/gd_variants.yaml", "--mode", mode, "--steps", "4", "--summary"]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        assert "Forward" not in out.out  # only the summary
        rows[mode] = [line for line in out.out.splitlines() if line.startswith("│")]
    assert len(rows["batch"]) == len(rows["sgd"]) == len(rows["minibatch"]) == 4
    # batch, step 1 from w = b = 0: z = 0, L = (1 + 9 + 25 + 49)/4 = 21
    assert rows["batch"][0].split("│")[2].strip() == "0, 1, 2, 3"
    assert rows["batch"][0].split("│")[3].strip() == "21"
    assert len(rows["sgd"][0].split("│")[2].split(",")) == 1
    assert len(rows["minibatch"][0].split("│")[2].split(",")) == 2
