"""MediaPipe FaceMesh (v1) as phototag modules: its trunk is the face branch's backbone.

The layout follows the published network layer by layer (``../shared/data/pretrained/README.md``),
so its ``state_dict`` keys are those of the original: ``backbone1`` is the trunk; ``backbone2a``
(468 landmarks) and ``backbone2b`` (face flag) are the heads, kept only to check that a converted
network still answers as the original does. Input: RGB in [0, 1], any side that is a multiple of
32 (the original: 192). The trunk divides the side by 32: 6 × 6 at 192, 4 × 4 at 128.
"""

import torch
import torch.nn.functional as F
from torch import nn


class BlazeBlock(nn.Module):
    """Depthwise 3×3 + pointwise 1×1 with a skip; stride 2 pads right/bottom by 2 and max-pools
    the skip; extra output channels are zeros on the skip."""

    def __init__(self, channels_in, channels_out, stride=1):
        super().__init__()
        self.stride = stride
        self.extra_channels = channels_out - channels_in
        padding = 0 if stride == 2 else 1
        self.convs = nn.Sequential(
            nn.Conv2d(channels_in, channels_in, 3, stride, padding, groups=channels_in),
            nn.Conv2d(channels_in, channels_out, 1),
        )
        self.act = nn.PReLU(channels_out)

    def forward(self, x):
        if self.stride == 2:
            h = F.pad(x, (0, 2, 0, 2))
            x = F.max_pool2d(x, 2)
        else:
            h = x
        if self.extra_channels > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(self.convs(h) + x)


TRUNK_BLOCKS = ((16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 32, 1), (32, 64, 2),
                (64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1),
                (128, 128, 2), (128, 128, 1), (128, 128, 1))


def trunk():
    layers = [nn.Conv2d(3, 16, 3, 2, 0), nn.PReLU(16)]
    layers += [BlazeBlock(i, o, s) for i, o, s in TRUNK_BLOCKS]
    return nn.Sequential(*layers)


def _pad_input(x):
    return F.pad(x, (0, 1, 0, 1))


class FaceMeshTrunk(nn.Module):
    """The trunk as a backbone: feature maps (128 channels), or with ``pool`` the mean and max
    over positions side by side (256), which is what a linear probe of it reads best."""

    side_multiple = 32  # its four stride-2 blocks need even sides all the way down

    def __init__(self, pool=True):
        super().__init__()
        self.backbone1 = trunk()
        self.pool = pool
        self.num_features = 256 if pool else 128

    def forward(self, x):
        maps = self.backbone1(_pad_input(x))
        if not self.pool:
            return maps
        return torch.cat([maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))], dim=1)


class FaceMesh(nn.Module):
    """The whole network: (face flag probability N, landmarks N×468×3 in crop units)."""

    def __init__(self):
        super().__init__()
        self.backbone1 = trunk()
        self.backbone2a = nn.Sequential(
            BlazeBlock(128, 128, 2), BlazeBlock(128, 128), BlazeBlock(128, 128),
            nn.Conv2d(128, 32, 1), nn.PReLU(32), BlazeBlock(32, 32), nn.Conv2d(32, 1404, 3),
        )
        self.backbone2b = nn.Sequential(
            BlazeBlock(128, 128, 2), nn.Conv2d(128, 32, 1), nn.PReLU(32), BlazeBlock(32, 32),
            nn.Conv2d(32, 1, 3),
        )

    def forward(self, x):
        features = self.backbone1(_pad_input(x))
        landmarks = self.backbone2a(features).view(-1, 468, 3) / 192.0
        flag = torch.sigmoid(self.backbone2b(features)).view(-1)
        return flag, landmarks
