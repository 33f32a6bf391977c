"""Imported PyTorch ResNets give the same logits in Flax as in PyTorch (needs torch; skipped without it).

``TorchResNet`` below is torchvision's ResNet written out with the very same
module names, so its ``state_dict()`` has torchvision's keys and shapes (it
also loads real torchvision checkpoints).  Where torchvision or timm are
installed (the GPU machine), their own models are checked too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from engine.nn.models import build_model  # noqa: E402
from engine.pretrained.imports import import_state_dict, read_state_dict  # noqa: E402

# float32 convolutions summed in another order: differences of a few 1e-6 per layer
ATOL = 2e-4


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(inplanes, planes, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3x3 (v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(inplanes, planes * 4, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _downsample(inplanes: int, planes: int, stride: int):
    if stride == 1 and inplanes == planes:
        return None
    return nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))


class TorchResNet(nn.Module):
    """torchvision.models.resnet.ResNet with configurable widths (torchvision: 64, 128, 256, 512)."""

    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes: int = 1000):
        super().__init__()
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (width, count) in enumerate(zip(widths, layers, strict=True), start=1):
            setattr(self, f"layer{i}", self._make_layer(block, width, count, 1 if i == 1 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

    def _make_layer(self, block, planes, count, stride):
        layers = [block(self.inplanes, planes, stride)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}", nn.Identity())(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _randomise_batch_norm(model) -> None:
    """Running statistics and affine parameters away from their defaults, so BatchNorm is really tested."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    model.eval()


def _flax_logits(path, x_nchw: np.ndarray) -> np.ndarray:
    variables, structure = import_state_dict(path)
    from advisor.contract.schemas import ModelPlan

    model = ModelPlan.model_validate(structure["model"])
    network = build_model(model, list(x_nchw.shape[2:]) + [x_nchw.shape[1]], "multiclass")
    x = jnp.asarray(x_nchw.transpose(0, 2, 3, 1))
    return np.asarray(jax.jit(lambda v, x: network.apply(v, x, train=False))(variables, x))


def _check_parity(model, tmp_path, size: int = 64, suffix: str = ".pth") -> None:
    _randomise_batch_norm(model)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    got = _flax_logits(path, x.numpy())
    np.testing.assert_allclose(got, expected, atol=ATOL * max(1.0, float(np.abs(expected).max())))


@pytest.mark.parametrize(
    ("block", "layers", "widths", "suffix"),
    [
        (BasicBlock, [2, 2, 2, 2], (8, 16, 32, 64), ".pth"),  # resnet18's layout, narrow
        (BasicBlock, [3, 4, 6, 3], (4, 8, 8, 16), ".safetensors"),  # resnet34's layout
        (Bottleneck, [1, 2, 1, 1], (4, 8, 8, 16), ".pth"),  # resnet50's block
    ],
)
def test_logits_match_pytorch(block, layers, widths, suffix, tmp_path):
    torch.manual_seed(0)
    _check_parity(TorchResNet(block, layers, widths, num_classes=10), tmp_path, suffix=suffix)


def test_wrapped_checkpoints_and_dataparallel_prefixes_load(tmp_path):
    model = TorchResNet(BasicBlock, [1, 1, 1, 1], (4, 4, 8, 8), num_classes=3)
    torch.save(
        {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
        tmp_path / "c.pth",
    )
    state = read_state_dict(tmp_path / "c.pth")
    assert set(state) == {k for k, v in model.state_dict().items() if v.is_floating_point()}


def test_torchvision_resnets_match(tmp_path):
    models = pytest.importorskip("torchvision.models")
    for name in ("resnet18", "resnet50"):
        torch.manual_seed(0)
        _check_parity(getattr(models, name)(weights=None), tmp_path, size=96)


def test_timm_resnets_match(tmp_path):
    timm = pytest.importorskip("timm")
    for name in ("resnet18", "resnet50"):
        torch.manual_seed(0)
        _check_parity(
            timm.create_model(name, pretrained=False), tmp_path, size=96, suffix=".safetensors"
        )
