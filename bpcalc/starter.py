"""Commented starter networks for `bpcalc new mlp` and `bpcalc new cnn`.

The YAML is written as text (not dumped) so it can carry comments that teach the format. The
example data are made-up numbers from numpy.random.default_rng(0), so the file runs at once
with `bpcalc step` and `bpcalc train`; users replace them with theirs.
"""

from __future__ import annotations

import numpy as np

from bpcalc.errors import UsageError

LOSS_OUTPUT = {
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "mse": "identity",
    "half_mse": "identity",
    "sse": "identity",
    "half_sse": "identity",
}
HIDDEN = ("relu", "leaky_relu", "sigmoid", "tanh")

_DATA_HELP = """\
# Data: inline lists as below, or files (paths relative to this file), for example
#   inputs:  {file: data.npz, key: x, scale: 255}     .npy, .npz, .csv or MNIST IDX (gzipped or not)
#   targets: {file: data.npz, key: y}                  class indices 0..K-1 for cross_entropy
"""


def _row(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _default_loss(n_out: int, loss: str | None) -> str:
    if loss is not None:
        if loss not in LOSS_OUTPUT:
            raise UsageError(f"--loss should be one of {', '.join(LOSS_OUTPUT)}, found {loss!r}")
        if loss == "cross_entropy" and n_out < 2:
            raise UsageError("cross_entropy needs at least 2 outputs (softmax over classes)")
        return loss
    return "cross_entropy" if n_out > 1 else "binary_cross_entropy"


def _targets(loss: str, n_out: int, samples: int, rng: np.random.Generator) -> tuple[str, str]:
    """(YAML value, comment) for `samples` made-up targets."""
    if loss == "cross_entropy":
        classes = [i % n_out for i in range(samples)]
        return "[" + ", ".join(
            map(str, classes)
        ) + "]", f"class indices 0..{n_out - 1}, one per sample"
    if loss == "binary_cross_entropy":
        if n_out == 1:
            return "[" + ", ".join(
                str(i % 2) for i in range(samples)
            ) + "]", "0 or 1, one per sample"
        rows = [_row((rng.random(n_out) > 0.5).astype(float)) for _ in range(samples)]
        return "[" + ", ".join(rows) + "]", f"{n_out} values 0 or 1 per sample"
    if n_out == 1:
        return "[" + ", ".join(
            f"{v:.2f}" for v in rng.normal(size=samples)
        ) + "]", "one number per sample"
    rows = [_row(rng.normal(size=n_out)) for _ in range(samples)]
    return "[" + ", ".join(rows) + "]", f"{n_out} numbers per sample"


def mlp_yaml(
    sizes: list[int],
    *,
    activation: str = "relu",
    loss: str | None = None,
    lr: float = 0.1,
    samples: int = 4,
    command: str = "",
    blocks: int = 0,
) -> str:
    """A dense network sizes[0] -> sizes[1] -> ... -> sizes[-1]; blocks: that many pre-norm
    residual blocks (a = x + W₂·f(W₁·LayerNorm(x))) after the last hidden layer."""
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise UsageError(
            "--sizes needs at least two positive sizes, input first and output last (e.g. 2,3,1)"
        )
    if blocks < 0 or (blocks and len(sizes) < 3):
        raise UsageError(
            "--blocks needs a hidden layer for the residual blocks to follow (e.g. --sizes 4,16,3)"
        )
    if activation not in HIDDEN:
        raise UsageError(f"--activation should be one of {', '.join(HIDDEN)}, found {activation!r}")
    n_in, n_out = sizes[0], sizes[-1]
    loss = _default_loss(n_out, loss)
    out_act = LOSS_OUTPUT[loss]
    rng = np.random.default_rng(0)
    hidden_init = "he" if activation in ("relu", "leaky_relu") else "xavier"
    lines = [
        f"# A starter network made by `{command or 'bpcalc new mlp'}`.",
        "#   bpcalc step THIS.yaml             one step, every number",
        "#   bpcalc train THIS.yaml            train (epochs and batch size below, or --epochs/--batch-size)",
        _DATA_HELP.rstrip("\n"),
        f"name: mlp {'-'.join(map(str, sizes))}",
        f"inputs:                      # {samples} samples of {n_in} value{'s' if n_in != 1 else ''} (made-up numbers: replace them)",
    ]
    lines += [f"  - {_row(rng.normal(size=n_in))}" for _ in range(samples)]
    tval, tnote = _targets(loss, n_out, samples, rng)
    lines += [f"targets: {tval}   # {tnote}", "layers:"]
    for i, units in enumerate(sizes[1:], start=1):
        last = i == len(sizes) - 1
        act = out_act if last else activation
        init = "xavier" if last else hidden_init
        lines += [
            f"  - name: {'output' if last else f'hidden{i}'}",
            "    type: dense",
            f"    units: {units}                   # neurons; or give weights: [[...]] (out x in) yourself",
            f"    init: {{type: {init}, seed: {i - 1}}}   # normal (with std) | uniform | xavier | he; biases start at 0",
        ]
        if act != "identity":
            lines.append(f"    activation: {act}")
        if i == len(sizes) - 2:
            lines += _blocks(blocks, units, activation, hidden_init, seed=len(sizes))
    lines += [
        f"loss: {loss}",
        f"learning_rate: {lr:g}",
        "train:                       # defaults for bpcalc train (its options override them)",
        "  epochs: 100",
        f"  batch_size: {min(samples, 32)}",
        "  shuffle: true",
        "  seed: 0",
    ]
    return "\n".join(lines) + "\n"


def _blocks(count: int, width: int, activation: str, init: str, seed: int) -> list[str]:
    """`count` pre-norm residual blocks of `width` units, as in a transformer's MLP."""
    lines = []
    for b in range(1, count + 1):
        lines += [
            f"  - name: block{b}                # a = x + f(x): f's values are block{b}.<layer>.<value>",
            "    type: residual",
            "    layers:",
            "      - name: norm",
            "        type: layernorm          # each sample over its features, as torch.nn.LayerNorm",
            "      - name: fc1",
            "        type: dense",
            f"        units: {width}",
            f"        init: {{type: {init}, seed: {seed}}}",
            f"        activation: {activation}",
            "      - name: fc2",
            "        type: dense",
            f"        units: {width}",
            f"        init: {{type: xavier, seed: {seed + 1}}}",
            "        bias: none               # no bias parameter",
        ]
        seed += 2
    return lines


def cnn_yaml(
    input_shape: tuple[int, int, int],
    *,
    channels: int = 4,
    kernel: int = 3,
    pool: int = 2,
    classes: int = 10,
    lr: float = 0.1,
    samples: int = 2,
    command: str = "",
) -> str:
    """conv2d (channels, kernel x kernel, ReLU) -> maxpool2d (pool) -> flatten -> dense (classes, softmax)."""
    c, h, w = input_shape
    if min(input_shape) < 1 or channels < 1 or kernel < 1 or pool < 1 or classes < 2:
        raise UsageError(
            "--input, --channels, --kernel and --pool must be positive, --classes at least 2"
        )
    if kernel > h or kernel > w:
        raise UsageError(f"--kernel {kernel} is larger than the {h}x{w} input")
    ho, wo = h - kernel + 1, w - kernel + 1
    if pool > 1 and (ho % pool or wo % pool):
        raise UsageError(
            f"--pool {pool} does not tile the convolution's {ho}x{wo} output; choose another "
            "--pool or --kernel (or --pool 1 for none)"
        )
    rng = np.random.default_rng(0)
    shape_note = f"{h}x{w} image" if c == 1 else f"{c}x{h}x{w} image (channels first)"
    lines = [
        f"# A starter network made by `{command or 'bpcalc new cnn'}`.",
        "#   bpcalc step THIS.yaml             one step, every number",
        "#   bpcalc train THIS.yaml            train (epochs and batch size below, or --epochs/--batch-size)",
        _DATA_HELP.rstrip("\n"),
        "#   (images from a file: add shape: [C, H, W] if the file holds them flat)",
        f"name: cnn {c}x{h}x{w} -> {classes} classes",
        f"inputs:                      # {samples} samples, each a {shape_note} (made-up numbers)",
    ]
    for _ in range(samples):
        img = rng.random((c, h, w))
        if c == 1:
            lines.append("  - - " + _row(img[0, 0]))
            lines += [f"    - {_row(r)}" for r in img[0, 1:]]
        else:
            for ci in range(c):
                lead = "  - - - " if ci == 0 else "    - - "
                lines.append(lead + _row(img[ci, 0]))
                lines += [f"      - {_row(r)}" for r in img[ci, 1:]]
    tval, tnote = _targets("cross_entropy", classes, samples, rng)
    lines += [
        f"targets: {tval}   # {tnote}",
        "layers:",
        "  - name: conv",
        "    type: conv2d",
        f"    out_channels: {channels}              # filters; or give kernel: values yourself",
        f"    kernel_size: {kernel}               # {kernel}x{kernel}, stride 1, no padding (stride:, padding: to change)",
        "    init: {type: he, seed: 0}",
        "    activation: relu",
    ]
    if pool > 1:
        lines += ["  - type: maxpool2d", f"    size: {pool}"]
    lines += [
        "  - type: flatten",
        "  - name: output",
        "    type: dense",
        f"    units: {classes}",
        "    init: {type: xavier, seed: 1}",
        "    activation: softmax",
        "loss: cross_entropy",
        f"learning_rate: {lr:g}",
        "train:                       # defaults for bpcalc train (its options override them)",
        "  epochs: 20",
        f"  batch_size: {min(samples, 32)}",
        "  shuffle: true",
        "  seed: 0",
    ]
    return "\n".join(lines) + "\n"
