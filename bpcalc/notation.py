"""Value names -> symbols, formulas and LaTeX. The one place notation is decided, so the
tables, the JSON, the explanations and the write-ups cannot disagree."""

from __future__ import annotations

from bpcalc import activations, batching, layers, losses, optim
from bpcalc import regularization as reg_mod
from bpcalc.network.types import (
    NetworkSpec,
)

INPUT = "x, the network's input"
GIVEN_PARAM = "the parameter this step starts from"
GIVEN_BUFFER = "the running statistic this step starts from (not trained)"
NO_ACTIVATION = "a = z (no activation)"
NO_ACTIVATION_GRAD = "∂L/∂z = ∂L/∂a (no activation)"
DATASET_LOSS = (
    "L over all the samples with the updated parameters, in evaluation mode (no dropout, "
    "batchnorm on its running statistics), as bpcalc train's test loss"
)


def target(one_hot: bool) -> str:
    return "y, the target" + (" (one-hot of the class index)" if one_hot else "")


def grad_from_next(layer: str) -> str:
    """∂L/∂a of a layer whose output is the next layer's input."""
    return f"∂L/∂a = ∂L/∂x of {layer}"


def frozen(param: str) -> str:
    return f"{param} is frozen: not updated"


def data_part(formula: str) -> str:
    """A gradient's formula as the data loss's part of a regularized gradient."""
    return formula.replace("∂L/", "∂L_data/")


def penalty_grad_formula(penalty_grad: str, sym: str) -> str:
    return f"∂penalty/∂{sym} = {penalty_grad}"


def regularized_grad_formula(penalty_grad: str, sym: str) -> str:
    return f"∂L/∂{sym} = ∂L_data/∂{sym} + {penalty_grad}"


def loss_after_formula(spec: NetworkSpec) -> str:
    return total_loss_formula(spec) + " with the updated parameters"


PARAM_SYMBOL = {
    "weights": "W",
    "kernel": "K",
    "bias": "b",
    "gamma": "γ",
    "beta": "β",
    "weights_ih": "W_ih",
    "weights_hh": "W_hh",
    "bias_ih": "b_ih",
    "bias_hh": "b_hh",
    "weights_q": "W_q",
    "weights_k": "W_k",
    "weights_v": "W_v",
    "weights_o": "W_o",
    "bias_q": "b_q",
    "bias_k": "b_k",
    "bias_v": "b_v",
    "bias_o": "b_o",
}


def loss_description(spec: NetworkSpec) -> str:
    loss = losses.of(spec.loss)
    return f"{loss.formula} ({loss.kind}: {loss.words})"


def per_sample_loss_formula(spec: NetworkSpec) -> str:
    return "ℓ_n = " + losses.of(spec.loss).formula.removeprefix("L = ") + ", each sample"


def data_loss_formula(spec: NetworkSpec) -> str:
    """The loss of the data: per sample, then the batch reduction."""
    if not spec.batched:
        return losses.of(spec.loss).formula
    per = losses.of(spec.loss).formula.removeprefix("L = ")
    if spec.loss.reduction == "mean":
        return f"L = (1/N) Σ_n ℓ_n (mean over the batch), ℓ = {per}"
    return f"L = Σ_n ℓ_n (sum over the batch), ℓ = {per}"


def total_loss_formula(spec: NetworkSpec) -> str:
    if spec.regularization:
        return "L = L_data + penalty"
    return data_loss_formula(spec)


def conventions(
    spec: NetworkSpec, rule: str, dtype: str = "float64", round_each: int | None = None
) -> dict[str, str]:
    """One line each, in words a student can compare with their sheet."""
    out: dict[str, str] = {"loss": loss_description(spec)}
    if spec.batched:
        out["batch"] = (
            "L = mean over the batch of the per-sample losses; gradients carry the 1/N"
            if spec.loss.reduction == "mean"
            else "L = sum over the batch of the per-sample losses"
        )
    loss = losses.of(spec.loss)
    if loss.fused_with and spec.output_activation == loss.fused_with:
        out["output"] = f"{loss.fused_with} + {loss.kind}: {loss.fused_formula}"
    sequence = _sequence_convention(spec)
    if sequence:
        out["sequence"] = sequence
    for layer in spec.all_layers:  # the layers inside blocks too
        text = layers.build(layer).convention()
        if text is None:
            continue
        if layer.freeze:
            text += f"; frozen (not updated): {', '.join(sorted(layer.freeze))}"
        out[layer.name] = text
    for kind, text in _activation_conventions(spec).items():
        out[kind] = text
    if spec.batched:
        b = spec.batching
        out["batches"] = batching.describe(
            spec.inputs.shape[0], b.mode, b.batch_size, b.shuffle, b.seed
        )
    if spec.regularization:
        out["regularization"] = reg_mod.describe(spec.regularization)
    out["update"] = rule
    if spec.optimizer.clip_norm is not None:
        out["clip"] = optim.clip_convention(spec.optimizer.clip_norm)
    out["dtype"] = f"{dtype} arithmetic"
    if round_each is not None:
        out["rounding"] = (
            f"every intermediate value rounded to {round_each} decimals before it is used (hand-calculation mode)"
        )
    return out


