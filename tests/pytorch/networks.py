"""Random networks for the export tests: every layer type, activation, loss, optimizer and
convention switch bpcalc has, drawn by hypothesis (shapes and switches) with the numbers from
a seeded generator (so no value sits on a kink by chance)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

ACTS = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]
REGRESSION = ["mse", "half_mse", "sse", "half_sse"]


def _optimizer(draw: Any) -> dict[str, Any]:
    """An optimizer block. RMSprop and Adam take a large ε here: they divide by √v + ε, so a
    gradient that cancels to about 0 (terms of order 1, a sum of 1e-9) has its rounding error
    of 1e-16 multiplied by η/ε, 5e7 with ε = 1e-8: both programs right, 1e-9 apart."""
    kind = draw(
        st.sampled_from(["learning_rate", "sgd", "momentum", "nesterov", "rmsprop", "adam"])
    )
    lr = draw(st.sampled_from([0.01, 0.1, 0.5]))
    if kind == "learning_rate":
        return {"learning_rate": lr}
    opt: dict[str, Any] = {"type": kind, "lr": lr}
    if kind in ("momentum", "nesterov") and draw(st.booleans()):
        opt["momentum"] = draw(st.sampled_from([0.5, 0.9]))
    if kind == "momentum" and draw(st.booleans()):
        opt["dampening"] = 0.25
    if kind == "rmsprop":
        opt["eps"] = draw(st.sampled_from([1e-3, 0.1]))
        if draw(st.booleans()):
            opt["alpha"] = 0.9
    if kind == "adam":
        opt["eps"] = draw(st.sampled_from([1e-3, 0.1]))
        if draw(st.booleans()):
            opt["beta1"], opt["beta2"] = 0.8, 0.99
    return {"optimizer": opt}


def _regularization(draw: Any) -> dict[str, Any]:
    reg: dict[str, Any] = {}
    if draw(st.booleans()):
        reg["l2"] = draw(st.sampled_from([0.01, 0.1]))
    if draw(st.booleans()):
        reg["l1"] = draw(st.sampled_from([0.01, 0.05]))
    if draw(st.booleans()):
        reg["include_bias"] = True
    return reg


def _targets(rng: np.random.Generator, loss: str, k: int, n: int, draw: Any) -> list[Any]:
    if loss == "cross_entropy":
        if draw(st.booleans()):
            return [int(c) for c in rng.integers(0, k, size=n)]
        p = rng.random((n, k)) + 0.1
        return (p / p.sum(axis=1, keepdims=True)).tolist()  # soft targets summing to 1
    if loss == "binary_cross_entropy":
        return rng.random((n, k)).round(2).tolist()
    return rng.normal(size=(n, k)).tolist()


def _act(draw: Any) -> str:
    return draw(st.sampled_from(ACTS))


@st.composite
def networks(draw: Any) -> dict[str, Any]:
    """A network YAML (as a dict) with a top-level `_steps` for how many steps to compare.

    Left out: parameters whose gradient is 0 in exact arithmetic, so that both programs give
    rounding noise of about 1e-17 (a bias right before a batchnorm, which subtracts it again;
    a shared bias before a softmax, which ignores a shift; a softmax of one output). RMSprop
    and Adam divide that noise by ε, and an L1 term takes its sign, so the two programs'
    noise would become numbers that differ; bpcalc is not wrong there, nor is PyTorch.
    Batchnorm layers take ε ≥ 0.01 for the same reason: a feature with almost no variance in
    the batch (dropout zeroed most of it) is divided by √(σ² + ε), and two such layers with the
    default ε = 1e-5 multiply rounding errors by 1e5 in a step."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    loss = draw(st.sampled_from([*REGRESSION, "cross_entropy", "binary_cross_entropy"]))
    batched = draw(st.booleans())
    n = draw(st.integers(2, 5)) if batched else 1
    image = draw(st.booleans())
    layers: list[dict[str, Any]] = []
    names = iter([*"abcdefghijklmnopqrstuvwxyz", *(f"layer{i}" for i in range(50))])

    def name() -> str:  # layer names, one of them clashing with an nn.Module attribute
        return (
            draw(st.sampled_from(["train", "forward", next(names)])) if not layers else next(names)
        )

    if image:
        c = draw(st.integers(1, 2))
        h, w = draw(st.integers(2, 5)), draw(st.integers(2, 5))
        two_d = c == 1 and draw(st.booleans())
        o = 1 if two_d else draw(st.integers(1, 2))
        kh, kw = draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))
        stride = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
        padding = [draw(st.integers(0, 1)), draw(st.integers(0, 1))]
        conv: dict[str, Any] = {
            "name": name(),
            "type": "conv2d",
            "kernel": rng.normal(size=(kh, kw) if two_d else (o, c, kh, kw)).tolist(),
            "stride": stride,
            "padding": padding,
            "flip": draw(st.booleans()),
            "activation": _act(draw),
        }
        if draw(st.booleans()):
            conv["bias"] = float(rng.normal()) if o == 1 else rng.normal(size=o).tolist()
        if conv["activation"] == "leaky_relu":
            conv["slope"] = 0.2
        if draw(st.integers(0, 3)) == 0:
            conv["freeze"] = draw(st.sampled_from(["all", ["bias"], ["kernel"]]))
        layers.append(conv)
        ho = (h + 2 * padding[0] - kh) // stride[0] + 1
        wo = (w + 2 * padding[1] - kw) // stride[1] + 1
        if batched and draw(st.booleans()):
            conv["freeze"] = "all" if conv.get("freeze") == "all" else ["bias"]
            bn: dict[str, Any] = {"name": name(), "type": "batchnorm"}
            if draw(st.booleans()):
                bn["gamma"] = (rng.random(o) + 0.5).tolist()
                bn["beta"] = rng.normal(size=o).tolist()
                bn["running_mean"] = rng.normal(size=o).tolist()
                bn["running_var"] = (rng.random(o) + 0.5).tolist()
                bn["momentum"] = 0.3
            bn["eps"] = draw(st.sampled_from([0.01, 0.1]))
            if draw(st.booleans()):
                bn["activation"] = "relu"
            layers.append(bn)
        pool = draw(st.sampled_from([None, "maxpool2d", "avgpool2d"]))
        if pool and ho >= 2 and wo >= 2:
            size = draw(st.integers(1, 2))
            ps = draw(st.integers(1, 2))
            if (ho - size) % ps or (wo - size) % ps:
                ps = 1
            layers.append({"name": name(), "type": pool, "size": size, "stride": ps})
            ho, wo = (ho - size) // ps + 1, (wo - size) // ps + 1
        if draw(st.integers(0, 3)) == 0:
            layers.append({"name": name(), "type": "dropout", "p": 0.25, "seed": 3})
        layers.append({"name": name(), "type": "flatten"})
        width = o * ho * wo
        xs = rng.normal(size=(n, h, w) if two_d else (n, c, h, w)).tolist()
    else:
        width = draw(st.integers(1, 4))
        xs = rng.normal(size=(n, width)).tolist()
    hidden = draw(st.integers(0, 2))
    k = draw(st.integers(2 if loss == "cross_entropy" else 1, 3))
    sizes = [width] + [draw(st.integers(1, 4)) for _ in range(hidden)] + [k]
    for i in range(1, len(sizes)):
        last = i == len(sizes) - 1
        layout = draw(st.sampled_from(["out_in", "in_out"]))
        shape = (sizes[i], sizes[i - 1]) if layout == "out_in" else (sizes[i - 1], sizes[i])
        if last:
            act = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(loss)
            act = act or draw(st.sampled_from([*ACTS, "softmax"] if k > 1 else ACTS))
        else:
            act = _act(draw)
        shared = act != "softmax" and draw(st.booleans())
        dense: dict[str, Any] = {"name": name(), "type": "dense", "layout": layout}
        dense["weights"] = rng.normal(size=shape).tolist()
        if shared:
            dense["bias"], dense["bias_shared"] = float(rng.normal()), True
        elif draw(st.booleans()):
            dense["bias"] = rng.normal(size=sizes[i]).tolist()
        if draw(st.integers(0, 4)) == 0:
            dense["freeze"] = draw(st.sampled_from(["all", ["bias"], ["weights"]]))
        if draw(st.integers(0, 3)) == 0:
            dense["regularization"] = _regularization(draw)
        own_layer = draw(st.booleans())
        if own_layer:
            layers.append(dense)
            layers.append(
                {"name": name(), "type": act, **({"slope": 0.2} if act == "leaky_relu" else {})}
            )
        else:
            dense["activation"] = act
            if act == "leaky_relu":
                dense["slope"] = 0.2
            layers.append(dense)
        if not last and batched and draw(st.integers(0, 3)) == 0:
            if dense.get("freeze") != "all":
                dense["freeze"] = sorted({*dense.get("freeze", []), "bias"})
            eps = draw(st.sampled_from([0.01, 0.1]))
            layers.append(
                {"name": name(), "type": "batchnorm", "eps": eps, "activation": _act(draw)}
            )
        if not last and draw(st.integers(0, 3)) == 0:
            drop: dict[str, Any] = {"name": name(), "type": "dropout", "p": 0.5}
            if draw(st.booleans()):
                m = (rng.random((n if draw(st.booleans()) else 1, sizes[i])) < 0.6).astype(int)
                drop["mask"] = m.tolist() if m.shape[0] > 1 else m[0].tolist()
            layers.append(drop)
    net: dict[str, Any] = {"name": "random network", "layers": layers}
    net["loss"] = {"type": loss, "reduction": draw(st.sampled_from(["mean", "sum"]))}
    net.update(_optimizer(draw))
    if draw(st.integers(0, 2)) == 0:
        net["regularization"] = _regularization(draw)
    if batched:
        net["inputs"] = xs
        net["targets"] = _targets(rng, loss, k, n, draw)
        mode = draw(st.sampled_from(["batch", "sgd", "minibatch"]))
        net["mode"] = mode
        if mode == "minibatch":
            net["batch_size"] = draw(st.integers(2, n))
        net["shuffle"] = draw(st.booleans())
        net["seed"] = draw(st.integers(0, 5))
    else:
        net["input"] = xs[0]
        net["target"] = _targets(rng, loss, k, 1, draw)[0]
    net["_steps"] = draw(st.integers(1, 3))
    return net
