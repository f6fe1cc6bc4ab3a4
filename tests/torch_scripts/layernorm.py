"""Reference values for tests/test_layernorm.py from torch.nn.LayerNorm (and a bias-free
nn.Linear / nn.Conv2d for tests/test_no_bias.py), in float64.

Run with an environment that has torch (not a dependency of bpcalc or of its tests):
    python tests/torch_scripts/layernorm.py
and paste the printed dictionaries into TORCH_VALUES of the two test files.
"""

import torch

torch.set_default_dtype(torch.float64)
F = torch.nn.functional


def grads(loss, named):
    found = torch.autograd.grad(loss, list(named.values()))
    return {k: v.tolist() for k, v in zip(named, found, strict=True)}


# 1. LayerNorm over the last axis of a batch of 2 vectors, then a bias-free dense layer with a
#    softmax and the cross-entropy averaged over the batch (the network LN_VECTOR of the tests)
x = torch.tensor([[1.0, 2.0, 4.0], [0.5, -1.0, 0.5]], requires_grad=True)
ln = torch.nn.LayerNorm(3, eps=1e-5)
with torch.no_grad():
    ln.weight.copy_(torch.tensor([1.0, 0.5, 2.0]))
    ln.bias.copy_(torch.tensor([0.0, 0.1, -0.1]))
fc = torch.nn.Linear(3, 3, bias=False)
with torch.no_grad():
    fc.weight.copy_(torch.tensor([[0.2, -0.3, 0.1], [0.4, 0.1, -0.2], [0.0, 0.3, 0.5]]))
z = ln(x)
loss = F.cross_entropy(fc(z), torch.tensor([1, 0]))
vector = {"z": z.tolist(), "loss": loss.item()}
vector.update(grads(loss, {"x": x, "gamma": ln.weight, "beta": ln.bias, "w": fc.weight}))

# 2. LayerNorm over the last two axes (normalized_shape [2, 3]) of 2 two-channel 2x3 images,
#    then flatten, a dense layer with a bias, tanh and the mean squared error
img = torch.tensor(
    [
        [[[0.5, -1.0, 2.0], [1.5, 0.2, -0.7]], [[0.4, 0.8, -1.2], [1.1, -0.5, 0.3]]],
        [[[0.1, 0.2, 0.3], [-0.5, 0.6, 0.7]], [[0.9, 1.0, -1.1], [0.3, 0.3, 0.4]]],
    ],
    requires_grad=True,
)
ln2 = torch.nn.LayerNorm([2, 3], eps=1e-3)
with torch.no_grad():
    ln2.weight.copy_(torch.tensor([[1.5, 0.5, 1.0], [0.8, -1.2, 1.1]]))
    ln2.bias.copy_(torch.tensor([[0.1, -0.2, 0.0], [0.3, 0.0, -0.1]]))
fc2 = torch.nn.Linear(12, 2)
with torch.no_grad():
    fc2.weight.copy_(torch.arange(24.0).reshape(2, 12).sin() * 0.5)
    fc2.bias.copy_(torch.tensor([0.05, -0.05]))
z2 = ln2(img)
out2 = torch.tanh(fc2(z2.flatten(1)))
loss2 = F.mse_loss(out2, torch.tensor([[0.2, -0.4], [0.5, 0.1]]))
image = {"z": z2.tolist(), "loss": loss2.item()}
image.update(grads(loss2, {"x": img, "gamma": ln2.weight, "beta": ln2.bias}))
print("LAYERNORM", {"vector": vector, "image": image})

# 3. No bias: a bias-free conv2d (2 output channels) and a bias-free dense layer, half the
#    summed squared error (F.mse_loss with reduction 'sum' / 2)
im = torch.tensor([[[[1.0, 2.0, 0.5], [0.0, -1.0, 1.5], [2.0, 0.5, -0.5]]]], requires_grad=True)
conv = torch.nn.Conv2d(1, 2, 2, bias=False)
with torch.no_grad():
    conv.weight.copy_(torch.tensor([[[[0.5, -0.25], [0.1, 0.3]]], [[[-0.2, 0.4], [0.6, 0.0]]]]))
dense = torch.nn.Linear(8, 1, bias=False)
with torch.no_grad():
    dense.weight.copy_(torch.tensor([[0.3, -0.1, 0.2, 0.4, -0.3, 0.5, 0.1, -0.2]]))
out3 = dense(torch.relu(conv(im)).flatten(1))
loss3 = 0.5 * F.mse_loss(out3, torch.tensor([[0.7]]), reduction="sum")
nobias = {"out": out3.tolist(), "loss": loss3.item()}
nobias.update(grads(loss3, {"x": im, "kernel": conv.weight, "w": dense.weight}))
print("NO_BIAS", nobias)
