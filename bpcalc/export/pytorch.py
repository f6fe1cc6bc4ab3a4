"""The network as a standalone PyTorch script (`bpcalc export NET --to pytorch`).

The script is two parts: the fixed runner in pytorch_template.py (recording a step under
bpcalc's value names, the JSON document, the training loop, DistributedDataParallel), and the
network's own section written here: its settings and conventions, its data, an nn.Module whose
attributes are the layer names, the loss, the optimizer, and the file's exact numbers.

What the script must match (the tests run it against `bpcalc step --json`):
- parameters in PyTorch's layouts (nn.Linear: out x in; nn.Conv2d: out x in x kh x kw),
  converted once from `layout: in_out` and `flip: true`, and shown back in the file's layout;
- the loss from the logits where bpcalc does (softmax + cross_entropy, sigmoid + binary
  cross-entropy), so forward() returns the logits for those networks;
- regularization as torch.optim's weight_decay where it is the same rule (an L2 term: λ₂ is
  weight_decay), as explicit gradient terms otherwise (L1);
- dropout masks from numpy's default_rng(seed) or the file, batchnorm's running statistics
  as the file gives them.
Whatever cannot be written so is refused with one SpecError at the line of the feature.
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from bpcalc import __version__
from bpcalc.errors import Location, SpecError
from bpcalc.export import (
    ActivationLayerSpec,
    ActivationSpec,
    BatchNormSpec,
    Conv2dSpec,
    DenseSpec,
    DropoutSpec,
    FlattenSpec,
    InitSpec,
    LayerSpec,
    NetworkSpec,
    PoolSpec,
    Src,
    data_format,
    data_path,
    parse_init,
)

TEMPLATE = Path(__file__).with_name("pytorch_template.py")

# nn.Module's own attributes (torch 2.x) and the script's: a layer with one of these names
# gets another attribute name (a comment says which), since `self.train = ...` would break it
TAKEN = {
    *"""T_destination add_module apply bfloat16 buffers call_super_init children compile cpu
    cuda double dump_patches eval extra_repr float forward get_buffer get_extra_state
    get_parameter get_submodule half ipu load_state_dict modules mtia named_buffers
    named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook
    register_load_state_dict_pre_hook register_module register_parameter
    register_state_dict_post_hook register_state_dict_pre_hook requires_grad_ set_extra_state
    set_submodule share_memory state_dict to to_empty train type xpu zero_grad training
    see see_batchnorm seen file_parameters file_buffers load_file_values""".split()
}


def export_pytorch(spec: NetworkSpec, *, script: str | None = None, source: str = "") -> str:
    """The script's text. script: where it will be written (data paths are written relative
    to its folder; None: standard output, paths relative to the current folder). source: the
    network file as the user named it, for the script's header."""
    _refuse(spec)
    base = Path(script).resolve().parent if script else Path.cwd()
    gen = _Generator(spec, base, source or spec.file, Path(script).name if script else "net.py")
    return gen.script()


# --- what PyTorch cannot do as bpcalc does -----------------------------------------------------


def _refuse(spec: NetworkSpec) -> None:
    """One SpecError, at the feature's line, for what the script could not reproduce."""
    known = (
        DenseSpec,
        Conv2dSpec,
        PoolSpec,
        FlattenSpec,
        ActivationLayerSpec,
        DropoutSpec,
        BatchNormSpec,
    )
    for layer in spec.layers:
        if not isinstance(layer, known):
            raise SpecError(
                f"bpcalc export --to pytorch cannot write {layer.type} layers yet "
                f"(layer {_py(layer.name)}); the other commands take it",
                layer.where,
            )
        if len(layer.in_shape) == 2 or layer.sequence_out:
            raise SpecError(
                f"bpcalc export --to pytorch cannot write layers over a sequence yet (layer "
                f"{_py(layer.name)} reads or gives T positions, shape "
                f"{' x '.join(map(str, layer.in_shape))}); the other commands take it",
                layer.where,
            )
    opt = spec.optimizer
    if opt.type in ("momentum", "nesterov") and opt.momentum == 0:
        raise SpecError(
            f"the {opt.type} optimizer with momentum 0 has no torch.optim equivalent "
            "(torch.optim.SGD keeps no velocity without momentum, and ignores dampening): "
            "write optimizer: {type: sgd, lr: …} for plain gradient descent, or export with a "
            "momentum above 0",
            _key(spec, ("optimizer", "momentum")),
        )
    for layer in spec.layers:
        if isinstance(layer, BatchNormSpec) and len(layer.in_shape) == 3:
            c, h, w = layer.in_shape
            smallest = _smallest_batch(spec)
            if h * w * smallest < 2:
                raise SpecError(
                    f"batchnorm layer {_py(layer.name)} normalizes each channel over N·H·W = "
                    f"{smallest}·{h}·{w} = 1 value in some step: bpcalc takes its variance as 0, "
                    "nn.BatchNorm2d refuses to train on one value per channel; use batches of "
                    "at least 2 samples to export it",
                    layer.where,
                )


def _smallest_batch(spec: NetworkSpec) -> int:
    b, n = spec.batching, spec.inputs.shape[0]
    size = n if b.mode == "batch" else 1 if b.mode == "sgd" else int(b.batch_size or n)
    return n % size or size


def _key(spec: NetworkSpec, path: tuple[str, ...]) -> Location:
    if spec.doc is not None:
        for p in (path, path[:-1]):
            if p in spec.doc.key_locations:
                return spec.doc.key_locations[p]
    return Location(spec.file, 1, 1)


# --- numbers as Python literals ----------------------------------------------------------------


