"""Reference values for tests/test_attention.py from PyTorch: one head through
torch.nn.functional.scaled_dot_product_attention (with and without is_causal, projections as
nn.Linear), and two heads through torch.nn.MultiheadAttention (causal attn_mask). The loss is
MSELoss (mean over every element) on the output, as bpcalc's mse averaged over the positions
and the batch.

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/attention.py
and paste the printed dictionary into TORCH_VALUES in tests/test_attention.py.
"""

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
X = [[[1.0, -0.5, 0.3, 0.2], [0.3, 0.9, -0.7, 0.1], [-1.2, 0.4, 0.5, -0.3]],
     [[-0.4, 1.1, 0.2, 0.6], [0.6, -0.8, 0.9, -0.2], [0.0, 0.5, -1.0, 0.8]]]  # fmt: skip
Y = [[[0.5, -0.5, 0.1, 0.0], [0.0, 0.2, -0.3, 0.4], [0.4, 0.4, 0.0, -0.2]],
     [[0.2, 0.0, -0.2, 0.1], [0.1, -0.4, 0.5, 0.0], [-0.3, 0.2, 0.1, 0.3]]]  # fmt: skip
WQ = [[0.5, -0.3, 0.2, 0.1], [0.2, 0.8, -0.4, 0.3], [-0.6, 0.1, 0.5, -0.2], [0.3, 0.2, 0.1, 0.7]]
WK = [[0.1, -0.4, 0.3, 0.5], [0.7, 0.2, -0.5, 0.1], [-0.2, 0.6, 0.4, -0.3], [0.4, -0.1, 0.2, 0.6]]
WV = [[0.3, 0.1, -0.2, 0.4], [-0.5, 0.6, 0.2, 0.1], [0.2, -0.3, 0.7, 0.5], [0.1, 0.4, -0.6, 0.2]]
WO = [[0.6, -0.2, 0.1, 0.3], [0.2, 0.5, -0.4, 0.1], [-0.3, 0.1, 0.8, 0.2], [0.4, 0.3, 0.2, -0.5]]
BQ, BK, BV, BO = [0.1, -0.2, 0.05, 0.0], [0.0, 0.3, -0.1, 0.2], [0.2, 0.1, 0.0, -0.1], [
    0.05, -0.05, 0.1, 0.0,
]  # fmt: skip


def t(v):
    return torch.tensor(v, requires_grad=True)


out = {}
for case, causal, biased in (("plain", False, False), ("causal_bias_out", True, True)):
    x, wq, wk, wv, wo = t(X), t(WQ), t(WK), t(WV), t(WO)
    bq, bk, bv, bo = t(BQ), t(BK), t(BV), t(BO)
    q = F.linear(x, wq, bq if biased else None)
    k = F.linear(x, wk, bk if biased else None)
    v = F.linear(x, wv, bv if biased else None)
    context = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    a = F.linear(context, wo, bo) if biased else context
    loss = F.mse_loss(a, torch.tensor(Y))
    loss.backward()
    scores = q @ k.transpose(-1, -2) / 2.0  # √d_k = √4
    entry = {
        "scores": scores.tolist(),
        "weights": torch.softmax(
            scores.masked_fill(torch.ones(3, 3).triu(1).bool(), float("-inf"))
            if causal
            else scores,
            dim=-1,
        ).tolist(),
        "a": a.tolist(),
        "loss": loss.item(),
        "grad_x": x.grad.tolist(),
        "grad_wq": wq.grad.tolist(),
        "grad_wk": wk.grad.tolist(),
        "grad_wv": wv.grad.tolist(),
    }
    if biased:
        entry.update(
            grad_wo=wo.grad.tolist(),
            grad_bq=bq.grad.tolist(),
            grad_bk=bk.grad.tolist(),
            grad_bv=bv.grad.tolist(),
            grad_bo=bo.grad.tolist(),
        )
    out[case] = entry

# two heads, as nn.MultiheadAttention (in_proj = [W_q; W_k; W_v], out_proj = W_o)
mha = torch.nn.MultiheadAttention(4, 2, batch_first=True)
with torch.no_grad():
    mha.in_proj_weight.copy_(torch.tensor(WQ + WK + WV))
    mha.in_proj_bias.copy_(torch.tensor(BQ + BK + BV))
    mha.out_proj.weight.copy_(torch.tensor(WO))
    mha.out_proj.bias.copy_(torch.tensor(BO))
x = t(X)
mask = torch.ones(3, 3).triu(1).bool()  # True: not attended
a, w = mha(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
loss = F.mse_loss(a, torch.tensor(Y))
loss.backward()
g, gb = mha.in_proj_weight.grad, mha.in_proj_bias.grad
out["two_heads_causal"] = {
    "weights": w.tolist(),  # (N, heads, T, T)
    "a": a.tolist(),
    "loss": loss.item(),
    "grad_x": x.grad.tolist(),
    "grad_wq": g[:4].tolist(),
    "grad_wk": g[4:8].tolist(),
    "grad_wv": g[8:].tolist(),
    "grad_wo": mha.out_proj.weight.grad.tolist(),
    "grad_bq": gb[:4].tolist(),
    "grad_bk": gb[4:8].tolist(),
    "grad_bv": gb[8:].tolist(),
    "grad_bo": mha.out_proj.bias.grad.tolist(),
}
print(out)
