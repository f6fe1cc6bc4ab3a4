"""Reference values for tests/test_activation_units.py from PyTorch's own modules.

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/activations.py
and paste the printed dictionary into TORCH_VALUES in tests/test_activation_units.py.
"""

import torch

z = torch.tensor([-3.0, -1.2, -0.3, 0.0, 0.4, 1.14, 2.5, 25.0], dtype=torch.float64)
out = {}
for name, f in {
    "gelu": lambda t: torch.nn.functional.gelu(t),  # approximate='none': the erf form
    "silu": torch.nn.functional.silu,
    "softplus": lambda t: torch.nn.functional.softplus(t, beta=1.0, threshold=1000.0),
    "elu": lambda t: torch.nn.functional.elu(t, alpha=0.7),
    "softsign": torch.nn.functional.softsign,
}.items():
    t = z.clone().requires_grad_(True)
    a = f(t)
    (g,) = torch.autograd.grad(a.sum(), t)
    out[name] = {"a": [float(v) for v in a.detach()], "da_dz": [float(v) for v in g]}
print({"z": [float(v) for v in z], **out})
