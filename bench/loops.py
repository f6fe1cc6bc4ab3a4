"""One training step of each contender, as a closure step(x, y, cls) -> loss.

- bpcalc: `bpcalc.training.Trainer(spec, float32).train_step` when the training module is
  there; otherwise the same calls it makes (engine.forward, engine.loss_value,
  engine.backward without the input gradient, the optimizer's update).
- numpy: the hand-written loop of the same maths, the reference a user would write (the MLP,
  and the CNN of bench/nets.py).
- torch: the same network in PyTorch (nn.Linear / nn.Conv2d, CrossEntropyLoss, SGD).

Every contender computes the loss, the gradients of every parameter and a plain SGD update
(θ ← θ − η ∂L/∂θ, mean over the batch), in float32, from the same initial parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from nets import LR, Net

Step = Callable[[np.ndarray, np.ndarray, np.ndarray], float]


def bpcalc_trainer_kind() -> str:
    try:
        from bpcalc.training import Trainer  # noqa: F401
    except ImportError:
        return "engine loop (bpcalc.training not there yet)"
    return "bpcalc.training.Trainer"


def bpcalc_step(net: Net, dtype: Any = np.float32) -> Step:
    try:
        from bpcalc.training import Trainer
    except ImportError:
        return _engine_step(net, dtype)
    trainer = Trainer(net.spec, dtype)

    def step(x: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
        return trainer.train_step(x, y)

    step.params = lambda: _flat_params(trainer.params)  # type: ignore[attr-defined]
    return step


def _engine_step(net: Net, dtype: Any) -> Step:
    from bpcalc import engine
    from bpcalc import optim as optim_mod

    spec = net.spec
    layers = [engine.build_layer(s) for s in spec.layers]
    params = engine.initial_params(spec, dtype)
    opt = optim_mod.build(spec.optimizer)

    def step(x: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
        fwd = engine.forward(layers, params, x)
        loss, _ = engine.loss_value(spec, fwd.out, fwd.z_out, y)
        grads = engine.backward(spec, layers, params, fwd, y, input_grad=False)
        for name, pgrads in grads.items():
            for pname, g in pgrads.items():
                params[name][pname], _ = opt.update(params[name][pname], g, {}, 1)
        return loss

    step.params = lambda: _flat_params(params)  # type: ignore[attr-defined]
    return step


def _flat_params(params: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The current parameters as "<layer>.<param>" -> array (for the tests)."""
    return {f"{layer}.{k}": v for layer, pv in params.items() for k, v in pv.items()}


