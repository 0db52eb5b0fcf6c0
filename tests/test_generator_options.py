"""The generator's up-sampling and down-sampling padding options (cyclegan.upsampling,
cyclegan.down_padding): what each does to a flat image, and that the original stays the
default, bit for bit, in files written before the options existed."""

import numpy as np
import pytest
import torch

from cyclesynth.synthesis.cyclegan.networks import ResnetGenerator, init_weights
from cyclesynth.synthesis.cyclegan import CycleGANSettings, architecture, load_generator, save_generator


def _generator(**options) -> ResnetGenerator:
    torch.manual_seed(0)
    return init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1, **options), 0.02).eval()


def _flat_output_spread(generator: ResnetGenerator) -> tuple[float, float]:
    """Max - min of the output for a flat grey 32x32 input: overall, and inside (4 px in)."""
    with torch.no_grad():
        out = generator(torch.full((1, 3, 32, 32), 0.2))
    inner = out[..., 4:-4, 4:-4]
    return float(out.max() - out.min()), float(inner.max() - inner.min())


def test_the_original_generator_paints_structure_into_a_flat_image():
    overall, inner = _flat_output_spread(_generator())
    # the transposed convolutions' uneven overlap: a checkerboard everywhere, not only at borders
    assert inner > 1e-3
    assert overall >= inner


def test_resize_upsampling_with_reflect_padding_keeps_a_flat_image_flat():
    overall, _ = _flat_output_spread(_generator(upsampling="resize", down_padding="reflect"))
    assert overall < 1e-5


def test_zero_padding_marks_the_left_and_top_border_only():
    generator = _generator(upsampling="resize")  # no checkerboard: what is left is the padding
    with torch.no_grad():
        out = generator(torch.full((1, 3, 64, 64), 0.2))[0, 0]
    off = (out - out[-1, -1]).abs()  # against the pixel farthest from the left and top
    lower, right_half = off[32:], off[:, 32:]
    assert float(lower[:, :2].max()) > 1e-2 and float(lower[:, -2:].max()) < 1e-6
    assert float(right_half[:2].max()) > 1e-2 and float(right_half[-2:].max()) < 1e-6
    with torch.no_grad():  # reflection padding: flat everywhere
        flat = _generator(upsampling="resize", down_padding="reflect")(torch.full((1, 3, 64, 64), 0.2))
    assert float(flat.max() - flat.min()) < 1e-5


def test_resize_upsampling_has_as_many_weights_as_the_original():
    count = lambda g: sum(p.numel() for p in g.parameters())
    assert count(_generator(upsampling="resize")) == count(_generator())


@pytest.mark.parametrize("upsampling,down_padding", [("transpose", "zeros"), ("resize", "reflect")])
def test_saved_generators_keep_their_options(tmp_path, upsampling, down_padding):
    settings = CycleGANSettings(ngf=8, n_blocks=1, upsampling=upsampling, down_padding=down_padding)
    generator = _generator(upsampling=upsampling, down_padding=down_padding)
    save_generator(tmp_path / "g.pt", generator.state_dict(), settings)
    loaded, loaded_settings = load_generator(tmp_path / "g.pt", "cpu")
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), generator(x))
    assert (loaded_settings.upsampling, loaded_settings.down_padding) == (upsampling, down_padding)
    assert architecture(loaded_settings)["upsampling"] == upsampling


def test_a_generator_file_from_before_the_options_loads_as_the_original(tmp_path):
    settings = CycleGANSettings(ngf=8, n_blocks=1)
    generator = _generator()
    save_generator(tmp_path / "g.pt", generator.state_dict(), settings)
    payload = torch.load(tmp_path / "g.pt", weights_only=False)
    for key in ("upsampling", "down_padding"):  # as written by earlier versions
        del payload["architecture"][key]
        del payload["settings"][key]
    torch.save(payload, tmp_path / "old.pt")
    loaded, loaded_settings = load_generator(tmp_path / "old.pt", "cpu")
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), generator(x))
    assert loaded_settings.upsampling == "transpose" and loaded_settings.down_padding == "zeros"


@pytest.mark.parametrize("key,value", [("upsampling", "bilinear"), ("down_padding", "replicate")])
def test_unknown_options_are_refused_with_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        CycleGANSettings(**{key: value})
    with pytest.raises(ValueError, match=key):
        ResnetGenerator(3, 3, ngf=8, n_blocks=1, **{key: value})


def test_the_original_is_the_default():
    settings = CycleGANSettings()
    assert (settings.upsampling, settings.down_padding) == ("transpose", "zeros")
    assert np.array_equal(
        [type(m).__name__ for m in ResnetGenerator(ngf=8, n_blocks=1).model],
        [type(m).__name__ for m in ResnetGenerator(ngf=8, n_blocks=1, upsampling="transpose").model],
    )
