"""U-Net after Ronneberger et al. (2015), with same-size ("padded") convolutions.

The architecture follows the original paper: a contracting path of ``depth`` steps, each a
double 3x3 convolution with ReLU followed by 2x2 max pooling that halves the size and doubles
the channels; a bottleneck double convolution; an expanding path of ``depth`` steps, each a 2x2
transposed convolution that doubles the size and halves the channels, concatenation with the
skip connection of the same level, and a double 3x3 convolution; finally a 1x1 convolution to
``n_classes`` logits. With ``base_channels=64`` and ``depth=4`` the levels have
64, 128, 256, 512 and 1024 channels, as in the paper.

Two deliberate differences from the 2015 paper, both standard in modern re-implementations:

- the 3x3 convolutions use padding 1, so the output has the input's size (no cropping of the
  skip connections, and patches stitch back without a border);
- optional BatchNorm after each convolution (``batch_norm=True``, before the ReLU). With batch
  norm the convolutions carry no bias (it would be cancelled by the normalisation).

Input height and width must be divisible by ``2**depth`` (:func:`required_divisor`); a 64x64
patch allows up to ``depth=6``.
"""

from __future__ import annotations

import torch
from torch import nn


def required_divisor(depth: int) -> int:
    """Input height and width must be multiples of this number (one halving per level)."""
    return 2**depth


def check_input_size(height: int, width: int, depth: int) -> None:
    """Raise ``ValueError`` naming the size and the divisor if the U-Net cannot take it."""
    divisor = required_divisor(depth)
    if height % divisor or width % divisor or height <= 0 or width <= 0:
        raise ValueError(
            f"U-Net input size {height}x{width} is not divisible by {divisor} "
            f"(2**depth with depth={depth}); use a patch size that is a multiple of {divisor} "
            "or a smaller depth"
        )


class DoubleConv(nn.Sequential):
    """(3x3 conv, [BatchNorm], ReLU) twice; padding 1 keeps the size."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool):
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(2):
            layers.append(nn.Conv2d(channels, out_channels, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
            channels = out_channels
        super().__init__(*layers)


class Down(nn.Module):
    """2x2 max pooling, then a double convolution."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, out_channels, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """2x2 transposed convolution (halves the channels), skip concatenation, double convolution."""

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels, batch_norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """U-Net returning per-pixel logits of shape (N, n_classes, H, W).

    ``input_size`` (an int or (height, width)) is optional: when given, the constructor checks
    it against :func:`required_divisor` so that a bad patch size fails before any training.
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        batch_norm: bool = True,
        *,
        input_size: int | tuple[int, int] | None = None,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"U-Net depth must be at least 1 (got {depth})")
        if base_channels < 1 or in_channels < 1 or n_classes < 1:
            raise ValueError(
                "U-Net channel counts must be positive "
                f"(in_channels={in_channels}, n_classes={n_classes}, base_channels={base_channels})"
            )
        if input_size is not None:
            h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
            check_input_size(int(h), int(w), depth)

        self.in_channels = in_channels
        self.n_classes = n_classes
        self.base_channels = base_channels
        self.depth = depth
        self.batch_norm = batch_norm

        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.inc = DoubleConv(in_channels, channels[0], batch_norm)
        self.downs = nn.ModuleList(
            Down(channels[level], channels[level + 1], batch_norm) for level in range(depth)
        )
        self.ups = nn.ModuleList(
            Up(channels[level + 1], channels[level], batch_norm) for level in reversed(range(depth))
        )
        self.outc = nn.Conv2d(channels[0], n_classes, kernel_size=1)

    @property
    def divisor(self) -> int:
        return required_divisor(self.depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"U-Net expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        check_input_size(x.shape[2], x.shape[3], self.depth)
        x = self.inc(x)
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is not a skip connection
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters; BatchNorm running statistics are buffers, not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
