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
MAX_INLINE = 100_000  # made-up numbers written into the file (~700 KB of YAML)

_DATA_HELP = """\
# Data: inline lists as below, or files (paths relative to this file), for example
#   inputs:  {file: data.npz, key: x, scale: 255}     .npy, .npz, .csv or MNIST IDX (gzipped or not)
#   targets: {file: data.npz, key: y}                  class indices 0..K-1 for cross_entropy
"""


def _check_inline(option: str, samples: int, per_sample: int, what: str) -> None:
    """The made-up data is written into the file: refuse sizes that make it huge (before
    drawing any number)."""
    if samples * per_sample > MAX_INLINE:
        raise UsageError(
            f"{option}: each made-up sample's {what} would have {per_sample:,} numbers, too "
            f"many to write into the file ({samples} samples, at most {MAX_INLINE:,} numbers "
            "in all); make a smaller network, or write one whose inputs: read a data file"
        )


def _row(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _default_loss(n_out: int, loss: str | None) -> str:
    if loss is not None:
        if loss not in LOSS_OUTPUT:
            raise UsageError(f"--loss should be one of {', '.join(LOSS_OUTPUT)}, found {loss!r}")
        if loss == "cross_entropy" and n_out < 2:
            raise UsageError(
                "--loss cross_entropy needs at least 2 outputs (softmax over classes); the "
                "last of --sizes is 1: use binary_cross_entropy"
            )
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
    per_target = n_out if loss != "cross_entropy" and n_out > 1 else 1
    _check_inline("--sizes", samples, n_in + per_target, "input and target")
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
    _check_inline("--input", samples, c * h * w, "image")
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


def _token_data(vocab: int, length: int, samples: int) -> tuple[list[list[int]], list[list[int]]]:
    """Made-up token sequences that follow a rule a network can learn: counting up modulo
    the vocabulary from a different start each sample; the target at each position is the
    next token."""
    seqs = [[(s + i) % vocab for i in range(length + 1)] for s in range(samples)]
    return [q[:-1] for q in seqs], [q[1:] for q in seqs]


def _ids(rows: list[list[int]]) -> str:
    return "[" + ", ".join("[" + ", ".join(map(str, r)) + "]" for r in rows) + "]"


def _sequence_head(kind: str, command: str, vocab: int, length: int, samples: int) -> list[str]:
    inputs, targets = _token_data(vocab, length, samples)
    return [
        f"# A starter {kind} network made by `{command}`.",
        "#   bpcalc step THIS.yaml             one step, every number (small: read it all)",
        "#   bpcalc train THIS.yaml            train (epochs and batch size below, or --epochs/--batch-size)",
        "# Each sample is a sequence of token ids (0 … vocab − 1); the target at each position is",
        "# the next token (made-up data: each sequence counts up from another start; replace it).",
        f"name: {kind} over {length} tokens, vocabulary {vocab}",
        f"inputs: {_ids(inputs)}",
        f"targets: {_ids(targets)}   # one class index per position",
        "layers:",
        "  - name: emb",
        "    type: embedding",
        f"    vocab: {vocab}                    # token ids 0 … {vocab - 1}; or weights: [[...]] (vocab x dim)",
    ]


def _sequence_tail(vocab: int, lr: float, samples: int, epochs: int) -> list[str]:
    return [
        "  - name: output",
        "    type: dense                  # the same layer at every position",
        f"    units: {vocab}",
        "    init: {type: xavier, seed: 2}",
        "    activation: softmax          # over each position's classes",
        "loss: {type: cross_entropy, positions: mean}   # at every position, then the mean over them",
        f"optimizer: {{type: sgd, lr: {lr:g}, clip_norm: 5}}   # gradients rescaled when their norm is above 5",
        "train:                       # defaults for bpcalc train (its options override them)",
        f"  epochs: {epochs}",
        f"  batch_size: {min(samples, 32)}",
        "  shuffle: true",
        "  seed: 0",
    ]


def _check_sequence_sizes(vocab: int, length: int, size: int, what: str) -> None:
    if vocab < 2 or length < 1 or size < 1:
        raise UsageError(f"--vocab must be at least 2, --length and {what} positive")


def rnn_yaml(
    *,
    vocab: int = 5,
    hidden: int = 8,
    length: int = 6,
    lr: float = 0.5,
    samples: int = 5,
    command: str = "bpcalc new rnn",
) -> str:
    """embedding (vocab x hidden) -> rnn (hidden, tanh, every step) -> dense (vocab, softmax)."""
    _check_sequence_sizes(vocab, length, hidden, "--hidden")
    lines = _sequence_head("rnn", command, vocab, length, samples)
    lines += [
        f"    dim: {hidden}                      # each token's vector",
        "    init: {type: normal, std: 0.5, seed: 0}",
        "  - name: rnn",
        "    type: rnn                    # h_t = tanh(W_ih·x_t + W_hh·h_{t−1} + b), h_0 = 0",
        f"    units: {hidden}                    # hidden size; or weights_ih: / weights_hh: yourself",
        "    init: {type: uniform, seed: 1}   # U(−1/√(in + hidden), …); leave init out for PyTorch's U(−1/√hidden, …)",
        "    activation: tanh             # or relu",
        "    return: all                  # every h_t (all) or only h_T (last)",
        "    # bias: [...] (one bias, the textbook form) or bias_ih: / bias_hh: (PyTorch's); zeros if left out",
    ]
    lines += _sequence_tail(vocab, lr, samples, 200)
    return "\n".join(lines) + "\n"


def attention_yaml(
    *,
    vocab: int = 5,
    dim: int = 4,
    length: int = 6,
    heads: int = 1,
    lr: float = 0.5,
    samples: int = 5,
    command: str = "bpcalc new attention",
) -> str:
    """embedding (vocab x dim) -> causal self-attention (dim, heads) -> dense (vocab, softmax)."""
    _check_sequence_sizes(vocab, length, dim, "--dim")
    if heads < 1 or dim % heads:
        raise UsageError(f"--heads must divide --dim ({dim}), found {heads}")
    rng = np.random.default_rng(0)
    lines = _sequence_head("attention", command, vocab, length, samples)
    lines += [
        f"    dim: {dim}                      # each token's vector",
        "    init: {type: normal, std: 0.5, seed: 0}",
        "  - name: attn",
        "    type: attention              # scores = q·kᵀ/√d_k, each row's softmax, context = weights·v",
        "    causal: true                 # position t sees positions s ≤ t only",
        f"    heads: {heads}                     # q, k, v split into column blocks of d_k = {dim // heads}",
    ]
    for p in ("q", "k", "v", "o"):
        note = {
            "q": f"   # {dim} x {dim}: one row per output (q = X·W_qᵀ, as nn.Linear)",
            "o": "   # optional output projection: a = context·W_oᵀ",
        }.get(p, "")
        w = rng.normal(scale=1 / np.sqrt(dim), size=(dim, dim))
        lines.append(f"    weights_{p}:{note}")
        lines += [f"      - {_row(r)}" for r in w]
    lines.append(
        "    # bias_q: / bias_k: / bias_v: / bias_o: optional; mask: T x T of 0/1 optional"
    )
    lines += _sequence_tail(vocab, lr, samples, 200)
    return "\n".join(lines) + "\n"
