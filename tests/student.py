"""A simulated student, for grading `bpcalc check` the way a class would use it.

The student has its own small NumPy forward and backward pass (not bpcalc's engine): it reads
the exercise (the parsed network: its numbers and settings) and works every value bpcalc's
--template lists, writing each rounded to `decimals` decimals (or `sigfigs` significant
figures) half away from zero, as a person rounds, and computing on from its own rounded
numbers. Style "values" rounds each named value; style "steps" also rounds each sub-step on
the way: each product of a sum, σ′, e^z, (a − y)², η·g and the optimizers' partial results.

A slip (Slip) makes the student go wrong once, the way a person does, and carry on correctly
from its own wrong numbers: an arithmetic slip in one number, or one of the named slips
bpcalc's checker knows.

Only the value names, their shapes and which samples a step uses come from bpcalc's trace
(as `bpcalc check --template` and the exercise would tell a student); a given dropout mask
is copied from it, as from a handout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bpcalc import engine
from bpcalc.network.types import NetworkSpec

Array = np.ndarray


def person_round(x: Array | float, decimals: int) -> Array:
    """Half away from zero on the decimal a person sees (0.3925 -> 0.393)."""
    x = np.asarray(x, dtype=np.float64)
    scale = 10.0**decimals
    y = np.abs(x) * scale
    r = np.floor(y + 0.5 + 4 * np.spacing(y)) / scale
    return np.copysign(r, x)


def figures_round(x: Array | float, figures: int) -> Array:
    x = np.asarray(x, dtype=np.float64)
    mag = np.abs(x)
    e = np.where(mag > 0, np.floor(np.log10(np.where(mag > 0, mag, 1.0))), 0.0)
    scale = 10.0 ** (figures - 1 - e)
    return person_round(x * scale, 0) / scale


@dataclass(frozen=True)
class Slip:
    """kind: "arith" (one number off), or a slip key bpcalc names ("half_missing", ...).
    where: the value (and step) the arithmetic slip is in; element: its element."""

    kind: str
    name: str = ""
    step: int = 1
    element: tuple[int, ...] = ()
    layer: str = ""  # the layer a layer slip is made in


@dataclass
class Student:
    spec: NetworkSpec
    decimals: int = 3
    style: str = "values"
    sigfigs: int | None = None
    steps: int = 1
    slip: Slip | None = None
    delta_t_minus_o: bool = False  # writes δ = t − o: every grad.* with the other sign
    sheet: dict[tuple[int, str], Array] = field(default_factory=dict)

    # -- rounding ---------------------------------------------------------------------------
    def R(self, x: Array | float) -> Array:
        if self.sigfigs is not None:
            return figures_round(x, self.sigfigs)
        return person_round(x, self.decimals)

    def S(self, x: Array | float) -> Array:
        """A sub-step: rounded in the steps style, kept whole in the values style."""
        return self.R(x) if self.style == "steps" else np.asarray(x, dtype=np.float64)

    def write(self, name: str, value: Array, copied: bool = False) -> Array:
        """Write a named value on the sheet; what the student computes on with."""
        v = np.asarray(value, dtype=np.float64) if copied else self.R(value)
        inner = v.shape
        shown = self.shapes[self.k - 1][name]
        v = np.array(v, dtype=np.float64).reshape(shown)
        slip = self.slip
        if slip is not None and slip.step == self.k and slip.name == name:
            if slip.kind == "arith":
                old = float(v[slip.element])
                unit = 10.0 ** (-self.decimals)
                v[slip.element] = self.R(old + 0.25 * abs(old) + 40 * unit)
            elif slip.kind == "sign":
                v = -v
            elif slip.kind == "other_class":  # 1 − y for BCE, the other one-hot entry for CE
                flat = v.reshape(v.shape[0], -1) if self.batched else v.reshape(1, -1)
                bce = self.spec.loss.kind == "binary_cross_entropy"
                v = (1.0 - flat if bce else flat[:, ::-1]).reshape(v.shape)
        f = -1.0 if self.delta_t_minus_o and name.startswith("grad.") else 1.0
        self.sheet[(self.k, name)] = v * f
        v = v.reshape(inner)
        return v

    # -- the exercise -----------------------------------------------------------------------
    def work(self) -> dict[tuple[int, str], Array]:
        spec = self.spec
        trace = engine.run(spec, steps=self.steps)
        self.shapes = [{r.name: r.shape for r in st} for st in trace.steps]
        self.masks = [
            {r.name: r.value for r in st if r.name.endswith(".mask")} for st in trace.steps
        ]
        self.batched = spec.batched
        self.params = {
            layer.name: {k: np.array(v, dtype=np.float64) for k, v in layer.params.items()}
            for layer in spec.all_layers
            if layer.name in engine.initial_params(spec)
        }
        self.opt: dict[tuple[str, str], dict[str, Array]] = {}
        for k, st in enumerate(trace.steps, start=1):
            self.k = k
            samples = st.samples if st.samples is not None else list(range(spec.inputs.shape[0]))
            self.one_step(samples)
        return self.sheet

    def one_step(self, samples: list[int]) -> None:
        spec = self.spec
        x = np.array(spec.inputs[samples], dtype=np.float64)
        y = np.array(spec.targets[samples], dtype=np.float64)
        self.write("input", x, copied=True)
        n = x.shape[0]
        caches, out = self.forward(x, self.params, write=True, training=True)
        y = self.write("target", y, copied=self.slip is None or self.slip.kind != "other_class")
        loss = self.loss(out, y, n, write=True, params=self.params)
        del loss
        grads = self.backward(caches, out, y, n)
        new = self.update(grads, caches)
        self.params = new
        after, _ = self.forward(x, new, write=False, training=True)
        self.write("loss_after", self.loss(after[-1]["a"], y, n, write=False, params=new))
        if "dataset_loss_after" in self.shapes[self.k - 1]:
            xs = np.array(spec.inputs, dtype=np.float64)
            ys = np.array(spec.targets, dtype=np.float64)
            cs, _ = self.forward(xs, new, write=False, training=False)
            value = self.loss(cs[-1]["a"], ys, xs.shape[0], write=False, params=new)
            self.write("dataset_loss_after", value)

    # -- forward ----------------------------------------------------------------------------
    def forward(
        self, x: Array, params: dict[str, dict[str, Array]], write: bool, training: bool
    ) -> tuple[list[dict[str, Any]], Array]:
        n = x.shape[0]
        x = x.reshape(n, *self.spec.layers[0].in_shape)
        return self.forward_layers(self.spec.layers, x, params, write, training)

    def forward_layers(
        self,
        layers: Any,
        x: Array,
        params: dict[str, dict[str, Array]],
        write: bool,
        training: bool,
    ) -> tuple[list[dict[str, Any]], Array]:
        n = x.shape[0]
        caches: list[dict[str, Any]] = []
        W = self.write if write else (lambda name, v, copied=False: self.R(v))
        for layer in layers:
            name = layer.name
            c: dict[str, Any] = {"x": x, "layer": layer}
            p = params.get(name, {})
            if write:
                for k in p:
                    step1 = self.k == 1
                    p[k] = W(f"{name}.{k}", p[k], copied=step1)
            kind = layer.type
            if kind == "dense":
                z = self.dense(x, p, layer)
                z = W(f"{name}.z", z)
            elif kind == "conv2d":
                z = self.conv(x, p, layer)
                z = W(f"{name}.z", z)
            elif kind == "batchnorm":
                z = self.batchnorm(x, p, layer, c, W, training)
                z = W(f"{name}.z", z)
            elif kind == "layernorm":
                z = self.layernorm(x, p, layer, c, W)
                z = W(f"{name}.z", z)
            elif kind == "residual":
                inner, fx = self.forward_layers(layer.layers, x, params, write, training)
                c["inner"] = inner
                z = x + fx
            elif kind in ("maxpool2d", "avgpool2d"):
                z = self.pool(x, layer, c)
            elif kind == "flatten":
                z = x.reshape(n, -1)
            elif kind == "dropout":
                if training:
                    mask = self.masks[self.k - 1][f"{name}.mask"].reshape(x.shape)
                    if write:
                        W(f"{name}.mask", mask, copied=True)
                    c["mask"] = mask
                    z = x * mask / (1 - layer.p)
                else:
                    c["mask"] = np.ones_like(x)
                    z = x
            else:  # an activation layer
                z = x
            c["z"] = z
            act = layer.activation
            a = self.activate(act.kind if act else None, act, z) if act else z
            a = W(f"{name}.a", a)
            c["a"] = a.reshape(n, *layer.out_shape)
            caches.append(c)
            x = c["a"]
        return caches, x

    def layernorm(
        self, x: Array, p: dict[str, Array], layer: Any, c: dict[str, Any], W: Any
    ) -> Array:
        name = layer.name
        over = tuple(range(x.ndim - layer.axes, x.ndim))
        d = int(np.prod([x.shape[a] for a in over]))
        mu = W(f"{name}.mean", x.mean(axis=over)).reshape(x.mean(axis=over, keepdims=True).shape)
        sq = (x - mu) ** 2
        unbiased = self.slip_here("layernorm_unbiased", layer)
        var = W(f"{name}.var", (self.S(sq) if d >= 2 else sq).sum(axis=over) / (d - unbiased))
        var = var.reshape(mu.shape)
        r = self.S(np.sqrt(var + layer.eps))
        xhat = W(f"{name}.xhat", (x - mu) / r)
        c.update(r=r, xhat=xhat, d=d, over=over, unbiased=unbiased)
        gx = p["gamma"] * xhat
        return (self.S(gx) if np.any(p["beta"] != 0) else gx) + p["beta"]

    def dense(self, x: Array, p: dict[str, Array], layer: Any, transposed: bool = False) -> Array:
        w = self.w_oi(p["weights"], layer)
        if self.slip_here("dense_transposed", layer):
            w = w.T
        products = self.S(w[None] * x[:, None, :])  # (N, out, in)
        return products.sum(axis=2) + p.get("bias", 0.0)

    def w_oi(self, w: Array, layer: Any) -> Array:
        return w if layer.layout == "out_in" else w.T

    def conv_kernel(self, k: Array, layer: Any, backward: bool = False) -> Array:
        flip = layer.flip
        if self.slip_here("conv_flip", layer):
            flip = not flip
        if backward and self.slip_here("conv_flip_backward", layer):
            flip = not flip
        return k[:, :, ::-1, ::-1] if flip else k

    def conv(self, x: Array, p: dict[str, Array], layer: Any) -> Array:
        k = self.conv_kernel(p["kernel"], layer)
        o, c, kh, kw = k.shape
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        n = x.shape[0]
        _, ho, wo = layer.out_shape
        z = np.zeros((n, o, ho, wo))
        for i in range(ho):
            for j in range(wo):
                window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]  # (N, C, kh, kw)
                products = self.S(window[:, None] * k[None])  # (N, O, C, kh, kw)
                z[:, :, i, j] = products.reshape(n, o, -1).sum(axis=2) + p.get("bias", 0.0)
        return z

    def pool(self, x: Array, layer: Any, c: dict[str, Any]) -> Array:
        (kh, kw), (sh, sw) = layer.size, layer.stride
        n, ch = x.shape[:2]
        _, ho, wo = layer.out_shape
        out = np.zeros((n, ch, ho, wo))
        for i in range(ho):
            for j in range(wo):
                win = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                out[:, :, i, j] = win.max(axis=(2, 3)) if layer.kind == "max" else win.mean((2, 3))
        return out

    def batchnorm(
        self, x: Array, p: dict[str, Array], layer: Any, c: dict[str, Any], W: Any, training: bool
    ) -> Array:
        name = layer.name
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        m = int(np.prod([x.shape[a] for a in axes]))

        def b(v: Array) -> Array:
            return v if x.ndim == 2 else v.reshape(1, -1, 1, 1)

        if training:
            mu = W(f"{name}.mean", x.mean(axis=axes))
            var = W(f"{name}.var", self.S((x - b(mu)) ** 2).sum(axis=axes) / m)
        else:
            mu, var = p["running_mean"], p["running_var"]
        r = self.S(np.sqrt(var + layer.eps))
        xhat = W(f"{name}.xhat", (x - b(mu)) / b(r))
        c.update(mu=mu, var=var, r=r, xhat=xhat, m=m, b=b, axes=axes)
        return self.S(b(p["gamma"]) * xhat) + b(p["beta"])

    def activate(self, kind: str | None, act: Any, z: Array) -> Array:
        if kind == "relu":
            return np.maximum(z, 0.0)
        if kind == "leaky_relu":
            return np.where(z > 0, z, dict(act.options).get("slope", 0.01) * z)
        if kind == "sigmoid":
            return 1.0 / (1.0 + self.S(np.exp(-z)))
        if kind == "tanh":
            return np.tanh(z)
        if kind == "softmax":
            flat = z.reshape(z.shape[0], -1)
            e = self.S(np.exp(flat))
            return (e / e.sum(axis=1, keepdims=True)).reshape(z.shape)
        if kind == "identity":
            return z
        raise NotImplementedError(kind)

    def derivative(self, kind: str, act: Any, z: Array, a: Array) -> Array:
        if kind == "relu":
            return (z > 0).astype(np.float64)
        if kind == "leaky_relu":
            return np.where(z > 0, 1.0, dict(act.options).get("slope", 0.01))
        if kind == "sigmoid":
            if self.slip is not None and self.slip.kind == "sigmoid_as_sigma":
                return a
            return a * (1.0 - a)
        if kind == "tanh":
            return 1.0 - a * a
        if kind == "identity":
            return np.ones_like(z)
        raise NotImplementedError(kind)

    # -- the loss ---------------------------------------------------------------------------
    def loss_kind(self) -> str:
        kind = self.spec.loss.kind
        if self.slip is not None and self.slip.kind == "half_missing":
            return kind.removeprefix("half_")
        return kind

    def log_factor(self) -> float:
        return 1.0 / math.log(10.0) if self.slip is not None and self.slip.kind == "log10" else 1.0

    def reduction(self) -> str:
        if self.slip is not None and self.slip.kind == "batch_sum":
            return "sum"
        return self.spec.loss.reduction

    def loss(
        self, a: Array, y: Array, n: int, write: bool, params: dict[str, dict[str, Array]]
    ) -> Array:
        W = self.write if write else (lambda name, v, copied=False: self.R(v))
        spec = self.spec
        kind = self.loss_kind()
        a2, y2 = a.reshape(n, -1), y.reshape(n, -1)
        k = a2.shape[1]
        if kind.endswith(("sse", "mse")):
            c = (0.5 if kind.startswith("half_") else 1.0) / (k if kind.endswith("mse") else 1)
            sq = (a2 - y2) ** 2
            if not (k == 1 and c == 1):
                sq = self.S(sq)
            per = c * sq.sum(axis=1)
        elif kind == "cross_entropy":
            terms = y2 * np.log(np.maximum(a2, 1e-300))
            if ((y2 != 0).sum(axis=1) >= 2).any():
                terms = self.S(terms)
            per = -terms.sum(axis=1) * self.log_factor()
        elif kind == "binary_cross_entropy":
            t = y2 * np.log(np.maximum(a2, 1e-300)) + (1 - y2) * np.log(np.maximum(1 - a2, 1e-300))
            if k >= 2:
                t = self.S(t)
            per = -t.sum(axis=1) / k * self.log_factor()
        else:
            raise NotImplementedError(kind)
        if spec.batched and write:
            per = W("loss.per_sample", per)
        if n >= 2:
            per = self.S(per)
        data = per.mean() if self.reduction() == "mean" else per.sum()
        if not spec.regularization:
            return data if not write else W("loss", data)
        if write:
            data = W("loss.data", data)
        else:
            data = self.R(data)
        pen = self.penalty(params)
        if write:
            pen = W("loss.penalty", pen)
            return W("loss", data + pen)
        return self.R(data) + self.R(pen)

    def penalty(self, params: dict[str, dict[str, Array]]) -> Array:
        parts = []
        for name, reg in self.spec.regularization.items():
            for pname, theta in params.get(name, {}).items():
                if not self.penalised(reg, pname):
                    continue
                if reg.l2:
                    sq = theta * theta
                    if theta.size > 1:
                        sq = self.S(sq)
                    parts.append(0.5 * reg.l2 * sq.sum())
                if reg.l1:
                    parts.append(reg.l1 * np.abs(theta).sum())
        if len(parts) > 1:
            parts = [self.S(p) for p in parts]
        return np.asarray(sum(parts))

    @staticmethod
    def penalised(reg: Any, pname: str) -> bool:
        if reg is None or not (reg.l1 or reg.l2):
            return False
        return pname in ("weights", "kernel") or (reg.include_bias and pname == "bias")

    # -- backward ---------------------------------------------------------------------------
    def backward(self, caches: list[dict[str, Any]], out: Array, y: Array, n: int) -> dict:
        kind = self.loss_kind()
        scale = (1.0 / n if self.reduction() == "mean" else 1.0) * self.log_factor()
        a2, y2 = out.reshape(n, -1), y.reshape(n, -1)
        k = a2.shape[1]
        if kind.endswith(("sse", "mse")):
            c = (1.0 if kind.startswith("half_") else 2.0) / (k if kind.endswith("mse") else 1)
            da = c * (a2 - y2)
        elif kind == "cross_entropy":
            da = -y2 / np.maximum(a2, 1e-300)
        else:
            s = self.S(a2 * (1 - a2))
            da = (a2 - y2) / s / k
        da = (da * scale).reshape(out.shape)
        grads: dict[str, dict[str, Array]] = {}

        def fused(act: Any) -> bool:
            return act is not None and (act.kind, kind) in (
                ("softmax", "cross_entropy"),
                ("sigmoid", "binary_cross_entropy"),
            )

        self.backward_layers(caches, da, n, grads, (y2, scale, k, fused))
        return grads

    def backward_layers(
        self,
        caches: list[dict[str, Any]],
        da: Array,
        n: int,
        grads: dict[str, dict[str, Array]],
        top: tuple[Any, ...] | None,
    ) -> Array:
        """Back through these layers (top: the output layer's fused-loss details, for the
        network's own layers; None inside a block); ∂L/∂x of the first."""
        last = len(caches) - 1
        for i in range(last, -1, -1):
            c = caches[i]
            layer = c["layer"]
            name = layer.name
            da = self.write(f"grad.{name}.a", da)
            act = layer.activation
            parametric = layer.type in ("dense", "conv2d", "batchnorm", "layernorm")
            fused = top is not None and i == last and top[3](act)
            if act is None:
                dz = da
            elif fused:
                y2, scale, k, _ = top
                p2 = c["a"].reshape(n, -1)
                dz = (p2 - y2) * scale
                if act.kind == "sigmoid":
                    dz = dz / k
                dz = dz.reshape(c["a"].shape)
            elif self.slip_here("no_derivative", layer):
                dz = da
            elif act.kind == "softmax":
                p2, g2 = c["a"].reshape(n, -1), da.reshape(n, -1)
                dz = (p2 * (g2 - self.S(p2 * g2).sum(axis=1, keepdims=True))).reshape(da.shape)
            else:
                z = c["z"].reshape(da.shape)
                dz = da * self.S(self.derivative(act.kind, act, z, c["a"]))
            if parametric:
                dz = self.write(f"grad.{name}.z", dz)
                dx, g = self.param_backward(layer, c, dz, n)
                grads[name] = g
            elif layer.type == "residual":
                skip = self.write(f"grad.{name}.input.skip", dz)
                through = self.backward_layers(c["inner"], dz, n, grads, None)
                through = self.write(f"grad.{name}.input.f", through)
                dx = through if self.slip_here("residual_no_skip", layer) else skip + through
            elif layer.type in ("maxpool2d", "avgpool2d"):
                dx = self.pool_backward(layer, c, dz)
            elif layer.type == "flatten":
                dx = dz.reshape(c["x"].shape)
            elif layer.type == "dropout":
                dx = dz * c["mask"] / (1 - layer.p)
            else:  # an activation layer: its ∂L/∂x is the ∂L/∂z just worked out
                dx = dz
            dx = self.write(f"grad.{name}.input", dx.reshape(c["x"].shape))
            da = dx
        return da

    def param_backward(
        self, layer: Any, c: dict[str, Any], dz: Array, n: int
    ) -> tuple[Array, dict[str, Array]]:
        name = layer.name
        p = self.params[name]
        through = p
        g: dict[str, Array] = {}
        if layer.type == "dense":
            x = c["x"]
            w_oi = self.w_oi(p["weights"], layer)
            transposed = self.slip_here("dense_transposed", layer)
            if transposed:
                w_oi = w_oi.T
            dw = dz[:, :, None] * x[:, None, :]
            dw = (self.S(dw) if n >= 2 else dw).sum(axis=0)
            if transposed:
                dw = dw.T
            g["weights"] = dw if layer.layout == "out_in" else dw.T
            db = dz.sum(axis=0)
            g["bias"] = np.atleast_1d(db.sum()) if layer.bias_shared else db
        elif layer.type == "conv2d":
            g["kernel"], g["bias"] = self.conv_grads(layer, c, dz)
        elif layer.type == "layernorm":
            xhat = c["xhat"]
            lead = tuple(range(dz.ndim - layer.axes))
            terms = int(np.prod([dz.shape[a] for a in lead]))
            g["gamma"] = (self.S(dz * xhat) if terms >= 2 else dz * xhat).sum(axis=lead)
            g["beta"] = dz.sum(axis=lead)
        else:
            xhat = c["xhat"]
            axes = c["axes"]
            g["gamma"] = (self.S(dz * xhat) if c["m"] >= 2 else dz * xhat).sum(axis=axes)
            g["beta"] = dz.sum(axis=axes)
        out: dict[str, Array] = {}
        for pname in layer.params:
            if pname not in g:
                continue
            reg = self.spec.regularization.get(name)
            if self.penalised(reg, pname):
                data = self.write(f"grad.{name}.{pname}.data", g[pname])
                pen = reg.l2 * p[pname] + reg.l1 * np.sign(p[pname])
                if reg.l2 and reg.l1:
                    pen = self.S(reg.l2 * p[pname]) + reg.l1 * np.sign(p[pname])
                pen = self.write(f"grad.{name}.{pname}.penalty", pen)
                out[pname] = self.write(f"grad.{name}.{pname}", data + pen)
            else:
                out[pname] = self.write(f"grad.{name}.{pname}", g[pname])
        if self.slip is not None and self.slip.kind == "updated_weights_in_backprop":
            through = {
                k: (v if k in layer.freeze else v - self.spec.optimizer.lr * out[k])
                for k, v in p.items()
                if k in out
            }
            through = {**p, **through}
        if layer.type == "dense":
            w_oi = self.w_oi(through["weights"], layer)
            if self.slip_here("dense_transposed", layer):
                w_oi = w_oi.T
            dx = self.S(w_oi[None] * dz[:, :, None]).sum(axis=1)
        elif layer.type == "conv2d":
            dx = self.conv_dx(layer, c, dz, through)
        elif layer.type == "layernorm":
            dx = self.ln_dx(c, dz, through)
        else:
            dx = self.bn_dx(layer, c, dz, through, out)
        return dx, out

    def conv_grads(self, layer: Any, c: dict[str, Any], dz: Array) -> tuple[Array, Array]:
        x = c["x"]
        k = self.params[layer.name]["kernel"]
        o, ch, kh, kw = k.shape
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        n = x.shape[0]
        _, ho, wo = layer.out_shape
        terms = []
        for i in range(ho):
            for j in range(wo):
                window = xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]  # (N, C, kh, kw)
                terms.append(dz[:, :, i, j][:, :, None, None, None] * window[:, None])
        products = np.stack(terms)  # (HW, N, O, C, kh, kw)
        if ho * wo * n >= 2:
            products = self.S(products)
        dk = products.sum(axis=(0, 1))  # in the orientation the forward pass used
        flipped = layer.flip
        if self.slip_here("conv_flip", layer):
            flipped = not flipped
        if flipped:
            dk = dk[:, :, ::-1, ::-1]
        if self.slip_here("conv_flip_kernel_grad", layer):
            dk = dk[:, :, ::-1, ::-1]
        return dk, dz.sum(axis=(0, 2, 3))

    def conv_dx(self, layer: Any, c: dict[str, Any], dz: Array, p: dict[str, Array]) -> Array:
        x = c["x"]
        k = self.conv_kernel(p["kernel"], layer, backward=True)
        o, ch, kh, kw = k.shape
        (sh, sw), (ph, pw) = layer.stride, layer.padding
        _, ho, wo = layer.out_shape
        h, w = x.shape[2:]
        contributions: dict[tuple[int, int, int], list[Array]] = {}
        for i in range(ho):
            for j in range(wo):
                for a in range(kh):
                    for b in range(kw):
                        r, s = i * sh + a - ph, j * sw + b - pw
                        if 0 <= r < h and 0 <= s < w:
                            for cc in range(ch):
                                prods = k[:, cc, a, b][None, :] * dz[:, :, i, j]  # (N, O)
                                contributions.setdefault((cc, r, s), []).append(prods)
        dx = np.zeros_like(x)
        for (cc, r, s), parts in contributions.items():
            allp = np.concatenate(parts, axis=1)  # (N, terms)
            if (allp != 0).sum(axis=1).max(initial=0) >= 2:
                allp = self.S(allp)
            dx[:, cc, r, s] = allp.sum(axis=1)
        return dx

    def bn_dx(
        self, layer: Any, c: dict[str, Any], dz: Array, p: dict[str, Array], g: dict[str, Array]
    ) -> Array:
        b, m, xhat, r = c["b"], c["m"], c["xhat"], c["r"]
        axes = c["axes"]
        big_p = self.S(b(p["gamma"]) / (m * b(r)))
        q = m * dz - b(dz.sum(axis=axes)) - self.S(xhat * b(g["gamma"]))
        return big_p * q

    def ln_dx(self, c: dict[str, Any], dz: Array, p: dict[str, Array]) -> Array:
        over, d, xhat, r = c["over"], c["d"], c["xhat"], c["r"]
        ghat = self.S(p["gamma"] * dz)
        big_s = self.S(ghat * xhat).sum(axis=over, keepdims=True)
        denom = d - 1 if c["unbiased"] else d
        return (ghat - ghat.sum(axis=over, keepdims=True) / d - self.S(xhat * big_s) / denom) / r

    def pool_backward(self, layer: Any, c: dict[str, Any], dz: Array) -> Array:
        x = c["x"]
        (kh, kw), (sh, sw) = layer.size, layer.stride
        dx = np.zeros_like(x)
        _, ho, wo = layer.out_shape
        for i in range(ho):
            for j in range(wo):
                win = x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                if layer.kind == "max":
                    flat = win.reshape(win.shape[0], win.shape[1], -1)
                    idx = flat.argmax(axis=2)  # the first maximum, row-major
                    for nn in range(x.shape[0]):
                        for cc in range(x.shape[1]):
                            a, b = divmod(int(idx[nn, cc]), kw)
                            dx[nn, cc, i * sh + a, j * sw + b] += dz[nn, cc, i, j]
                else:
                    dx[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += dz[:, :, i, j][
                        :, :, None, None
                    ] / (kh * kw)
        return dx

    # -- the update -------------------------------------------------------------------------
    def update(self, grads: dict, caches: list[dict[str, Any]]) -> dict[str, dict[str, Array]]:
        spec = self.spec
        opt = spec.optimizer
        new: dict[str, dict[str, Array]] = {}
        by_name: dict[str, dict[str, Any]] = {}

        def collect(cs: list[dict[str, Any]]) -> None:
            for c in cs:
                by_name[c["layer"].name] = c
                collect(c.get("inner", []))

        collect(caches)
        for layer in spec.all_layers:
            name = layer.name
            c = by_name[name]
            if name not in grads:
                continue
            new[name] = {}
            for pname in ("weights", "kernel", "gamma", "bias", "beta"):
                if pname not in grads[name]:
                    continue
                theta, g = self.params[name][pname], grads[name][pname]
                if pname in layer.freeze:
                    value = theta
                else:
                    value = self.optimizer_step(opt, name, pname, theta, g)
                new[name][pname] = self.write(f"new.{name}.{pname}", value)
            if layer.type == "batchnorm":
                k = layer.momentum
                m = c["m"]
                rm, rv = self.params[name]["running_mean"], self.params[name]["running_var"]
                mean = self.S((1 - k) * rm) + self.S(k * c["mu"])
                unbiased = self.S(c["var"] * m / (m - 1)) if m > 1 else c["var"]
                var = self.S((1 - k) * rv) + self.S(k * unbiased)
                new[name]["running_mean"] = self.write(f"new.{name}.running_mean", mean)
                new[name]["running_var"] = self.write(f"new.{name}.running_var", var)
        # keep the parameter order of the network (weights then bias)
        return {
            name: {k: new[name][k] for k in self.params[name] if k in new[name]} for name in new
        }

    def optimizer_step(self, opt: Any, name: str, pname: str, theta: Array, g: Array) -> Array:
        lr = opt.lr
        slip = self.slip.kind if self.slip is not None else ""
        state = self.opt.setdefault((name, pname), {})
        key = f"state.{name}.{pname}"
        t = self.k
        if opt.type == "sgd":
            if slip == "update_plus":
                return theta + self.S(lr * g)
            if slip == "update_no_lr":
                return theta - g
            if slip == "update_lr_twice":
                return theta - self.S(lr * lr * g)
            return theta - self.S(lr * g)
        if opt.type in ("momentum", "nesterov"):
            mu = opt.momentum
            damp = opt.dampening if opt.type == "momentum" else 0.0
            textbook = slip == "velocity_textbook"
            if textbook:  # v ← μ·v − η·g, θ ← θ + v
                step = self.S(lr * g)
                v = -step if "velocity" not in state else self.S(mu * state["velocity"]) - step
                v = self.write(f"{key}.velocity", v)
                state["velocity"] = v
                if opt.type == "momentum":
                    return theta + v
                return theta - self.S(lr * g) + self.S(mu * v)
            if "velocity" not in state:
                v = g
            else:
                v = self.S(mu * state["velocity"]) + (self.S((1 - damp) * g) if damp else g)
            v = self.write(f"{key}.velocity", v)
            state["velocity"] = v
            if opt.type == "momentum":
                return theta - self.S(lr * v)
            return theta - self.S(lr * (g + self.S(mu * v)))
        if opt.type == "rmsprop":
            alpha, eps = opt.alpha, opt.eps
            prev = state.get("v", np.zeros_like(theta))
            v = self.averaged(alpha, prev, g)
            v = self.write(f"{key}.v", v)
            state["v"] = v
            return theta - self.divided(lr, g, v, eps, slip == "eps_inside_sqrt")
        if opt.type == "adam":
            b1, b2, eps = opt.beta1, opt.beta2, opt.eps
            m_prev = state.get("m", np.zeros_like(theta))
            v_prev = state.get("v", np.zeros_like(theta))
            m = np.where(m_prev != 0, self.S(b1 * m_prev) + self.S((1 - b1) * g), (1 - b1) * g)
            m = self.write(f"{key}.m", m)
            v = self.write(f"{key}.v", self.averaged(b2, v_prev, g))
            state["m"], state["v"] = m, v
            corr1 = 1.0 if slip == "adam_no_bias_correction" else 1 - b1**t
            corr2 = 1.0 if slip == "adam_no_bias_correction" else 1 - b2**t
            m_hat = self.write(f"{key}.m_hat", m / corr1)
            v_hat = self.write(f"{key}.v_hat", v / corr2)
            return theta - self.divided(lr, m_hat, v_hat, eps, slip == "eps_inside_sqrt")
        raise NotImplementedError(opt.type)

    def averaged(self, decay: float, prev: Array, g: Array) -> Array:
        g2 = self.S(g * g)
        later = self.S(decay * prev) + self.S((1 - decay) * g2)
        return np.where(prev != 0, later, (1 - decay) * g2)

    def divided(self, lr: float, num: Array, v: Array, eps: float, inside: bool) -> Array:
        r = self.S(np.sqrt(v + eps) if inside else np.sqrt(v))
        q = self.S(num / (r if inside else r + eps))
        return self.S(lr * q)

    # -- slips ------------------------------------------------------------------------------
    def slip_here(self, kind: str, layer: Any) -> bool:
        s = self.slip
        return s is not None and s.kind == kind and (not s.layer or s.layer == layer.name)


# -- writing a sheet ------------------------------------------------------------------------


def number(v: float, decimals: int | None, sigfigs: int | None) -> str:
    if decimals is None and sigfigs is None:
        return repr(float(v))
    if sigfigs is not None:
        mag = abs(v)
        e = math.floor(math.log10(mag)) if mag > 0 else 0
        d = max(0, sigfigs - 1 - e)
    else:
        d = decimals or 0
    return f"{v:.{d}f}"


def nested(v: Array, fmt: Any) -> str:
    if v.ndim == 0:
        return fmt(float(v))
    return "[" + ", ".join(nested(x, fmt) for x in v) + "]"


def sheet_text(student: Student, copied: set[str], header: str = "") -> str:
    """The sheet as YAML, each number with the decimals the student wrote (copied values as
    the network gives them)."""
    lines = [header] if header else []
    steps: dict[int, list[str]] = {}
    for (k, name), value in student.sheet.items():
        exact = name in copied and (k == 1 or name in ("input", "target"))
        if exact:
            fmt = lambda v: number(v, None, None)  # noqa: E731
        else:
            fmt = lambda v: number(v, student.decimals, student.sigfigs)  # noqa: E731
        steps.setdefault(k, []).append(f"{name}: {nested(np.asarray(value), fmt)}")
    for k, rows in sorted(steps.items()):
        if k == 1:
            lines += rows
        else:
            lines.append(f"step {k}:")
            lines += ["  " + r for r in rows]
    return "\n".join(lines) + "\n"
