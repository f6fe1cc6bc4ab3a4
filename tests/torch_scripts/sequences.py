"""Reference values for tests/test_sequences.py: nn.Linear on every position of a sequence,
softmax over the positions (dim=1), and the mean-reduced MSELoss and BCEWithLogitsLoss over
every element of (N, T, K) — bpcalc's mse / binary_cross_entropy at each position, then the
mean over the positions and over the batch.

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/sequences.py
and paste the printed dictionary into TORCH_VALUES in tests/test_sequences.py.
"""

import torch

torch.set_default_dtype(torch.float64)
x = torch.tensor([[[1.0, -0.5], [0.2, 0.3], [-1.0, 2.0]], [[0.5, 0.5], [0.0, -1.0], [1.5, 0.1]]])
y = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
w = torch.tensor([[0.3, -0.2], [0.1, 0.4]])
b = torch.tensor([0.05, -0.1])
out = {}
for name in ("mse_softmax_positions", "bce"):
    xx = x.clone().requires_grad_(True)
    ww = w.clone().requires_grad_(True)
    bb = b.clone().requires_grad_(True)
    z = xx @ ww.T + bb
    if name == "bce":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
        a = torch.sigmoid(z)
    else:
        a = torch.softmax(z, dim=1)  # over the T positions, for each feature
        loss = torch.nn.functional.mse_loss(a, y)
    loss.backward()
    out[name] = {
        "a": a.tolist(),
        "loss": loss.item(),
        "grad_W": ww.grad.tolist(),
        "grad_b": bb.grad.tolist(),
        "grad_x": xx.grad.tolist(),
    }
print(out)
