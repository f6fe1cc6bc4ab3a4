"""Reference values for tests/test_embedding.py from PyTorch's nn.Embedding, nn.Linear on
every position and nn.CrossEntropyLoss over (N, T) positions (its default mean over N·T).

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/embedding.py
and paste the printed dictionary into TORCH_VALUES in tests/test_embedding.py.
"""

import torch

torch.set_default_dtype(torch.float64)
ids = torch.tensor([[2, 0, 2], [1, 2, 3]])  # token 2 three times, 0 and 1 and 3 once
targets = torch.tensor([[1, 0, 1], [0, 0, 1]])
emb = torch.nn.Embedding(4, 2)
lin = torch.nn.Linear(2, 2)
with torch.no_grad():
    emb.weight.copy_(torch.tensor([[0.1, -0.2], [0.3, 0.4], [0.5, -0.6], [-0.7, 0.8]]))
    lin.weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]]))
    lin.bias.copy_(torch.tensor([0.0, 0.1]))
z = lin(emb(ids))  # (N, T, K)
loss = torch.nn.functional.cross_entropy(z.transpose(1, 2), targets)  # mean over N·T
loss.backward()
print(
    {
        "loss": loss.item(),
        "grad_E": emb.weight.grad.tolist(),
        "grad_W": lin.weight.grad.tolist(),
        "grad_b": lin.bias.grad.tolist(),
        "softmax": torch.softmax(z, dim=-1).tolist(),
    }
)
