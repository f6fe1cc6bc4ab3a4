"""Value names -> symbols, formulas and LaTeX. The one place notation is decided, so the
tables, the JSON, the explanations and the write-ups cannot disagree."""

from __future__ import annotations

from bpcalc import batching, losses
from bpcalc import regularization as reg_mod
from bpcalc.spec.schema import (
    ActivationLayerSpec,
    ActivationSpec,
    BatchNormSpec,
    Conv2dSpec,
    DenseSpec,
    DropoutSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
)

ACT_SYMBOL = {
    "identity": "z",
    "relu": "ReLU(z)",
    "leaky_relu": "LeakyReLU(z)",
    "sigmoid": "σ(z)",
    "tanh": "tanh(z)",
    "softmax": "softmax(z)",
}
ACT_DERIVATIVE = {
    "identity": "identity′(z) = 1",
    "relu": "ReLU′(z) = 1 if z > 0 else 0",
    "leaky_relu": "LeakyReLU′(z) = 1 if z > 0 else slope",
    "sigmoid": "σ′(z) = a(1 − a)",
    "tanh": "tanh′(z) = 1 − a²",
    "softmax": "∂L/∂z_i = a_i (∂L/∂a_i − Σ_j a_j ∂L/∂a_j)",
}
PARAM_SYMBOL = {"weights": "W", "kernel": "K", "bias": "b", "gamma": "γ", "beta": "β"}
BATCHNORM_FORMULA = "z = γ·x̂ + β, x̂ = (x − μ)/√(σ² + ε)"
BATCHNORM_GRAD_INPUT = "∂L/∂x = γ/(m·√(σ² + ε)) · (m·∂L/∂z − Σ∂L/∂z − x̂·Σ(∂L/∂z·x̂))"


def linear_formula(layer: LayerSpec) -> str:
    if isinstance(layer, DenseSpec):
        core = "W·x" if layer.layout == "out_in" else "x·W"
        return f"z = {core} + b" + (" (one shared b)" if layer.bias_shared else "")
    if isinstance(layer, Conv2dSpec):
        op = "x ∗ flip(K)" if layer.flip else "x ⋆ K"
        return f"z = {op} + b  (stride {_pair(layer.stride)}, padding {_pair(layer.padding)})"
    if isinstance(layer, PoolSpec):
        return f"a = {layer.kind}pool{_pair(layer.size)}(x), stride {_pair(layer.stride)}"
    if isinstance(layer, ActivationLayerSpec):
        return activation_formula(layer.activation).replace("(z)", "(x)")
    if isinstance(layer, DropoutSpec):
        return f"a = x ⊙ m / (1 − p), p = {layer.p:g} (inverted dropout)"
    if isinstance(layer, BatchNormSpec):
        return BATCHNORM_FORMULA
    return "a = flatten(x) (row-major)"


def activation_formula(act: ActivationSpec | None) -> str:
    return "a = " + ACT_SYMBOL["identity" if act is None else act.kind]


def grad_z_formula(act: ActivationSpec | None) -> str:
    if act is None:
        return "∂L/∂z = ∂L/∂a"
    if act.kind == "softmax":
        return ACT_DERIVATIVE["softmax"]
    return f"∂L/∂z = ∂L/∂a ⊙ f′(z), {ACT_DERIVATIVE[act.kind]}"


def grad_param_formula(layer: LayerSpec, param: str) -> str:
    if isinstance(layer, BatchNormSpec):
        return "∂L/∂γ = Σ_batch ∂L/∂z · x̂" if param == "gamma" else "∂L/∂β = Σ_batch ∂L/∂z"
    if isinstance(layer, DenseSpec):
        if param == "weights":
            return "∂L/∂W = ∂L/∂z · xᵀ" if layer.layout == "out_in" else "∂L/∂W = xᵀ · ∂L/∂z"
        return "∂L/∂b = Σ_i ∂L/∂z_i (shared bias)" if layer.bias_shared else "∂L/∂b = ∂L/∂z"
    if param == "kernel":
        return "∂L/∂K[i,j] = Σ_{h,w} ∂L/∂z[h,w] · x[h·s+i, w·s+j]" + (
            " (flipped back)" if getattr(layer, "flip", False) else ""
        )
    return "∂L/∂b = Σ_{h,w} ∂L/∂z[h,w]"


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


