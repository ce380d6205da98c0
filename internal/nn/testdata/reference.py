"""Reference outputs of the layers that follow Keras's semantics, computed
with PyTorch 1.13 in float64 (python3 reference.py > reference.json).

Parameters and inputs follow the formulas of TestLayersMatchReference:
parameter i is 0.5·sin(0.7·i + 0.1) in the Keras layout (kernel, then
recurrent kernel, then bias), input value j is 0.8·cos(0.3·j), two samples.
"""
import json, math
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

def params(n):
    return torch.tensor([0.5 * math.sin(0.7 * i + 0.1) for i in range(n)])

def inputs(n):
    return torch.tensor([0.8 * math.cos(0.3 * j) for j in range(n)])

def same_pad(n, k, s):
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2

def conv(shape, filters, k, s, padding):
    h, w, c = shape
    p = params(k[0] * k[1] * c * filters + filters)
    kern = p[: k[0] * k[1] * c * filters].reshape(k[0], k[1], c, filters).permute(3, 2, 0, 1)
    bias = p[k[0] * k[1] * c * filters :]
    x = inputs(2 * h * w * c).reshape(2, h, w, c).permute(0, 3, 1, 2)
    if padding == "same":
        top, bottom = same_pad(h, k[0], s[0])
        left, right = same_pad(w, k[1], s[1])
        x = F.pad(x, (left, right, top, bottom))
    y = F.conv2d(x, kern, bias, stride=s)
    return y.permute(0, 2, 3, 1).reshape(-1).tolist()

def pool(shape, k, s, padding):
    h, w, c = shape
    x = inputs(2 * h * w * c).reshape(2, h, w, c).permute(0, 3, 1, 2)
    if padding == "same":
        top, bottom = same_pad(h, k[0], s[0])
        left, right = same_pad(w, k[1], s[1])
        x = F.pad(x, (left, right, top, bottom), value=-math.inf)
    y = F.max_pool2d(x, k, s)
    return y.permute(0, 2, 3, 1).reshape(-1).tolist()

def recurrent(kind, steps, features, units, seq):
    gates = 4 if kind == "lstm" else 1
    g = gates * units
    p = params(features * g + units * g + g)
    w = p[: features * g].reshape(features, g)
    u = p[features * g : features * g + units * g].reshape(units, g)
    b = p[features * g + units * g :]
    cell = torch.nn.LSTM(features, units, batch_first=True) if kind == "lstm" else torch.nn.RNN(features, units, batch_first=True)
    with torch.no_grad():
        cell.weight_ih_l0.copy_(w.T)
        cell.weight_hh_l0.copy_(u.T)
        cell.bias_ih_l0.copy_(b)
        cell.bias_hh_l0.zero_()
    x = inputs(2 * steps * features).reshape(2, steps, features)
    y, _ = cell(x)
    if not seq:
        y = y[:, -1, :]
    return y.reshape(-1).tolist()

print(json.dumps({
    "conv2d valid 5x5x2 k3 f3": conv((5, 5, 2), 3, (3, 3), (1, 1), "valid"),
    "conv2d same 6x5x2 k3x2 s2 f3": conv((6, 5, 2), 3, (3, 2), (2, 2), "same"),
    "max_pooling2d valid 6x6x2 p2": pool((6, 6, 2), (2, 2), (2, 2), "valid"),
    "max_pooling2d same 5x5x2 p3 s2": pool((5, 5, 2), (3, 3), (2, 2), "same"),
    "simple_rnn 4x3 u5": recurrent("simple_rnn", 4, 3, 5, False),
    "lstm 4x3 u5": recurrent("lstm", 4, 3, 5, False),
    "lstm 4x3 u2 sequences": recurrent("lstm", 4, 3, 2, True),
}, indent=1))
