"""Reference values for tests/test_residual.py: residual blocks a = x + f(x) written out in
PyTorch (x + block(x)), in float64, with the gradients by autograd.

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/residual.py
and paste the printed dictionary into TORCH_VALUES of tests/test_residual.py.
"""

import torch

torch.set_default_dtype(torch.float64)
F = torch.nn.functional


def grads(loss, named):
    found = torch.autograd.grad(loss, list(named.values()))
    return {k: v.tolist() for k, v in zip(named, found, strict=True)}


# 1. A pre-norm block (as in a transformer): a = x + fc2(relu(fc1(LayerNorm(x)))), then a
#    softmax output layer with the cross-entropy averaged over a batch of 2
x = torch.tensor([[0.3, -1.2, 0.8], [1.5, 0.4, -0.6]], requires_grad=True)
ln = torch.nn.LayerNorm(3)
with torch.no_grad():
    ln.weight.copy_(torch.tensor([1.2, 0.8, 1.0]))
    ln.bias.copy_(torch.tensor([0.1, 0.0, -0.1]))
fc1 = torch.nn.Linear(3, 4)
fc2 = torch.nn.Linear(4, 3, bias=False)
out = torch.nn.Linear(3, 2)
with torch.no_grad():
    fc1.weight.copy_(
        torch.tensor([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.7, 0.2, 0.5], [0.1, 0.9, 0.3]])
    )
    fc1.bias.copy_(torch.tensor([0.05, -0.1, 0.2, 0.0]))
    fc2.weight.copy_(
        torch.tensor([[0.6, -0.3, 0.2, 0.1], [-0.4, 0.5, 0.3, -0.2], [0.2, 0.1, -0.5, 0.7]])
    )
    out.weight.copy_(torch.tensor([[0.4, -0.5, 0.3], [-0.2, 0.6, 0.1]]))
    out.bias.copy_(torch.tensor([0.0, 0.1]))
f = fc2(torch.relu(fc1(ln(x))))
a = x + f
loss = F.cross_entropy(out(a), torch.tensor([0, 1]))
prenorm = {"f": f.tolist(), "a": a.tolist(), "loss": loss.item()}
prenorm.update(
    grads(
        loss,
        {
            "x": x,
            "gamma": ln.weight,
            "beta": ln.bias,
            "fc1_w": fc1.weight,
            "fc1_b": fc1.bias,
            "fc2_w": fc2.weight,
            "out_w": out.weight,
        },
    )
)

# 2. A convolutional block (as in ResNet, without batch norm): a = x + conv2(relu(conv1(x))),
#    3x3 kernels with padding 1, then ReLU, flatten, a dense layer and the mean squared error
img = torch.tensor(
    [
        [[[0.5, -1.0, 2.0], [1.5, 0.2, -0.7], [0.4, 0.8, -1.2]],
         [[0.1, 0.2, 0.3], [-0.5, 0.6, 0.7], [0.9, 1.0, -1.1]]],
        [[[1.1, -0.5, 0.3], [0.2, 0.4, 0.4], [-0.3, 0.6, 0.0]],
         [[0.7, 0.1, -0.2], [0.8, -0.9, 0.5], [0.6, 0.3, 0.2]]],
    ],
    requires_grad=True,
)  # fmt: skip
conv1 = torch.nn.Conv2d(2, 2, 3, padding=1)
conv2 = torch.nn.Conv2d(2, 2, 3, padding=1, bias=False)
dense = torch.nn.Linear(18, 1)
with torch.no_grad():
    conv1.weight.copy_((torch.arange(36.0).reshape(2, 2, 3, 3) * 0.7).cos() * 0.3)
    conv1.bias.copy_(torch.tensor([0.1, -0.1]))
    conv2.weight.copy_((torch.arange(36.0).reshape(2, 2, 3, 3) * 1.3).sin() * 0.3)
    dense.weight.copy_((torch.arange(18.0).reshape(1, 18) * 0.5).sin() * 0.4)
    dense.bias.copy_(torch.tensor([0.2]))
f2 = conv2(torch.relu(conv1(img)))
a2 = img + f2
out2 = dense(torch.relu(a2).flatten(1))
loss2 = F.mse_loss(out2, torch.tensor([[0.5], [-0.3]]))
conv = {"a": a2.tolist(), "loss": loss2.item()}
conv.update(grads(loss2, {"x": img, "k1": conv1.weight, "b1": conv1.bias, "k2": conv2.weight}))
print({"prenorm": prenorm, "conv": conv})