def _sequence_convention(spec: NetworkSpec) -> str:
    """What a sequence (T positions of d features) means for the layers that read one."""
    seq = [layer for layer in spec.layers if len(layer.in_shape) == 2 or layer.sequence_out]
    if not seq:
        return ""
    t = next(layer.in_shape[0] if len(layer.in_shape) == 2 else layer.out_shape[0] for layer in seq)
    text = (
        f"T = {t} positions; dense layers, activations, dropout and layer norm act on every position "
        "with the same parameters, so a parameter's gradient is the sum over the positions"
    )
    if spec.loss.positions:
        text += "; the loss is taken at every position, then " + (
            "averaged over the positions"
            if spec.loss.positions == "mean"
            else "summed over the positions"
        )
    return text


def _activation_conventions(spec: NetworkSpec) -> dict[str, str]:
    """The choices the network's activations make (ReLU′(0) = 0), once per activation."""
    out: dict[str, str] = {}
    for layer in spec.all_layers:
        if layer.activation is not None:
            unit = activations.unit_class(layer.activation.kind)
            if unit.convention:
                out.setdefault(unit.convention_key, unit.convention)
    return out


def symbol(name: str) -> str:
    """A short mathematical label for a value name: grad.conv.kernel -> ∂L/∂K⁽conv⁾."""
    parts = name.split(".")
    if name == "loss":
        return "L"
    if name == "loss_after":
        return "L after update"
    if parts[0] == "grad":
        inner = symbol(".".join(parts[1:]))
        return f"∂L/∂{inner}"
    if parts[0] == "new":
        return symbol(".".join(parts[1:])) + "′"
    if len(parts) == 2:
        layer, what = parts
        sym = PARAM_SYMBOL.get(what, what)
        return f"{sym}⁽{layer}⁾" if what != "input" else f"x⁽{layer}⁾"
    return name


def batch_mean_formula(spec: NetworkSpec, formula: str) -> str:
    """The loss gradient of one sample of a batch whose loss is the mean: its 1/N shown,
    ∂L/∂a = 2(a − y)/K -> ∂L/∂a = 2(a − y)/(K·N); p − y -> (p − y)/N."""
    if not spec.batched or spec.loss.reduction != "mean":
        return formula
    lhs, eq, rhs = formula.partition(" = ")
    rhs, paren, note = rhs.partition(" (")
    for k in ("/K", "/ K"):
        if rhs.endswith(k):
            rhs = rhs[: -len("K")] + "(K·N)"
            break
    else:
        rhs = (f"({rhs})" if " " in rhs else rhs) + "/N"
    return f"{lhs}{eq}{rhs}{paren}{note}"


def batch_sum_formula(spec: NetworkSpec, formula: str) -> str:
    """A parameter's gradient over a batch: each sample's term, summed over the samples."""
    if not spec.batched or "Σ_batch" in formula:
        return formula
    lhs, eq, rhs = formula.partition(" = ")
    return f"{lhs}{eq}Σ_n {rhs} (summed over the batch)"


# The conventions a sheet for `bpcalc check` can be written in (bpcalc/check/conventions.py),
# (key, value) -> in words
CHECK_CONVENTIONS = {
    ("delta", "o_minus_t"): "δ = ∂L/∂z = o − t, θ ← θ − η·∂L/∂θ (bpcalc's)",
    ("delta", "t_minus_o"): "δ = t − o = −∂L/∂z: every grad.* is written with the opposite "
    "sign, and the update as w ← w + η·δ·x",
    ("velocity", "pytorch"): "momentum velocity v ← μ·v + g, θ ← θ − η·v (PyTorch's)",
    ("velocity", "lr_inside"): "momentum velocity with η inside: v ← μ·v + η·g, θ ← θ − v",
    ("velocity", "textbook"): "momentum velocity v ← μ·v − η·g, θ ← θ + v (textbook)",
    ("log", "ln"): "natural logarithm in the cross-entropy",
    ("log", "log10"): "log base 10 in the cross-entropy",
    ("log", "log2"): "log base 2 in the cross-entropy",
}
