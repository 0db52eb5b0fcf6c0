import pytest
import numpy as np
import torch

from cyclesynth.synthesis.cyclegan.networks import ResnetGenerator, init_weights
from cyclesynth.synthesis.cyclegan import CycleGANSettings, save_generator
from cyclesynth.data.patches import extract_patches, stitch_patches
from cyclesynth.synthesis.synthesize import synthesize_image


def test_synthesis_translates_every_grid_patch_and_stitches(tmp_path):
    settings = CycleGANSettings(ngf=4, n_blocks=1, ndf=4, preprocess="native")
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=4, n_blocks=1))
    save_generator(tmp_path / "g.pt", generator.state_dict(), settings)
    reference = np.random.default_rng(0).random((70, 90, 3)).astype(np.float32)
    fov = np.zeros((70, 90), dtype=bool)
    fov[10:60, 10:80] = True
    image = synthesize_image(reference, str(tmp_path / "g.pt"), patch_size=32, patch_stride=32, device="cpu", fov=fov)
    assert image.shape == reference.shape and image.dtype == np.float32
    assert image.min() >= 0 and image.max() <= 1 and (image[~fov] == 0).all()
    # the same as translating the grid patches one by one with the generator and stitching
    patches, grid = extract_patches(reference, 32, 32)
    with torch.no_grad():
        x = torch.from_numpy(patches).permute(0, 3, 1, 2) * 2 - 1
        y = ((generator.eval()(x) + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    expected = stitch_patches(y, grid)
    np.testing.assert_allclose(image[fov], expected[fov], atol=1e-5)


def test_whole_image_synthesis_is_one_pass_of_the_generator(tmp_path):
    """whole_image: the generator over the whole (4-divisible) image at once, no tiles; the
    patch arguments are not used; a resize_crop generator is refused, naming the file."""
    settings = CycleGANSettings(ngf=4, n_blocks=1, ndf=4, preprocess="native")
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=4, n_blocks=1))
    save_generator(tmp_path / "g.pt", generator.state_dict(), settings)
    reference = np.random.default_rng(1).random((72, 96, 3)).astype(np.float32)
    image = synthesize_image(reference, str(tmp_path / "g.pt"), patch_size=32, patch_stride=32, device="cpu",
                             whole_image=True)
    with torch.no_grad():
        x = torch.from_numpy(reference).permute(2, 0, 1)[None] * 2 - 1
        expected = ((generator.eval()(x) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(image, expected, atol=1e-5)
    tiled = synthesize_image(reference, str(tmp_path / "g.pt"), patch_size=32, patch_stride=32, device="cpu")
    assert np.abs(tiled - image).max() > 1e-3  # per-tile instance norm differs from the whole image's
    odd = synthesize_image(reference[:70, :90], str(tmp_path / "g.pt"), patch_size=32, patch_stride=32,
                           device="cpu", whole_image=True)
    assert odd.shape == (70, 90, 3)  # sides not divisible by 4 are padded and cropped back
    save_generator(tmp_path / "r.pt", generator.state_dict(),
                   CycleGANSettings(ngf=4, n_blocks=1, ndf=4, preprocess="resize_crop"))
    with pytest.raises(ValueError, match=r"r\.pt: whole-image synthesis needs a generator trained with preprocess native"):
        synthesize_image(reference, str(tmp_path / "r.pt"), patch_size=32, patch_stride=32, device="cpu",
                         whole_image=True)