def grad_input_formula(layer: LayerSpec) -> str:
    if isinstance(layer, DenseSpec):
        return "∂L/∂x = Wᵀ · ∂L/∂z" if layer.layout == "out_in" else "∂L/∂x = ∂L/∂z · Wᵀ"
    if isinstance(layer, Conv2dSpec):
        return "∂L/∂x = ∂L/∂z ⋆ K, full (each input gets every tap that saw it)"
    if isinstance(layer, PoolSpec):
        if layer.kind == "max":
            return "∂L/∂x = ∂L/∂a at each window's max, 0 elsewhere"
        return "∂L/∂x = ∂L/∂a / (window size), spread over the window"
    if isinstance(layer, ActivationLayerSpec):
        act = layer.activation
        if act.kind == "softmax":
            return ACT_DERIVATIVE["softmax"].replace("∂L/∂z", "∂L/∂x")
        return f"∂L/∂x = ∂L/∂a ⊙ f′(x), {ACT_DERIVATIVE.get(act.kind, '')}"
    if isinstance(layer, DropoutSpec):
        return "∂L/∂x = ∂L/∂a ⊙ m / (1 − p)"
    if isinstance(layer, BatchNormSpec):
        return BATCHNORM_GRAD_INPUT
    return "∂L/∂x = reshape(∂L/∂a)"


def _pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def loss_description(spec: NetworkSpec) -> str:
    kind = spec.loss.kind
    words = {
        "mse": "mean over the output elements, no ½",
        "half_mse": "½ times the mean over the output elements",
        "sse": "sum over the output elements, no ½",
        "half_sse": "½ times the sum over the output elements, so ∂L/∂a = a − y",
        "cross_entropy": "natural log, summed over the classes",
        "binary_cross_entropy": "natural log, mean over the output elements",
    }[kind]
    return f"{losses.FORMULAS[kind]} ({kind}: {words})"


def per_sample_loss_formula(spec: NetworkSpec) -> str:
    return "ℓ_n = " + losses.FORMULAS[spec.loss.kind].removeprefix("L = ") + ", each sample"


def data_loss_formula(spec: NetworkSpec) -> str:
    """The loss of the data: per sample, then the batch reduction."""
    if not spec.batched:
        return losses.FORMULAS[spec.loss.kind]
    per = losses.FORMULAS[spec.loss.kind].removeprefix("L = ")
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
    fused = losses.FUSED.get(spec.loss.kind)
    if fused and spec.output_activation == fused:
        out["output"] = f"{fused} + {spec.loss.kind}: {losses.FUSED_FORMULAS[spec.loss.kind]}"
    for layer in spec.layers:
        if isinstance(layer, DenseSpec):
            text = (
                "z = W·x + b, W is out x in (one row per neuron, as in PyTorch)"
                if layer.layout == "out_in"
                else "z = x·W + b, W is in x out (one column per neuron, as in CS231n)"
            )
            if layer.bias_shared:
                text += "; one bias shared by all neurons, its gradient is the sum over them"
        elif isinstance(layer, Conv2dSpec):
            text = (
                "convolution: the kernel is flipped 180° before sliding (textbook)"
                if layer.flip
                else "cross-correlation: the kernel slides unflipped (as in PyTorch)"
            )
            text += f", stride {_pair(layer.stride)}, zero padding {_pair(layer.padding)}"
        elif isinstance(layer, PoolSpec) and layer.kind == "max":
            text = "max pooling: the gradient goes to each window's max (first one on a tie)"
        elif isinstance(layer, DropoutSpec):
            text = (
                f"inverted dropout, p = {layer.p:g}: kept units are scaled by 1/(1 − p) during "
                "training (as PyTorch), so nothing is rescaled at test time; "
                + (
                    "the mask is given"
                    if layer.mask is not None
                    else f"a unit is kept when u ≥ p, u from np.random.default_rng({layer.seed}), "
                    "a new mask every step"
                )
            )
        elif isinstance(layer, BatchNormSpec):
            per = "feature" if len(layer.in_shape) == 1 else "channel (over N, H and W)"
            text = (
                f"batch normalization in training mode, per {per}: batch mean μ and biased "
                f"variance σ² (as PyTorch), ε = {layer.eps:g}; running statistics "
                f"(momentum {layer.momentum:g}, PyTorch's convention) use the unbiased variance "
                "and are recorded, not used"
            )
        else:
            continue
        if getattr(layer, "freeze", None):
            text += f"; frozen (not updated): {', '.join(sorted(layer.freeze))}"
        out[layer.name] = text
    if _uses(spec, "relu"):
        out["relu"] = "ReLU′(0) is taken as 0"
    if spec.batched:
        b = spec.batching
        out["batches"] = batching.describe(
            spec.inputs.shape[0], b.mode, b.batch_size, b.shuffle, b.seed
        )
    if spec.regularization:
        out["regularization"] = reg_mod.describe(spec.regularization)
    out["update"] = rule
    out["dtype"] = f"{dtype} arithmetic"
    if round_each is not None:
        out["rounding"] = (
            f"every intermediate value rounded to {round_each} decimals before it is used (hand-calculation mode)"
        )
    return out


def _uses(spec: NetworkSpec, kind: str) -> bool:
    for layer in spec.layers:
        act = getattr(layer, "activation", None)
        if act is not None and act.kind in (kind, f"leaky_{kind}"):
            return True
    return False


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
