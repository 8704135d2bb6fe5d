"""MobileNetV2 1.0 laid out as TensorFlow's published ImageNet network, as a phototag backbone.

timm builds the network (its ``mobilenetv2_100`` with TensorFlow's "same" padding, so that a
stride-2 convolution pads right and bottom as the original does); phototag's pretrained start
(``phototag.train.pretrained``) fills it from the quantised TFLite release, whose batch norms are
folded into the convolutions. The batch norms therefore start as identities plus the folded
bias, and their statistics stay frozen while training (their scale and shift still learn):
fresh batch statistics would rescale every channel the pretrained network relies on.
Input: RGB in [0, 1], mapped to [-1, 1] as the original expects; the trunk divides the side by 32.
"""

from torch import nn

TIMM_NAME = "mobilenetv2_100"


def build(num_classes=0, global_pool="avg"):
    import timm  # seconds to import: only when the backbone is used

    return timm.create_model(TIMM_NAME, pretrained=False, num_classes=num_classes,
                             global_pool=global_pool, pad_type="same")


class MobileNetV2Trunk(nn.Module):
    """Feature maps (1,280 channels) or, with ``pool``, their mean."""

    side_multiple = 32

    def __init__(self, pool=True, num_classes=0):
        super().__init__()
        self.net = build(num_classes=num_classes, global_pool="avg" if pool or num_classes else "")
        self.num_features = self.net.num_features

    def train(self, mode=True):
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, x):
        return self.net(x * 2.0 - 1.0)