def literal(a: Any, indent: int = 4, width: int = 96) -> str:
    """A nested list of exact float literals (repr reads back to the same float64)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return repr(float(arr))
    if arr.ndim == 1:
        items = [repr(float(v)) for v in arr]
        one = "[" + ", ".join(items) + "]"
        if len(one) + indent <= width:
            return one
        lines, line = [], ""
        for item in items:
            if line and len(line) + len(item) + 2 + indent + 1 > width:
                lines.append(line.rstrip())
                line = ""
            line += item + ", "
        lines.append(line.rstrip())
        pad = " " * (indent + 1)
        return "[" + ("\n" + pad).join(lines).rstrip(",") + "]"
    pad = " " * (indent + 1)
    inner = [literal(sub, indent + 1, width) for sub in arr]
    one = "[" + ", ".join(inner) + "]"
    if "\n" not in one and len(one) + indent <= width:
        return one
    return "[" + (",\n" + pad).join(inner) + "]"


def _py(value: Any) -> str:
    """A Python literal, written as in the rest of the script: strings in double quotes."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_py(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, (bool, np.bool_)) or value is None:
        return repr(bool(value) if value is not None else None)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


def _set(items: list[str]) -> str:
    """A set literal in a fixed order (a set's repr changes from run to run)."""
    return "{" + ", ".join(_py(i) for i in sorted(items)) + "}"


def _shape(t: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(i) for i in t) + ("," if len(t) == 1 else "") + ")"


def _x(t: tuple[int, ...]) -> str:
    return " x ".join(str(i) for i in t) if t else "a number"


def _shown_out(layer: LayerSpec) -> tuple[int, ...]:
    return layer.out_shape[1:] if layer.squeezed_out else layer.out_shape


def _shown_in(layer: LayerSpec) -> tuple[int, ...]:
    return layer.in_shape[1:] if layer.squeezed_in else layer.in_shape


def _pair(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]} x {p[1]}"


# --- the generator -----------------------------------------------------------------------------


