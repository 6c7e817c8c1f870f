"""Dev-only: train small float CNNs on scikit-learn's digits with PyTorch and export them
to ONNX, the inputs of `edgecnn quantize` in tests/test_quantize.py.

Needs torch, onnx and scikit-learn (none installed by CI). Writes tests/models/float/:
  digits_dscnn.onnx   conv + BatchNorm + ReLU, two depthwise-separable blocks with BatchNorm,
                      a residual ADD, stride-2 convolution, global average pool, Linear, Softmax
  digits_mixed.onnx   the other importer paths: HardSwish, ReLU6 (Clip), AveragePool,
                      MaxPool, Concat, Sigmoid, Flatten of an NCHW tensor into Gemm, Pad
  resnet_stem.onnx    untrained (seeded) 3x32x32 net: the paths trained models above do not
                      take: 7x7/2 conv with padding 3 and maxpool(3, 2, 1) (explicit PADs),
                      BatchNorm, Hardsigmoid, AdaptiveAvgPool, x.view(n, -1); opset 13
  resnet_stem.npz     x [8, 3, 32, 32] inputs and PyTorch's outputs y for them
  digits_split.npz    the held-out split: x [N, 1, 8, 8] float32 in [0, 1] (pixel / 255 of
                      the PNGs that make_digits_example.py writes), y [N] int64 labels;
                      calibration takes the first samples of x_calibration (training split)
  manifest.json       provenance: versions, seed, float accuracy on the held-out split

    python tests/generators/make_quantize_models.py [--only-stem]
"""

import hashlib
import json
import os
import sys

import numpy as np
import onnx
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "models", "float")
SEED = 2026
OPSET = 17


def separable(channels_in, channels_out, stride=1):
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_in, 3, stride, 1, groups=channels_in, bias=False),
        nn.BatchNorm2d(channels_in), nn.ReLU(),
        nn.Conv2d(channels_in, channels_out, 1, bias=False), nn.BatchNorm2d(channels_out),
        nn.ReLU())


class DSCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU())
        self.block1 = separable(16, 16)
        self.block2 = separable(16, 32, stride=2)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.block1(x)                 # residual ADD
        x = self.block2(x)
        x = x.mean(dim=(2, 3))                 # ReduceMean over H, W
        return torch.softmax(self.head(x), dim=1)


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 12, 3, padding=1)
        self.act = nn.Hardswish()
        self.dw = nn.Conv2d(12, 24, 3, padding=1, groups=12)   # depth multiplier 2
        self.relu6 = nn.ReLU6()
        self.pool_avg = nn.AvgPool2d(2)
        self.pool_max = nn.MaxPool2d(2)
        self.gate = nn.Conv2d(24, 8, 1)
        self.pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.conv2 = nn.Conv2d(32, 16, 2)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = self.act(self.conv(x))
        x = self.relu6(self.dw(x))
        a = self.pool_avg(x)
        b = torch.sigmoid(self.gate(self.pool_max(x)))
        x = self.pad(torch.cat([a, b], dim=1))        # 32 x 5 x 5
        x = torch.relu(self.conv2(x))                  # 16 x 4 x 4
        x = torch.flatten(x, 1)                        # NCHW order, read by a Gemm
        return self.fc2(torch.relu(self.fc1(x)))


class ResNetStem(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 7, 2, 3)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1)
        self.gate = nn.Hardsigmoid()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        x = x + self.gate(self.conv2(x))
        x = self.gap(x)
        return self.fc(x.view(x.size(0), -1))


def make_resnet_stem():
    torch.manual_seed(SEED)
    model = ResNetStem()
    with torch.no_grad():   # non-trivial BatchNorm statistics to fold
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.1, 0.1)
    model.eval()
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(SEED))
    path = os.path.join(OUT, "resnet_stem.onnx")
    torch.onnx.export(model, x[:1], path, opset_version=13, input_names=["image"],
                      output_names=["scores"], dynamo=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    with torch.no_grad():
        y = model(x).numpy()
    np.savez_compressed(os.path.join(OUT, "resnet_stem.npz"), x=x.numpy(), y=y)
    with open(path, "rb") as f:
        return {"sha256": hashlib.sha256(f.read()).hexdigest(), "opset": 13, "trained": False}


def train(model, x, y, epochs=30):
    torch.manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xt))
        for start in range(0, len(xt), 64):
            batch = order[start:start + 64]
            out = model(xt[batch])
            loss = (nn.functional.nll_loss(torch.log(out + 1e-9), yt[batch])
                    if isinstance(model, DSCNN) else nn.functional.cross_entropy(out, yt[batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def accuracy(model, x, y):
    with torch.no_grad():
        return float((model(torch.tensor(x)).argmax(1).numpy() == y).mean())


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["--only-stem"]:   # without retraining the digits models
        with open(os.path.join(OUT, "manifest.json")) as f:
            manifest = json.load(f)
        manifest["models"]["resnet_stem.onnx"] = make_resnet_stem()
        with open(os.path.join(OUT, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        return
    digits = load_digits()
    pixels = np.round(digits.images * 255.0 / 16.0) / 255.0     # what run feeds for the PNGs
    x = pixels.astype(np.float32)[:, None]                      # NCHW
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=SEED, stratify=digits.target)
    manifest = {"generator": "tests/generators/make_quantize_models.py", "seed": SEED,
                "torch": torch.__version__, "onnx": onnx.__version__,
                "scikit-learn": sklearn.__version__, "opset": OPSET, "models": {}}
    torch.manual_seed(SEED)
    for name, model in (("digits_dscnn", DSCNN()), ("digits_mixed", Mixed())):
        model = train(model, x_train, y_train)
        path = os.path.join(OUT, name + ".onnx")
        # PRESERVE keeps BatchNormalization nodes (EVAL would fold them into the
        # convolutions before edgecnn sees them): the importer's folding is under test.
        mode = torch.onnx.TrainingMode.PRESERVE if name == "digits_dscnn" else \
            torch.onnx.TrainingMode.EVAL
        torch.onnx.export(model, torch.tensor(x_test[:1]), path, opset_version=OPSET,
                          input_names=["image"], output_names=["scores"], dynamo=False,
                          training=mode)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        manifest["models"][name + ".onnx"] = {
            "float_test_accuracy": accuracy(model, x_test, y_test), "sha256": digest}
    manifest["models"]["resnet_stem.onnx"] = make_resnet_stem()
    np.savez_compressed(os.path.join(OUT, "digits_split.npz"), x=x_test,
                        y=y_test.astype(np.int64), x_calibration=x_train[:200])
    manifest["split"] = {"test": len(x_test), "calibration": 200, "test_size": 0.25}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