def numpy_mlp_step(net: Net, dtype: Any = np.float32) -> Step:
    """The hand-written loop: z1 = x W1ᵀ + b1, a1 = max(z1, 0), z2 = a1 W2ᵀ + b2, p = softmax(z2),
    L = −(1/B) Σ y·log p; ∂L/∂z2 = (p − y)/B, then the chain rule by hand; SGD in place."""
    p = {k: v.astype(dtype) for k, v in net.params.items()}
    w1, b1, w2, b2 = p["hidden.weights"], p["hidden.bias"], p["out.weights"], p["out.bias"]

    def step(x: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
        n = x.shape[0]
        z1 = x @ w1.T + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ w2.T + b2
        shifted = z2 - z2.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = float(-(y * (shifted - np.log(s))).sum() / n)
        dz2 = (e / s - y) / n
        dw2 = dz2.T @ a1
        db2 = dz2.sum(axis=0)
        dz1 = (dz2 @ w2) * (z1 > 0)
        dw1 = dz1.T @ x
        db1 = dz1.sum(axis=0)
        w1[...] -= LR * dw1
        b1[...] -= LR * db1
        w2[...] -= LR * dw2
        b2[...] -= LR * db2
        return loss

    step.params = lambda: p  # type: ignore[attr-defined]
    return step


def numpy_cnn_step(net: Net, dtype: Any = np.float32) -> Step:
    """The hand-written loop of the benchmark CNN: conv (F filters kh x kw, valid, stride 1) as
    one matrix product per sample over the input's patches (gathered by kh·kw slices), ReLU,
    max-pool 2 over strided slices (sides even), dense, softmax and cross-entropy; the chain rule by
    hand (a pooled gradient goes to every element equal to its window's maximum: a tie after
    ReLU is at 0, where ReLU's derivative is 0); no gradient for the input; SGD in place."""
    p = {k: v.astype(dtype) for k, v in net.params.items()}
    k, kb, w, b = p["conv.kernel"], p["conv.bias"], p["fc.weights"], p["fc.bias"]
    f, c, kh, kw = k.shape
    k2 = k.reshape(f, c * kh * kw)  # a view: the update below changes k too

    def step(x: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
        n, _, h, wd = x.shape
        ho, wo = h - kh + 1, wd - kw + 1
        # patches: (n, c, kh·kw, ho·wo), one column per output position
        cols = np.stack(
            [x[:, :, i : i + ho, j : j + wo] for i in range(kh) for j in range(kw)], axis=2
        ).reshape(n, c * kh * kw, ho * wo)
        z = (k2 @ cols).reshape(n, f, ho, wo) + kb[:, None, None]
        a = np.maximum(z, 0)
        # max-pool 2: the four elements of every window as four strided slices
        corners = [a[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
        pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(*corners[2:]))
        flat = pooled.reshape(n, -1)
        logits = flat @ w.T + b
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = float(-(y * (shifted - np.log(s))).sum() / n)
        dlogits = (e / s - y) / n
        dw = dlogits.T @ flat
        db = dlogits.sum(axis=0)
        dpooled = (dlogits @ w).reshape(pooled.shape)
        da = np.zeros_like(a)
        for (i, j), corner in zip(((0, 0), (0, 1), (1, 0), (1, 1)), corners, strict=True):
            da[:, :, i::2, j::2] = dpooled * (corner == pooled)
        dz = (da * (z > 0)).reshape(n, f, ho * wo)
        # Σ over samples and positions of dz · patchesᵀ, one product per sample
        dk = np.matmul(dz, cols.transpose(0, 2, 1)).sum(axis=0)
        dkb = dz.sum(axis=(0, 2))
        k2[...] -= LR * dk
        kb[...] -= LR * dkb
        w[...] -= LR * dw
        b[...] -= LR * db
        return loss

    step.params = lambda: p  # type: ignore[attr-defined]
    return step


def torch_available() -> str | None:
    """None when PyTorch imports, else why not."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def _torch_params(module: Any, net: Net, names: dict[str, str]) -> None:
    import torch

    with torch.no_grad():
        for torch_name, ours in names.items():
            getattr_path = torch_name.split(".")
            obj = module
            for part in getattr_path:
                obj = getattr(obj, part)
            obj.copy_(torch.from_numpy(net.params[ours].astype(np.float32)))


def torch_mlp_step(net: Net) -> Step:
    import torch
    from torch import nn

    w1 = net.params["hidden.weights"]
    w2 = net.params["out.weights"]
    model = nn.Sequential(
        nn.Linear(w1.shape[1], w1.shape[0]), nn.ReLU(), nn.Linear(w2.shape[1], w2.shape[0])
    )
    _torch_params(
        model,
        net,
        {
            "0.weight": "hidden.weights",
            "0.bias": "hidden.bias",
            "2.weight": "out.weights",
            "2.bias": "out.bias",
        },
    )
    return _torch_step(model, torch, nn)


def torch_cnn_step(net: Net) -> Step:
    import torch
    from torch import nn

    k = net.params["conv.kernel"]
    w = net.params["fc.weights"]
    model = nn.Sequential(
        nn.Conv2d(k.shape[1], k.shape[0], k.shape[2:]),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(w.shape[1], w.shape[0]),
    )
    _torch_params(
        model,
        net,
        {
            "0.weight": "conv.kernel",
            "0.bias": "conv.bias",
            "4.weight": "fc.weights",
            "4.bias": "fc.bias",
        },
    )
    return _torch_step(model, torch, nn)


def _torch_step(model: Any, torch: Any, nn: Any) -> Step:
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step(x: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
        xt, ct = torch.from_numpy(x), torch.from_numpy(cls)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), ct)
        loss.backward()
        opt.step()
        return loss.item()

    return step