class _Generator:
    def __init__(self, spec: NetworkSpec, base: Path, source: str, script_name: str) -> None:
        self.spec = spec
        self.base = base
        self.source = source
        self.script_name = script_name
        self.attrs = self._attributes()
        self.values: list[str] = []  # FILE_VALUES entries
        self.files: list[str] = []  # data files the script reads

    # names -----------------------------------------------------------------------------------

    def _attributes(self) -> dict[str, str]:
        """Each layer's attribute on the module: its name, unless nn.Module has it already."""
        names = {layer.name for layer in self.spec.layers}
        out = {}
        for layer in self.spec.layers:
            attr = layer.name
            if attr in TAKEN or keyword.iskeyword(attr) or attr.startswith("_"):
                attr = f"{attr.lstrip('_')}_layer"
                while attr in names or attr in TAKEN:
                    attr += "_"
            names.add(attr)
            out[layer.name] = attr
        return out

    def attr(self, layer: LayerSpec) -> str:
        return f"self.{self.attrs[layer.name]}"

    def line(self, layer: LayerSpec) -> str:
        return f"{Path(layer.where.file).name}:{layer.where.line}"

    # the whole script ------------------------------------------------------------------------

    def script(self) -> str:
        spec = self.spec
        network = "\n\n\n".join(
            [
                self.settings(),
                self.data(),
                self.layers_table(),
                self.module(),
                self.loss(),
                self.optimizer(),
                self.file_values(),
            ]
        )
        template = TEMPLATE.read_text(encoding="utf-8")
        # the template's own comment (what it is for bpcalc) and its noqa line are not the script's
        template = template[template.index("from __future__") :]
        keep = {
            "batchnorm": any(isinstance(layer, BatchNormSpec) for layer in spec.layers),
            "dropout": any(isinstance(layer, DropoutSpec) for layer in spec.layers),
            "files": bool(self.files),
        }
        for name, wanted in keep.items():
            pattern = re.compile(
                rf"^ *# {{{{if {name}}}}}\n(.*?)^ *# {{{{end {name}}}}}\n", re.S | re.M
            )
            template = pattern.sub(lambda m, keep=wanted: m.group(1) if keep else "", template)
        marker = "# {{network}}\n"
        head, tail = template.split(marker)
        banner = ("# --- the network: " + Path(self.source).name + " " + "-" * 96)[:96]
        text = self.header() + head.rstrip("\n") + "\n\n\n" + banner + "\n\n"
        text += network + "\n\n\n" + tail.lstrip("\n")
        return re.sub(r"\n{4,}", "\n\n\n", text)  # where an optional block was left out

    def header(self) -> str:
        spec, src, me = self.spec, self.source, self.script_name
        conv = "\n".join(f"  {k}: {v}" for k, v in self.conventions().items())
        files = (
            "It reads the data files the network names ("
            + ", ".join(sorted(set(self.files)))
            + "), relative to this script's folder (or --data-dir)."
            if self.files
            else "The network's numbers and data are all in this file."
        )
        rounding = 'walk(if type == "number" then . * 1e9 | round / 1e9 else . end)'
        return f'''#!/usr/bin/env python3
"""{spec.name}: the bpcalc network {src} in PyTorch.

Written by `bpcalc export {src} --to pytorch` (bpcalc {__version__}). It needs PyTorch and
NumPy, not bpcalc. {files}

  python {me} --json                  one step, printed as `bpcalc step {src} --json` prints it
  python {me} --json --steps 3        three steps (--mode batch|sgd|minibatch, --batch-size B too)
  python {me} --train --json          train as `bpcalc train {src} --json` (the train: section)
  python {me} --train --device cuda   on a GPU (the default when there is one); --dtype float64

Several GPUs or machines: torchrun starts one process per GPU (or CPU process), each trains on
its share of every batch, and DistributedDataParallel averages the gradients (NCCL on GPUs,
gloo on CPUs). The global batch stays the file's batch_size:

  torchrun --standalone --nproc-per-node 2 {me} --train --json
  torchrun --nnodes 2 --node-rank 0 --master-addr HOST --master-port 29500 \\
      --nproc-per-node 4 {me} --train --json        (and --node-rank 1 on the second machine)

The step is computed in float64, so its numbers equal bpcalc's up to rounding (about 1e-15
relative; the tests allow 1e-10). To compare, round both with jq and diff:

  diff <(bpcalc step {src} --json | jq -S '{rounding}') \\
       <(python {me} --json | jq -S '{rounding}')

bpcalc's conventions for this network, which the code below follows:
{conv}
"""

'''

    def conventions(self) -> dict[str, str]:
        from bpcalc import notation
        from bpcalc import optim as optim_mod

        rule = optim_mod.build(self.spec.optimizer).rule
        return notation.conventions(self.spec, rule, "float64")

    # settings --------------------------------------------------------------------------------

    def settings(self) -> str:
        spec = self.spec
        b = spec.batching
        section = spec.train
        step_batch = (
            b.batch_size if b.mode == "minibatch" else 1 if b.mode == "sgd" else None
        )  # what bpcalc train takes from the top level (train_cmd._step_batch)
        train_batch = getattr(section, "batch_size", None) or step_batch or 32
        shuffle = getattr(section, "shuffle", None)
        seed = getattr(section, "seed", None)
        train = {
            "epochs": getattr(section, "epochs", None),
            "batch_size": train_batch,
            "shuffle": True if shuffle is None else shuffle,
            "seed": seed if seed is not None else (b.seed or 0),
        }
        frozen = sorted(
            f"{layer.name}.{p}" for layer in spec.layers for p in getattr(layer, "freeze", ())
        )
        regs = self.regularization()
        shown_in = _shown_in(spec.layers[0])
        from bpcalc.training import accuracy_kind

        lines = [
            f"NETWORK = {_py(spec.name)}",
            f"BPCALC = {_py(__version__)}  # the version that wrote this script",
            "# bpcalc's conventions block for this network, word for word (the JSON's conventions)",
            "CONVENTIONS = {",
            *(f"    {_py(k)}: {_py(v)}," for k, v in self.conventions().items()),
            "}",
            "# inputs: (a list of samples) gives every value a batch axis; input: (one) does not",
            f"BATCHED = {_py(spec.batched)}",
            "# which samples each step uses (bpcalc step; --mode and --batch-size override them)",
            f"MODE, BATCH_SIZE, SHUFFLE, SEED = {_py(b.mode)}, {_py(b.batch_size)}, {_py(b.shuffle)}, {_py(b.seed)}",
            f"SHOWN_INPUT = {_shape(shown_in)}  # one sample's input as the file writes it",
            f"LOSS, REDUCTION = {_py(spec.loss.kind)}, {_py(spec.loss.reduction)}",
            f"FUSED = {_py(self.fused())}  # forward() returns the logits; the loss applies the output's "
            f"{spec.output_activation if self.fused() else 'activation'}",
            f"ACCURACY = {_py(accuracy_kind(spec))}  # how bpcalc train counts a sample as right",
            "# bpcalc train's settings: the train: section, then the top-level batch_size:/seed:",
            f"TRAIN = {_py(train)}",
            f"FROZEN = {_set(frozen)}  # freeze: not updated (requires_grad False)"
            if frozen
            else "FROZEN: set[str] = set()  # no freeze:",
            "# regularization: parameter -> (λ₂, λ₁); L = L_data + (λ₂/2)·Σθ² + λ₁·Σ|θ|",
            "REGULARIZATION = {"
            + ", ".join(f"{_py(k)}: ({_py(l2)}, {_py(l1)})" for k, (l2, l1) in regs.items())
            + "}",
            "# those with an L1 term: torch.optim has no rule for it, add_penalty_grads adds it",
            f"EXPLICIT_PENALTY = {_set([k for k, (_, l1) in regs.items() if l1])}"
            if any(l1 for _, l1 in regs.values())
            else "EXPLICIT_PENALTY: set[str] = set()",
        ]
        return "\n".join(lines)

    def fused(self) -> bool:
        fused = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
        return fused.get(self.spec.loss.kind) == self.spec.output_activation

    def regularization(self) -> dict[str, tuple[float, float]]:
        out = {}
        for layer in self.spec.layers:
            reg = self.spec.regularization.get(layer.name)
            if reg is None or not reg.active:
                continue
            for p in getattr(layer, "params", {}):
                if p in ("weights", "kernel") or (reg.include_bias and p == "bias"):
                    out[f"{layer.name}.{p}"] = (float(reg.l2), float(reg.l1))
        return out

    # data ------------------------------------------------------------------------------------

    def data(self) -> str:
        spec = self.spec
        root = spec.doc.root() if spec.doc is not None else None
        first, last = spec.layers[0], spec.layers[-1]
        x_shape, y_shape = first.in_shape, last.out_shape
        key_in = "inputs" if spec.batched else "input"
        key_out = "targets" if spec.batched else "target"
        train_x = self.read(
            root, (key_in,), spec.inputs, "INPUTS", x_shape, single=not spec.batched
        )
        train_y = self.read_targets(
            root,
            (key_out,),
            spec.targets,
            spec.target_classes,
            "TARGETS",
            y_shape,
            not spec.batched,
        )
        test = getattr(spec.train, "test", None)
        where = "x (N, " + ", ".join(map(str, x_shape)) + "), y (N, " + ", ".join(map(str, y_shape))
        out = f'''def training_data(data_dir: Path = HERE) -> tuple[np.ndarray, np.ndarray]:
    """The samples as bpcalc reads them: float64, the batch axis first, images channels first:
    {where})."""
    x = {train_x}
    y = {train_y}
    return x.reshape(-1, {", ".join(map(str, x_shape))}), y.reshape(-1, {", ".join(map(str, y_shape))})
'''
        if test is None:
            out += '''

def test_data(data_dir: Path = HERE) -> tuple[np.ndarray, np.ndarray] | None:
    """The train: section's test: data (none here)."""
    return None
'''
        else:
            tx = self.read(root, ("train", "test", "inputs"), test.inputs, "TEST_INPUTS", x_shape)
            ty = self.read_targets(
                root,
                ("train", "test", "targets"),
                test.targets,
                test.classes,
                "TEST_TARGETS",
                y_shape,
                False,
            )
            out += f'''

def test_data(data_dir: Path = HERE) -> tuple[np.ndarray, np.ndarray] | None:
    """The train: section's test: data, read as the training data."""
    x = {tx}
    y = {ty}
    return x.reshape(-1, {", ".join(map(str, x_shape))}), y.reshape(-1, {", ".join(map(str, y_shape))})
'''
        return out.rstrip("\n")

    def _src(self, root: Any, path: tuple[str, ...]) -> Src | None:
        if root is None:
            return None
        src = root
        value = root.value
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            src = src.child(key)
            value = value[key]
        return src

    def read(
        self,
        root: Any,
        path: tuple[str, ...],
        values: np.ndarray,
        name: str,
        shape: tuple[int, ...],
        single: bool = False,
    ) -> str:
        """The expression that reads one data value: a file reference, or the file's numbers."""
        src = self._src(root, path)
        if src is not None and isinstance(src.value, dict) and "file" in src.value:
            return f"load_reference({self.reference(src, single)}, data_dir)"
        self.values.append(f"    {_py(name)}: {literal(values, 4)},")
        return f"np.array(FILE_VALUES[{_py(name)}])"

    def read_targets(
        self,
        root: Any,
        path: tuple[str, ...],
        values: np.ndarray,
        classes: np.ndarray | None,
        name: str,
        shape: tuple[int, ...],
        single: bool,
    ) -> str:
        src = self._src(root, path)
        if src is not None and isinstance(src.value, dict) and "file" in src.value:
            ref = self.reference(src, single)
            if classes is not None and "one_hot" not in src.value:
                k = math.prod(shape)
                return f"class_indices(load_reference({ref}, data_dir), {k})  # class indices 0..{k - 1}"
            return f"load_reference({ref}, data_dir)"
        self.values.append(f"    {_py(name)}: {literal(values, 4)},")
        note = "  # one-hot of the class indices" if classes is not None else ""
        return f"np.array(FILE_VALUES[{_py(name)}]){note}"

    def reference(self, src: Src, single: bool) -> str:
        """A file reference as the script's load_reference takes it: the path relative to the
        script's folder, the format spelled out, the options in bpcalc's terms."""
        v = src.value
        path = data_path(src)
        if not path.exists():  # bpcalc takes foo.gz for foo and the other way round
            other = path.with_name(
                path.name[:-3] if path.name.endswith(".gz") else path.name + ".gz"
            )
            path = other if other.exists() else path
        fmt = v.get("format") or data_format(path)
        rel = os.path.relpath(path.resolve(), self.base)
        self.files.append(rel)
        parts = [f'"file": {_py(rel)}', f'"format": {_py(fmt)}']
        if "key" in v:
            parts.append(f'"key": {_py(v["key"])}')
        if single:
            parts.append('"single": True')
        if "columns" in v:
            cols = v["columns"]
            if isinstance(cols, str):
                a, b = cols.split(":")
                cols_text = f"slice({int(a) if a.strip() else 0}, {int(b) if b.strip() else None})"
            else:
                cols_text = _py(cols)
            parts.append(f'"columns": {cols_text}')
        for key in ("limit", "one_hot"):
            if key in v:
                parts.append(f'"{key}": {_py(int(v[key]))}')
        if "scale" in v:
            parts.append(f'"scale": {_py(float(v["scale"]))}')
        if "normalize" in v:
            n = v["normalize"]
            parts.append(
                f'"normalize": {{"mean": {_py(float(n["mean"]))}, "std": {_py(float(n["std"]))}}}'
            )
        if "flatten" in v:
            parts.append(f'"flatten": {_py(bool(v["flatten"]))}')
        if "shape" in v:
            parts.append(f'"shape": {_py([int(s) for s in v["shape"]])}')
        return "{" + ", ".join(parts) + "}"

    # the layers ------------------------------------------------------------------------------

    def layers_table(self) -> str:
        rows = []
        for layer in self.spec.layers:
            args = [_py(layer.name)]
            if isinstance(layer, DenseSpec):
                args.append('params=("weights", "bias")')
            elif isinstance(layer, Conv2dSpec):
                args.append('params=("kernel", "bias")')
            elif isinstance(layer, BatchNormSpec):
                args += [
                    'params=("gamma", "beta")',
                    'buffers=("running_mean", "running_var")',
                    'extras=(("mean", False), ("var", False), ("xhat", True))',
                ]
            elif isinstance(layer, DropoutSpec):
                args.append('extras=(("mask", True),)')
            if isinstance(layer, (DenseSpec, Conv2dSpec, BatchNormSpec)):
                args.append("has_z=True")
            args.append(f"shown_in={_shape(_shown_in(layer))}")
            args.append(f"shown_out={_shape(_shown_out(layer))}")
            rows.append(f"    Layer({', '.join(args)}),")
        return (
            "# Each layer as bpcalc names its values, in the file's order\nLAYERS = [\n"
            + "\n".join(rows)
            + "\n]"
        )

    def module(self) -> str:
        spec = self.spec
        init, load, forward, params, buffers = [], [], [], [], []
        last = len(spec.layers) - 1
        for i, layer in enumerate(spec.layers):
            a, n = self.attr(layer), layer.name
            where = f"{n} ({self.line(layer)})"
            if self.attrs[n] != n:
                where += f", as self.{self.attrs[n]}: nn.Module has a {_py(n)} of its own"
            if isinstance(layer, DenseSpec):
                self.dense(layer, where, init, load, params)
            elif isinstance(layer, Conv2dSpec):
                self.conv(layer, where, init, load, params)
            elif isinstance(layer, BatchNormSpec):
                self.batchnorm(layer, where, init, load, params, buffers)
            elif isinstance(layer, PoolSpec):
                cls = "nn.MaxPool2d" if layer.kind == "max" else "nn.AvgPool2d"
                init.append(
                    f"        # {where}: {layer.type}, window {_pair(layer.size)}, stride {_pair(layer.stride)}"
                )
                init.append(
                    f"        {a} = {cls}(kernel_size={_shape(layer.size)}, stride={_shape(layer.stride)})"
                )
            elif isinstance(layer, FlattenSpec):
                init.append(f"        # {where}: flatten, row-major (C, H, W) order as bpcalc")
                init.append(f"        {a} = nn.Flatten()")
            elif isinstance(layer, DropoutSpec):
                self.dropout(layer, where, init)
            elif isinstance(layer, ActivationLayerSpec):
                kind = layer.activation.kind
                module = layer.activation.unit().torch_layer()
                init.append(f"        # {where}: {kind}")
                init.append(f"        {a} = {module}")
            forward += self.forward_lines(layer, i == last)
        frozen = [
            f"        {self.param_ref(layer, p)}.requires_grad_(False)  # {layer.name}: freeze: {p}"
            for layer in spec.layers
            for p in sorted(getattr(layer, "freeze", ()))
        ]
        body = [
            "class Net(Recorded):",
            *self.wrapped(
                f'"""{spec.name}: the layers of {Path(self.source).name} as attributes, by '
                "their names."
            ),
            "",
            *self.wrapped(
                "forward(x) takes x (N, "
                + ", ".join(map(str, spec.layers[0].in_shape))
                + ")"
                + (
                    " and returns the logits z of the last layer: the loss applies the "
                    f"{spec.output_activation} (see loss_per_sample), and network_output(z) "
                    'gives the output a."""'
                    if self.fused()
                    else ' and returns the output a."""'
                )
            ),
            "",
            "    def __init__(self) -> None:",
            "        super().__init__()",
            *init,
            *(
                frozen
                and ["        # bpcalc shows their gradients but does not update them", *frozen]
            ),
            "        self.load_file_values()",
            "",
            "    @torch.no_grad()",
            "    def load_file_values(self) -> None:",
            '        """The exact numbers of the file (FILE_VALUES, at the end), in PyTorch\'s layouts."""',
            *(load or ["        pass  # no parameters"]),
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            *forward,
            "",
            "    def file_parameters(self) -> dict:",
            '        """Each parameter under its bpcalc name, with how to show it as the file writes it."""',
            "        return {",
            *params,
            "        }",
            "",
            "    def file_buffers(self) -> dict:",
            '        """The running statistics (carried from step to step, not trained)."""',
            "        return {",
            *buffers,
            "        }",
        ]
        return "\n".join(body)

    @staticmethod
    def wrapped(text: str, indent: str = "    ") -> list[str]:
        """A docstring paragraph as lines of at most 96 characters."""
        import textwrap

        return textwrap.wrap(text, 96, initial_indent=indent, subsequent_indent=indent)

    def param_ref(self, layer: LayerSpec, p: str) -> str:
        torch_name = {"weights": "weight", "kernel": "weight", "gamma": "weight", "beta": "bias"}
        return f"{self.attr(layer)}.{torch_name.get(p, p)}"

    def value(self, key: str, array: np.ndarray, note: str, expression: str | None = None) -> None:
        text = expression if expression is not None else literal(array, 4)
        comment = f"  # {note}" if note else ""
        if "\n" in text:
            self.values.append(f"    # {key}: {note}" if note else f"    # {key}")
            self.values.append(f"    {_py(key)}: {text},")
        else:
            self.values.append(f"    {_py(key)}: {text},{comment}")

    def drawn(
        self,
        layer: LayerSpec,
        shape: tuple[int, ...],
        fan_in: int,
        fan_out: int,
        actual: np.ndarray,
    ) -> tuple[str, str] | None:
        """(numpy expression, comment) that draws the layer's `init:` values as bpcalc does, or
        None when the values were written out (or the draw would not give the same numbers)."""
        spec = self.spec
        if spec.doc is None:
            return None
        index = spec.layers.index(layer)
        lsrc = spec.doc.root().child("layers").child(index)
        v = lsrc.value
        if not isinstance(v, dict) or not ({"units", "out_channels"} & set(v)):
            return None
        init: InitSpec = parse_init(lsrc)
        kind = init.type
        if kind in ("normal", "xavier_normal", "he"):
            std = {
                "normal": init.std if init.std is not None else 0.01,
                "xavier_normal": math.sqrt(2.0 / (fan_in + fan_out)),
                "he": math.sqrt(2.0 / fan_in),
            }[kind]
            how = {
                "normal": "N(0, std²)",
                "xavier_normal": "N(0, 2/(fan_in + fan_out))",
                "he": "N(0, 2/fan_in)",
            }[kind]
            expr = (
                f"np.random.default_rng({init.seed}).normal(0.0, {_py(std)}, size={_shape(shape)})"
            )
        else:
            lim = {
                "uniform": init.limit if init.limit is not None else 1.0 / math.sqrt(fan_in),
                "xavier": math.sqrt(6.0 / (fan_in + fan_out)),
                "he_uniform": math.sqrt(6.0 / fan_in),
            }[kind]
            how = {
                "uniform": "U(−a, a)",
                "xavier": "U(±√(6/(fan_in + fan_out)))",
                "he_uniform": "U(±√(6/fan_in))",
            }[kind]
            expr = f"np.random.default_rng({init.seed}).uniform(-{_py(lim)}, {_py(lim)}, size={_shape(shape)})"
        drawn = eval(expr, {"np": np})  # noqa: S307 - our own expression, checked below
        if drawn.shape != actual.shape or not np.array_equal(drawn, actual):
            return None
        return expr, f"init: {kind}, {how}, fan_in {fan_in}, drawn as bpcalc draws it"

    def dense(self, layer: DenseSpec, where: str, init: list, load: list, params: list) -> None:
        a = self.attr(layer)
        n_in, n_out = layer.in_shape[0], layer.out_shape[0]
        rows, cols = layer.weights.shape
        act = f"; {layer.activation.kind}" if layer.activation else ""
        init.append(f"        # {where}: dense {n_in} -> {n_out}{act}")
        init.append(f"        {a} = nn.Linear({n_in}, {n_out}, dtype=torch.float64)")
        if layer.bias_shared:
            init.append(
                f"        {a}.bias = nn.Parameter(torch.zeros(1, dtype=torch.float64))  "
                "# bias_shared: one bias for every neuron; it broadcasts, its gradient sums over them"
            )
        key = f"{layer.name}.weights"
        drawn = self.drawn(layer, layer.weights.shape, n_in, n_out, layer.weights)
        if drawn is not None:
            self.value(key, layer.weights, drawn[1], drawn[0])
        else:
            shown = "out x in" if layer.layout == "out_in" else "in x out"
            self.value(
                key,
                layer.weights.reshape(layer.weights_shown),
                f"{_x(layer.weights_shown)}, {shown}",
            )
        w = f"tensor(FILE_VALUES[{_py(key)}]).reshape({rows}, {cols})"
        if layer.layout == "in_out":
            load.append(
                f"        {a}.weight.copy_({w}.T)  # layout: in_out: the file's W is in x out "
                "(z = x·W + b), nn.Linear's is out x in"
            )
            params.append(
                f"            {_py(key)}: ({a}.weight, transposed({_shape(layer.weights_shown)})),"
            )
        else:
            load.append(f"        {a}.weight.copy_({w})  # out x in, as nn.Linear keeps it")
            params.append(
                f"            {_py(key)}: ({a}.weight, as_written({_shape(layer.weights_shown)})),"
            )
        bkey = f"{layer.name}.bias"
        self.value(
            bkey,
            layer.bias.reshape(layer.bias_shown),
            "shared by every neuron" if layer.bias_shared else "",
        )
        load.append(
            f"        {a}.bias.copy_(tensor(FILE_VALUES[{_py(bkey)}]).reshape({layer.bias.size}))"
        )
        params.append(
            f"            {_py(bkey)}: ({a}.bias, as_written({_shape(layer.bias_shown)})),"
        )

    def conv(self, layer: Conv2dSpec, where: str, init: list, load: list, params: list) -> None:
        a = self.attr(layer)
        o, c, kh, kw = layer.kernel.shape
        act = f"; {layer.activation.kind}" if layer.activation else ""
        kind = "convolution (flip: true)" if layer.flip else "cross-correlation"
        init.append(
            f"        # {where}: conv2d {c} -> {o} channels, kernel {kh} x {kw}, stride "
            f"{_pair(layer.stride)}, zero padding {_pair(layer.padding)}, {kind}{act}"
        )
        init.append(
            f"        {a} = nn.Conv2d({c}, {o}, kernel_size={_shape((kh, kw))}, stride="
            f"{_shape(layer.stride)}, padding={_shape(layer.padding)}, dtype=torch.float64)"
        )
        shown_k = (kh, kw) if layer.kernel_2d else layer.kernel.shape
        shown_b = () if layer.kernel_2d else layer.bias.shape
        key = f"{layer.name}.kernel"
        drawn = self.drawn(layer, layer.kernel.shape, c * kh * kw, o * kh * kw, layer.kernel)
        if drawn is not None:
            self.value(key, layer.kernel, drawn[1], drawn[0])
        else:
            what = (
                "kh x kw: one input and one output channel"
                if layer.kernel_2d
                else "out x in x kh x kw"
            )
            self.value(key, layer.kernel.reshape(shown_k), f"{_x(shown_k)}, {what}")
        k = f"tensor(FILE_VALUES[{_py(key)}]).reshape({o}, {c}, {kh}, {kw})"
        if layer.flip:
            load.append(
                f"        {a}.weight.copy_({k}.flip((2, 3)))  # flip: true: bpcalc rotates the "
                "kernel 180° (convolution); nn.Conv2d cross-correlates, so it gets the rotated kernel"
            )
            params.append(f"            {_py(key)}: ({a}.weight, flipped({_shape(shown_k)})),")
        else:
            load.append(
                f"        {a}.weight.copy_({k})  # out x in x kh x kw, as nn.Conv2d keeps it"
            )
            params.append(f"            {_py(key)}: ({a}.weight, as_written({_shape(shown_k)})),")
        bkey = f"{layer.name}.bias"
        self.value(bkey, layer.bias.reshape(shown_b), "")
        load.append(f"        {a}.bias.copy_(tensor(FILE_VALUES[{_py(bkey)}]).reshape({o}))")
        params.append(f"            {_py(bkey)}: ({a}.bias, as_written({_shape(shown_b)})),")

    def batchnorm(
        self, layer: BatchNormSpec, where: str, init: list, load: list, params: list, buffers: list
    ) -> None:
        a = self.attr(layer)
        f = layer.features
        cls = "nn.BatchNorm1d" if len(layer.in_shape) == 1 else "nn.BatchNorm2d"
        per = "feature" if len(layer.in_shape) == 1 else "channel"
        act = f"; {layer.activation.kind}" if layer.activation else ""
        init.append(
            f"        # {where}: batchnorm of {f} {per}s, ε = {layer.eps:g}, momentum {layer.momentum:g}"
            f" (PyTorch's meaning: running ← (1 − momentum)·running + momentum·batch){act}"
        )
        init.append(
            f"        {a} = {cls}({f}, eps={_py(layer.eps)}, momentum={_py(layer.momentum)}, dtype=torch.float64)"
        )
        for p, torch_name, what in (
            ("gamma", "weight", "γ"),
            ("beta", "bias", "β"),
            ("running_mean", "running_mean", "running mean"),
            ("running_var", "running_var", "running variance"),
        ):
            key = f"{layer.name}.{p}"
            self.value(key, layer.params[p], "")
            load.append(
                f"        {a}.{torch_name}.copy_(tensor(FILE_VALUES[{_py(key)}]))  # {what}"
            )
            target = params if p in ("gamma", "beta") else buffers
            target.append(f"            {_py(key)}: ({a}.{torch_name}, as_written(({f},))),")

    def dropout(self, layer: DropoutSpec, where: str, init: list) -> None:
        a = self.attr(layer)
        if layer.mask is not None:
            key = f"{layer.name}.mask"
            self.value(
                key, layer.mask, "1 = kept, 0 = dropped; one mask for all samples, or one each"
            )
            how, masks = "the file's mask", f", masks=FILE_VALUES[{_py(key)}]"
        else:
            how, masks = (
                f"masks from numpy's default_rng({layer.seed})",
                f", seed={_py(layer.seed)}",
            )
        init.append(f"        # {where}: inverted dropout, p = {layer.p:g}, {how}")
        init.append(f"        {a} = Dropout({_py(layer.p)}, {_shape(layer.in_shape)}{masks})")

    def forward_lines(self, layer: LayerSpec, last: bool) -> list[str]:
        a, n = self.attr(layer), layer.name
        fused_here = last and self.fused()
        out = []
        if isinstance(layer, (DenseSpec, Conv2dSpec, BatchNormSpec)):
            if isinstance(layer, BatchNormSpec):
                out.append(f"        self.see_batchnorm({_py(n)}, {a}, x)")
            out.append(f"        z = self.see({_py(n + '.z')}, {a}(x))")
            act = layer.activation
            if act is None:
                out.append(f"        x = self.see({_py(n + '.a')}, z)  # no activation: a = z")
            elif fused_here:
                out.append(
                    f"        self.see({_py(n + '.a')}, {self.activation(act, 'z', layer)})  "
                    "# p, for the record: the loss takes the logits z"
                )
                out.append("        return z")
                return out
            else:
                out.append(
                    f"        x = self.see({_py(n + '.a')}, {self.activation(act, 'z', layer)})"
                )
        elif isinstance(layer, DropoutSpec):
            out.append(f"        x = self.see({_py(n + '.a')}, {a}(x))")
            out.append(f"        self.see({_py(n + '.mask')}, {a}.last_mask)")
        elif isinstance(layer, ActivationLayerSpec) and fused_here:
            out.append(
                f"        self.see({_py(n + '.a')}, {a}(x))  # p, for the record: the loss takes the logits x"
            )
            out.append("        return x")
            return out
        else:
            out.append(f"        x = self.see({_py(n + '.a')}, {a}(x))")
        if last:
            out.append("        return x")
        return out

    def activation(self, act: ActivationSpec, v: str, layer: LayerSpec) -> str:
        if act.kind == "softmax" and len(layer.out_shape) != 1:
            return f"torch.softmax({v}.flatten(1), dim=1).view_as({v})  # over all of C, H, W"
        return act.unit().torch(v)

    # the loss --------------------------------------------------------------------------------

    def loss(self) -> str:
        spec = self.spec
        kind, reduction = spec.loss.kind, spec.loss.reduction
        last = spec.layers[-1]
        k = math.prod(last.out_shape)
        act = spec.output_activation
        if self.fused():
            head = f'''def network_output(out: torch.Tensor) -> torch.Tensor:
    """The network's output a from what forward returns: the {act} of the logits."""
    return {"torch.softmax(out.flatten(1), dim=1).view_as(out)" if act == "softmax" else "torch.sigmoid(out)"}
'''
        else:
            head = '''def network_output(out: torch.Tensor) -> torch.Tensor:
    """The network's output a: forward returns it as it is."""
    return out
'''
        body = {
            "mse": (
                "ℓ = (1/K) Σ (a − y)²: the mean over the K outputs",
                'F.mse_loss(out, y, reduction="none").flatten(1).mean(dim=1)',
            ),
            "half_mse": (
                "ℓ = ½ · (1/K) Σ (a − y)²: half the mean over the K outputs",
                '0.5 * F.mse_loss(out, y, reduction="none").flatten(1).mean(dim=1)',
            ),
            "sse": (
                "ℓ = Σ (a − y)²: the sum over the outputs, no ½",
                'F.mse_loss(out, y, reduction="none").flatten(1).sum(dim=1)',
            ),
            "half_sse": (
                "ℓ = ½ Σ (a − y)², so ∂ℓ/∂a = a − y",
                '0.5 * F.mse_loss(out, y, reduction="none").flatten(1).sum(dim=1)',
            ),
            "cross_entropy": (
                "ℓ = −Σ y·ln p over the classes (natural log), from the logits: F.cross_entropy "
                "applies log-softmax, the stable form bpcalc uses; y may be one-hot or any "
                "probabilities",
                'F.cross_entropy(out.flatten(1), y.flatten(1), reduction="none")',
            ),
            "binary_cross_entropy": (
                "ℓ = −(1/K) Σ [y·ln p + (1 − y)·ln(1 − p)]: the mean over the K outputs, from "
                "the logits (F.binary_cross_entropy_with_logits, the stable form bpcalc uses)",
                'F.binary_cross_entropy_with_logits(out, y, reduction="none").flatten(1).mean(dim=1)',
            ),
        }[kind]
        reduce = (
            (
                "L = (1/N) Σ ℓ: the mean over the batch (reduction: mean), so every gradient carries the 1/N",
                "per.mean()",
            )
            if reduction == "mean"
            else ("L = Σ ℓ: the sum over the batch (reduction: sum)", "per.sum()")
        )
        text = (
            head
            + f'''

def loss_per_sample(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """{kind}, per sample: {body[0]}."""
    return {body[1]}


def reduce(per: torch.Tensor) -> torch.Tensor:
    """{reduce[0]}."""
    return {reduce[1]}
'''
        )
        if self.fused():
            scale = " / p.shape[0]" if reduction == "mean" else ""
            if kind == "cross_entropy":
                grad = (
                    "∂L/∂p = −y/p"
                    + (" · 1/N" if reduction == "mean" else "")
                    + "; a p of 0 is clamped at EPS",
                    f"-y / p.clamp(min=EPS){scale}",
                )
            else:
                grad = (
                    f"∂L/∂p = (p − y)/(p(1 − p))/K, K = {k}"
                    + (" · 1/N" if reduction == "mean" else "")
                    + "; a p(1 − p) of 0 is clamped at EPS",
                    f"(p - y) / (p * (1 - p)).clamp(min=EPS) / {k}{scale}",
                )
            text += f'''

def output_grad(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """bpcalc shows ∂L/∂a of the output beside the fused ∂L/∂z; PyTorch never forms it (the loss
    takes the logits), so it is written out: {grad[0]}."""
    return {grad[1]}
'''
        return text.rstrip("\n")

    # the optimizer ---------------------------------------------------------------------------

    def optimizer(self) -> str:
        spec, opt = self.spec, self.spec.optimizer
        regs = self.regularization()
        decayed, plain = [], []
        for layer in spec.layers:
            for p in getattr(layer, "params", {}):
                if p in ("running_mean", "running_var") or p in getattr(layer, "freeze", ()):
                    continue
                key = f"{layer.name}.{p}"
                ref = "model." + self.param_ref(layer, p)[len("self.") :]
                l2, l1 = regs.get(key, (0.0, 0.0))
                if l2 and not l1:
                    decayed.append(
                        f'        {{"params": [{ref}], "weight_decay": {_py(l2)}}},  # {key}: λ₂ = weight_decay'
                    )
                else:
                    plain.append(ref)
        groups = [*decayed]
        if plain or not decayed:
            groups.append(f'        {{"params": [{", ".join(plain)}]}},')
        settings = {
            "sgd": ("torch.optim.SGD", ""),
            "momentum": (
                "torch.optim.SGD",
                f", momentum={_py(opt.momentum)}, dampening={_py(opt.dampening)}",
            ),
            "nesterov": ("torch.optim.SGD", f", momentum={_py(opt.momentum)}, nesterov=True"),
            "rmsprop": ("torch.optim.RMSprop", f", alpha={_py(opt.alpha)}, eps={_py(opt.eps)}"),
            "adam": (
                "torch.optim.Adam",
                f", betas=({_py(opt.beta1)}, {_py(opt.beta2)}), eps={_py(opt.eps)}",
            ),
        }[opt.type]
        state = {
            "sgd": "    return {}  # plain gradient descent keeps none",
            "momentum": '    return {"velocity": optimizer.state[p]["momentum_buffer"]}',
            "nesterov": '    return {"velocity": optimizer.state[p]["momentum_buffer"]}',
            "rmsprop": '    return {"v": optimizer.state[p]["square_avg"]}',
            "adam": f"""    state = optimizer.state[p]
    t = int(state["step"])
    m, v = state["exp_avg"], state["exp_avg_sq"]
    # bpcalc shows the bias-corrected m̂ and v̂; torch.optim.Adam folds them into its step size
    return {{"m": m, "v": v, "m_hat": m / (1 - {_py(opt.beta1)} ** t), "v_hat": v / (1 - {_py(opt.beta2)} ** t)}}""",
        }[opt.type]
        source = (
            "learning_rate"
            if opt.type == "sgd"
            and spec.doc is not None
            and ("learning_rate",) in spec.doc.key_locations
            else "optimizer"
        )
        return f'''def make_optimizer(model: Net, lr: float | None = None) -> torch.optim.Optimizer:
    """The file's {source}: {self.conventions()["update"]}.
    Frozen parameters are left out; an L2 penalty is torch.optim's weight_decay."""
    lr = {_py(opt.lr)} if lr is None else lr
    groups = [
{chr(10).join(groups)}
    ]
    return {settings[0]}(groups, lr=lr{settings[1]})


def optimizer_state(optimizer: torch.optim.Optimizer, p: torch.Tensor) -> dict:
    """state.<layer>.<param>.<slot> as bpcalc names it, from torch.optim's state of p."""
{state}


def penalty(model: Net) -> torch.Tensor | float:
    """The regularization penalty (λ₂/2)·Σθ² + λ₁·Σ|θ| (bpcalc's loss.penalty)."""
    params = model.file_parameters()
    total = 0.0
    for key, (l2, l1) in REGULARIZATION.items():
        t = params[key][0]
        total = total + 0.5 * l2 * (t * t).sum() + l1 * t.abs().sum()
    return total


@torch.no_grad()
def add_penalty_grads(model: Net) -> None:
    """∂penalty/∂θ = λ₂·θ + λ₁·sign(θ) (sign(0) = 0) added to .grad where weight_decay cannot
    give it: the parameters with an L1 term."""
    params = model.file_parameters()
    for key in EXPLICIT_PENALTY:
        t = params[key][0]
        l2, l1 = REGULARIZATION[key]
        if t.grad is not None:
            t.grad += l2 * t + l1 * torch.sign(t)'''

    # the numbers -----------------------------------------------------------------------------

    def file_values(self) -> str:
        return (
            "# The numbers of the file: parameters as written (or drawn as bpcalc draws them),\n"
            "# inline data, dropout masks. Last, because they are long.\n"
            "FILE_VALUES = {\n" + "\n".join(self.values) + "\n}"
        )
