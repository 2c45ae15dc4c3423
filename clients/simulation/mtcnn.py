"""The three MTCNN face networks (ONet, RNet, PNet), with the pretrained weights shipped in facenet-pytorch.

We build the networks ourselves (same layer names as the shipped state dicts) rather than importing
facenet_pytorch, whose package __init__ pulls in requests and a model downloader we don't need.
Inputs are RGB crops (ONet 48x48, RNet 24x24, PNet 12x12) scaled as (255 x - 127.5) / 128. Each network's units
are its trunk's layers (after their PReLU) and its detection heads (face/non-face logits, box offsets, landmarks:
linear outputs, no PReLU), which all read the trunk's last layer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

__all__ = ["MTCNN_LAYERS", "MTCNN_MAP_SIZES", "MTCNN_TRUNKS", "MTCNN_WIDTHS", "MtcnnFeatures", "load_mtcnn"]

# name -> (input size, [(layer, conv channels or dense width, kernel, pool)])
_ARCHITECTURES: dict[str, tuple[int, list[tuple[str, int, int, tuple[int, int] | None]]]] = {
    "onet": (
        48,
        [
            ("conv1", 32, 3, (3, 2)),
            ("conv2", 64, 3, (3, 2)),
            ("conv3", 64, 3, (2, 2)),
            ("conv4", 128, 2, None),
            ("dense5", 256, 0, None),
        ],
    ),
    "rnet": (
        24,
        [("conv1", 28, 3, (3, 2)), ("conv2", 48, 3, (3, 2)), ("conv3", 64, 2, None), ("dense4", 128, 0, None)],
    ),
    "pnet": (12, [("conv1", 10, 3, (2, 2)), ("conv2", 16, 3, None), ("conv3", 32, 3, None)]),
}
_FLAT_INPUTS = {"onet": 1152, "rnet": 576}
# name -> [(head, width)]: linear (ONet, RNet) or 1x1-convolutional (PNet) outputs of the trunk's last layer
_HEADS: dict[str, list[tuple[str, int]]] = {
    "onet": [("dense6_1", 2), ("dense6_2", 4), ("dense6_3", 10)],
    "rnet": [("dense5_1", 2), ("dense5_2", 4)],
    "pnet": [("conv4_1", 2), ("conv4_2", 4)],
}

MTCNN_TRUNKS: dict[str, list[str]] = {net: [layer for layer, *_ in spec[1]] for net, spec in _ARCHITECTURES.items()}
MTCNN_LAYERS: dict[str, list[str]] = {net: [*MTCNN_TRUNKS[net], *(head for head, _ in _HEADS[net])] for net in _HEADS}
# "net.layer" -> its number of channels (conv) or units (dense), trunks first, then heads
MTCNN_WIDTHS: dict[str, int] = {
    **{f"{net}.{layer}": width for net, spec in _ARCHITECTURES.items() for layer, width, *_ in spec[1]},
    **{f"{net}.{head}": width for net, heads in _HEADS.items() for head, width in heads},
}


def _map_sizes() -> dict[str, int]:
    """ "net.layer" -> the side of its square activation map (conv layers; 0 for dense), from the architecture."""
    sizes: dict[str, int] = {}
    for net, (side, layers) in _ARCHITECTURES.items():
        for layer, _, kernel, pool in layers:
            if not kernel:
                sizes[f"{net}.{layer}"] = 0
                continue
            side -= kernel - 1
            sizes[f"{net}.{layer}"] = side
            if pool is not None:  # ceil_mode pooling
                side = -(-(side - pool[0]) // pool[1]) + 1
        for head, _ in _HEADS[net]:
            sizes[f"{net}.{head}"] = side if net == "pnet" else 0  # PNet's 1x1 convolutions keep its last map
    return sizes


# "net.layer" -> the side of its activation map (0: a dense layer, no map)
MTCNN_MAP_SIZES: dict[str, int] = _map_sizes()


class MtcnnFeatures(nn.Module):
    """ONet, RNet or PNet returning every layer's activation (the trunk's after its PReLU) and its heads' outputs.

    forward(images (B, 3, H, W) in [0, 1]) -> {layer: (B, C, h, w) or (B, C)}
    """

    def __init__(self, net: str) -> None:
        super().__init__()
        self.net = net
        self.input_size, layers = _ARCHITECTURES[net]
        in_channels = 3
        for layer, width, kernel, pool in layers:
            index = layer[-1]
            if kernel:
                module: nn.Module = nn.Conv2d(in_channels, width, kernel_size=kernel)
                in_channels = width
            else:
                module = nn.Linear(_FLAT_INPUTS[net], width)
            self.add_module(layer, module)
            self.add_module(f"prelu{index}", nn.PReLU(width))
            if pool is not None:
                self.add_module(f"pool{index}", nn.MaxPool2d(pool[0], pool[1], ceil_mode=True))
        last = layers[-1][1]  # the heads read the trunk's last layer
        for head, width in _HEADS[net]:
            self.add_module(head, nn.Conv2d(last, width, kernel_size=1) if net == "pnet" else nn.Linear(last, width))
        self._layers = layers

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = nn.functional.interpolate(
            images, size=(self.input_size, self.input_size), mode="bilinear", antialias=True, align_corners=False
        )
        x = (255.0 * x - 127.5) / 128.0
        outputs: dict[str, torch.Tensor] = {}
        for layer, _, kernel, pool in self._layers:
            index = layer[-1]
            if not kernel:
                # The shipped weights expect the (B, W, H, C) flattening of the original Caffe model.
                x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
            x = getattr(self, f"prelu{index}")(getattr(self, layer)(x))
            outputs[layer] = x
            if pool is not None:
                x = getattr(self, f"pool{index}")(x)
        for head, _ in _HEADS[self.net]:
            outputs[head] = getattr(self, head)(x)
        return outputs


def load_mtcnn(net: str) -> MtcnnFeatures:
    """ONet, RNet or PNet with the pretrained weights from the installed facenet-pytorch package."""
    if net not in _ARCHITECTURES:
        raise ValueError(f"unknown MTCNN network {net!r}; known: {', '.join(_ARCHITECTURES)}")
    # Locate the package without importing it (its __init__ needs requests).
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("simulated MTCNN units need facenet-pytorch: pip install --no-deps facenet-pytorch")
    weights = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{net}.pt"
    if not weights.is_file():
        raise FileNotFoundError(f"MTCNN weights not found at {weights}")
    model = MtcnnFeatures(net)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval().to(memory_format=torch.channels_last)  # 1.75x faster on this CPU
