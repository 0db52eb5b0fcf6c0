"""CycleGAN networks as in Zhu et al.'s pytorch-CycleGAN-and-pix2pix, unchanged.

* :class:`ResnetGenerator`: the ``resnet_9blocks`` generator (instance norm, reflection
  padding, no dropout). At ``ngf=64, n_blocks=9`` it has 11,378,179 parameters.
* :class:`NLayerDiscriminator`: the 70x70 PatchGAN (``basic``, 3 layers). At ``ndf=64,
  n_layers=3`` it has 2,764,737 parameters.
* :func:`init_weights`: the original ``normal`` initialisation, N(0, 0.02).

Two options depart from the original generator, for restylings without artefacts at tile
borders and without checkerboard texture (both default to the original):

* ``upsampling="resize"``: each up-sampling stage is a nearest-neighbour x2 resize and a 3x3
  convolution (reflection-padded) instead of the transposed convolution (kernel 3, stride 2),
  whose uneven overlap paints a 2-pixel checkerboard into the output (Odena et al., 2016,
  "Deconvolution and checkerboard artifacts"). Same parameter count.
* ``down_padding="reflect"``: the two stride-2 convolutions pad by reflection instead of
  zeros. With zeros they see a grey frame on the left and top only (a stride-2 window over an
  even side never reaches the right or bottom pad), which marks those borders of every tile.

The normalisation is the original ``instance`` choice: ``InstanceNorm2d(affine=False,
track_running_stats=False)``, so every convolution before a norm layer keeps its bias
(the original's ``use_bias = norm_layer == nn.InstanceNorm2d``).
"""

from __future__ import annotations

import torch
from torch import nn


_RESIDUAL_CLAMP = 0.999  # atanh(0.999) = 3.8
UPSAMPLING = ("transpose", "resize")  # transpose: the original's
DOWN_PADDING = ("zeros", "reflect")  # zeros: the original's


def _norm_layer(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Residual block: (reflection pad, 3x3 conv, norm, ReLU) twice, the second without ReLU."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            _norm_layer(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            _norm_layer(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """ResNet generator: c7s1-ngf, two stride-2 downsamplings, ``n_blocks`` residual blocks,
    two stride-2 transposed convolutions, c7s1-output_nc, Tanh.

    Input height and width should be multiples of 4 for the output to match the input size.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        residual: bool = False,
        upsampling: str = "transpose",
        down_padding: str = "zeros",
    ):
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0 (got {n_blocks})")
        if upsampling not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {', '.join(UPSAMPLING)} (got {upsampling!r})")
        if down_padding not in DOWN_PADDING:
            raise ValueError(f"down_padding must be one of {', '.join(DOWN_PADDING)} (got {down_padding!r})")
        super().__init__()
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),
            _norm_layer(ngf),
            nn.ReLU(True),
        ]

        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            model += [
                nn.Conv2d(
                    ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True, padding_mode=down_padding
                ),
                _norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]

        mult = 2**n_downsampling
        for _ in range(n_blocks):
            model += [ResnetBlock(ngf * mult)]
        self.decoder_start = len(model)  # index of the first up-sampling layer in ``model``

        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            if upsampling == "transpose":
                up: list[nn.Module] = [
                    nn.ConvTranspose2d(
                        ngf * mult,
                        ngf * mult // 2,
                        kernel_size=3,
                        stride=2,
                        padding=1,
                        output_padding=1,
                        bias=True,
                    )
                ]
            else:
                up = [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.ReflectionPad2d(1),
                    nn.Conv2d(ngf * mult, ngf * mult // 2, kernel_size=3, padding=0, bias=True),
                ]
            model += [*up, _norm_layer(ngf * mult // 2), nn.ReLU(True)]

        model += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
        ]
        if residual and input_nc != output_nc:
            raise ValueError("a residual generator needs as many output channels as input channels")
        self.residual = residual
        if not residual:
            model.append(nn.Tanh())
        self.model = nn.Sequential(*model)

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the last layers: the two up-sampling stages and the output
        convolution (what ``train_layers: last`` fine-tunes)."""
        return [p for module in list(self.model)[self.decoder_start :] for p in module.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            # Output = tanh(atanh(x) + correction): the identity when the network outputs 0,
            # so the input's structure is kept from the first step and training learns the
            # change of style only. Inputs are in [-1, 1]; the clamp keeps atanh finite.
            return torch.tanh(torch.atanh(x.clamp(-_RESIDUAL_CLAMP, _RESIDUAL_CLAMP)) + self.model(x))
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator; with ``n_layers=3`` each output value sees a 70x70 input patch.

    Output map side for input side ``s``: ``s / 2**n_layers - 2`` (e.g. 256 -> 30, 64 -> 6).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3):
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1 (got {n_layers})")
        super().__init__()
        kw = 4
        padw = 1
        sequence: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        nf_mult = 1
        for n in range(1, n_layers):  # gradually increase the number of filters
            nf_mult_prev = nf_mult
            nf_mult = min(2**n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=2, padding=padw, bias=True),
                _norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]

        nf_mult_prev = nf_mult
        nf_mult = min(2**n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kernel_size=kw, stride=1, padding=padw, bias=True),
            _norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
        ]
        sequence += [nn.Conv2d(ndf * nf_mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*sequence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, init_gain: float = 0.02, generator: torch.Generator | None = None) -> nn.Module:
    """The original ``normal`` initialisation.

    Convolution and linear weights ~ N(0, init_gain), their biases 0; weights of affine
    normalisation layers ~ N(1, init_gain), their biases 0. Uses the global torch RNG unless
    ``generator`` is given. Returns ``net``.
    """

    def init_func(m: nn.Module) -> None:
        classname = m.__class__.__name__
        weight = getattr(m, "weight", None)
        bias = getattr(m, "bias", None)
        if weight is None:
            return
        if "Conv" in classname or "Linear" in classname:
            nn.init.normal_(weight, 0.0, init_gain, generator=generator)
            if bias is not None:
                nn.init.constant_(bias, 0.0)
        elif "Norm" in classname:  # BatchNorm2d / affine InstanceNorm2d
            nn.init.normal_(weight, 1.0, init_gain, generator=generator)
            if bias is not None:
                nn.init.constant_(bias, 0.0)

    with torch.no_grad():
        net.apply(init_func)
    return net


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def format_parameters(count: int) -> str:
    """``11378179`` -> ``'11.378 M'``."""
    return f"{count / 1e6:.3f} M"
