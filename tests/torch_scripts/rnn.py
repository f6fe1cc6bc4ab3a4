"""Reference values for tests/test_rnn.py from PyTorch's nn.RNN (one layer, batch_first) with a
given h0, and MSELoss (mean over every element) on its output: every h_t (return: all) or
h_T (return: last). bpcalc's mse at each position, averaged over the positions and the batch.

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/rnn.py
and paste the printed dictionary into TORCH_VALUES in tests/test_rnn.py.
"""

import torch

torch.set_default_dtype(torch.float64)
W_IH = [[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1]]
W_HH = [[0.1, -0.4, 0.3], [0.7, 0.2, -0.5], [-0.2, 0.6, 0.4]]
B_IH = [0.1, -0.2, 0.05]
B_HH = [0.0, 0.3, -0.1]
H0 = [0.2, -0.1, 0.4]
X = [[[1.0, -0.5], [0.3, 0.9], [-1.2, 0.4], [0.7, 0.2]],
     [[-0.4, 1.1], [0.6, -0.8], [0.0, 0.5], [1.5, -1.0]]]  # fmt: skip
Y_ALL = [[[0.5, -0.5, 0.1], [0.0, 0.2, -0.3], [0.4, 0.4, 0.0], [-0.1, 0.3, 0.2]],
         [[0.2, 0.0, -0.2], [0.1, -0.4, 0.5], [-0.3, 0.2, 0.1], [0.0, 0.6, -0.5]]]  # fmt: skip
Y_LAST = [[0.5, -0.5, 0.1], [0.0, 0.6, -0.5]]

out = {}
for case, nonlinearity, last in (("tanh_all", "tanh", False), ("relu_last", "relu", True)):
    rnn = torch.nn.RNN(2, 3, nonlinearity=nonlinearity, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.tensor(W_IH))
        rnn.weight_hh_l0.copy_(torch.tensor(W_HH))
        rnn.bias_ih_l0.copy_(torch.tensor(B_IH))
        rnn.bias_hh_l0.copy_(torch.tensor(B_HH))
    x = torch.tensor(X, requires_grad=True)
    h0 = torch.tensor(H0).expand(1, 2, 3).contiguous()
    hs, _ = rnn(x, h0)
    a = hs[:, -1] if last else hs
    loss = torch.nn.functional.mse_loss(a, torch.tensor(Y_LAST if last else Y_ALL))
    loss.backward()
    out[case] = {
        "h": hs.tolist(),
        "loss": loss.item(),
        "grad_W_ih": rnn.weight_ih_l0.grad.tolist(),
        "grad_W_hh": rnn.weight_hh_l0.grad.tolist(),
        "grad_b": rnn.bias_ih_l0.grad.tolist(),  # the same as bias_hh's
        "grad_x": x.grad.tolist(),
    }
    assert torch.allclose(rnn.bias_ih_l0.grad, rnn.bias_hh_l0.grad, rtol=1e-14)
    if case == "tanh_all":  # clip_norm 0.2, then one SGD step with lr 0.1
        norm = torch.nn.utils.clip_grad_norm_(rnn.parameters(), 0.2)
        torch.optim.SGD(rnn.parameters(), lr=0.1).step()
        out["clip"] = {
            "grad_norm": norm.item(),
            "new_W_ih": rnn.weight_ih_l0.tolist(),
            "new_W_hh": rnn.weight_hh_l0.tolist(),
            "new_b_ih": rnn.bias_ih_l0.tolist(),
            "new_b_hh": rnn.bias_hh_l0.tolist(),
        }
print(out)
