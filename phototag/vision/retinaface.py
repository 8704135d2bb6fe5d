"""RetinaFace (Deng et al., 2019) with the layer names of biubug6/Pytorch_Retinaface.

The module tree mirrors that implementation so its released checkpoints load as they are:
a backbone (MobileNet-0.25 or ResNet-50) feeding three feature levels (strides 8, 16, 32) into
an FPN, one SSH context module per level, and per-level 1×1 heads for face/background scores,
box offsets and 5 landmark offsets, two anchors per position.
"""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = {
    "mobilenet0.25": {
        "min_sizes": ((16, 32), (64, 128), (256, 512)),
        "steps": (8, 16, 32),
        "variance": (0.1, 0.2),
        "in_channels": (64, 128, 256),
        "out_channels": 64,
    },
    "resnet50": {
        "min_sizes": ((16, 32), (64, 128), (256, 512)),
        "steps": (8, 16, 32),
        "variance": (0.1, 0.2),
        "in_channels": (512, 1024, 2048),
        "out_channels": 256,
    },
}
# The channel means the reference subtracts from its BGR input.
BGR_MEANS = (104.0, 117.0, 123.0)


def conv_bn(inp, oup, stride=1, leaky=0.0, kernel=3, relu=True):
    layers = [
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(oup),
    ]
    if relu:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


def conv_dw(inp, oup, stride, leaky=0.1):
    """Depthwise 3×3 then pointwise 1×1, each with batch norm and leaky ReLU (MobileNet v1)."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNet v1 at width 0.25, cut into the three stages RetinaFace reads."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=0.1),
            conv_dw(8, 16, 1),
            conv_dw(16, 32, 2),
            conv_dw(32, 32, 1),
            conv_dw(32, 64, 2),
            conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2), *[conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2), conv_dw(256, 256, 1))

    def forward(self, x):
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return c1, c2, self.stage3(c2)


class ResNet50Body(nn.ModuleDict):
    """torchvision's ResNet-50 up to layer4, returning layers 2-4 (keys match its state_dict)."""

    def __init__(self):
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        super().__init__(OrderedDict((name, getattr(net, name)) for name in names))

    def forward(self, x):
        outputs = []
        for name, module in self.items():
            x = module(x)
            if name in ("layer2", "layer3", "layer4"):
                outputs.append(x)
        return tuple(outputs)


class FPN(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = conv_bn(in_channels[0], out_channels, leaky=leaky, kernel=1)
        self.output2 = conv_bn(in_channels[1], out_channels, leaky=leaky, kernel=1)
        self.output3 = conv_bn(in_channels[2], out_channels, leaky=leaky, kernel=1)
        self.merge1 = conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, features):
        out1 = self.output1(features[0])
        out2 = self.output2(features[1])
        out3 = self.output3(features[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[2:], mode="nearest"))
        return out1, out2, out3


class SSH(nn.Module):
    """Single Stage Headless context module: parallel 3×3, 5×5 and 7×7 receptive fields."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.conv3X3 = conv_bn(in_channels, out_channels // 2, relu=False)
        self.conv5X5_1 = conv_bn(in_channels, out_channels // 4, leaky=leaky)
        self.conv5X5_2 = conv_bn(out_channels // 4, out_channels // 4, relu=False)
        self.conv7X7_2 = conv_bn(out_channels // 4, out_channels // 4, leaky=leaky)
        self.conv7x7_3 = conv_bn(out_channels // 4, out_channels // 4, relu=False)

    def forward(self, x):
        branch3 = self.conv3X3(x)
        middle = self.conv5X5_1(x)
        branch5 = self.conv5X5_2(middle)
        branch7 = self.conv7x7_3(self.conv7X7_2(middle))
        return F.relu(torch.cat([branch3, branch5, branch7], dim=1))


class Head(nn.Module):
    def __init__(self, in_channels, values_per_anchor, anchors=2):
        super().__init__()
        self.values = values_per_anchor
        self.conv1x1 = nn.Conv2d(in_channels, anchors * values_per_anchor, 1)

    def forward(self, x):
        out = self.conv1x1(x).permute(0, 2, 3, 1).contiguous()
        return out.view(out.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    def __init__(self, backbone="mobilenet0.25"):
        super().__init__()
        if backbone not in CONFIGS:
            raise ValueError(f"unknown RetinaFace backbone {backbone!r}; one of {sorted(CONFIGS)}")
        self.backbone_name = backbone
        self.config = CONFIGS[backbone]
        out = self.config["out_channels"]
        self.body = MobileNetV1() if backbone == "mobilenet0.25" else ResNet50Body()
        self.fpn = FPN(self.config["in_channels"], out)
        self.ssh1, self.ssh2, self.ssh3 = SSH(out, out), SSH(out, out), SSH(out, out)
        self.ClassHead = nn.ModuleList([Head(out, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(out, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(out, 10) for _ in range(3)])

    def forward(self, x):
        """x: BGR minus the channel means, N×3×H×W. Returns per-anchor (offsets, scores, landmarks)."""
        levels = self.fpn(self.body(x))
        levels = (self.ssh1(levels[0]), self.ssh2(levels[1]), self.ssh3(levels[2]))
        boxes = torch.cat([head(f) for head, f in zip(self.BboxHead, levels)], dim=1)
        scores = torch.cat([head(f) for head, f in zip(self.ClassHead, levels)], dim=1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, levels)], dim=1)
        return boxes, F.softmax(scores, dim=-1)[..., 1], landmarks


class OnPixels(nn.Module):
    """RetinaFace fed the photos' own pixels: N×H×W×3 RGB uint8 in, its outputs out.

    The reference's input (BGR minus the channel means, N×3×H×W float) is made inside the
    network, so that ONNX Runtime makes it on all its threads instead of Python making a float
    copy of every photo first. The same float values reach the first convolution. A pixel equal
    to the means (``PADDING``) becomes exactly zero: photos of different sizes share a batch by
    padding with it.
    """

    PADDING = tuple(int(mean) for mean in reversed(BGR_MEANS))  # RGB

    def __init__(self, network):
        super().__init__()
        self.network = network
        self.register_buffer("means", torch.tensor(BGR_MEANS).view(1, 3, 1, 1), persistent=False)
        # In the network's mode: exporting to ONNX puts a module back into its own mode, and a
        # wrapper left in training mode would take an evaluating network's batch norms with it.
        self.train(network.training)

    def forward(self, pixels):
        # The flip and the permutation only reorder: an NHWC photo becomes a channels-last batch.
        bgr = pixels.flip(-1).permute(0, 3, 1, 2).float()
        return self.network(bgr - self.means)


def backbone_of(state_dict):
    """Which backbone a checkpoint was trained with, from its parameter names."""
    if any(k.startswith("body.stage1.") for k in state_dict):
        return "mobilenet0.25"
    if any(k.startswith("body.layer1.") for k in state_dict):
        return "resnet50"
    raise ValueError("not a RetinaFace checkpoint (no MobileNet or ResNet body parameters)")


def load_retinaface(path, device="cpu"):
    """Build RetinaFace from an original checkpoint, loaded without executing code."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = RetinaFace(backbone_of(state))
    model.load_state_dict(state, strict=True)
    return model.eval().to(device)
