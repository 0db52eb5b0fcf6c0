"""Geometric augmentation: rotation by any angle, scaling, elastic deformation of image and label."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cyclesynth.segmentation.augmentation import (
    LABEL_THRESHOLD,
    GeometricSettings,
    elastic_displacement,
    geometric_augment,
    sampling_grid,
    warp,
)
from cyclesynth.segmentation.settings import UNetSettings
from cyclesynth.segmentation.augmentation import augment_batch
from cyclesynth.segmentation.training import train_unet, training_fingerprint

torch.set_num_threads(min(2, torch.get_num_threads()))  # a worker's share under xdist

IDENTITY = GeometricSettings(rotation=0, scale_min=1, scale_max=1, elastic_alpha=0, probability=1)


def vessel_batch(n: int = 16, size: int = 32, seed: int = 0):
    """Dark lines on a two-level background: images (n, 3, size, size), labels (n, size, size)
    with label = (red channel below the midpoint), so a moved image must carry its label."""
    from skimage.draw import line_aa

    rng = np.random.default_rng(seed)
    labels = np.zeros((n, size, size), np.uint8)
    for k in range(n):
        for _ in range(5):
            r0, c0, r1, c1 = rng.integers(0, size, 4)
            rr, cc, _ = line_aa(r0, c0, r1, c1)
            labels[k, rr, cc] = 1
            labels[k, np.clip(rr + 1, 0, size - 1), cc] = 1  # 2 px wide
    background = np.array([0.8, 0.5, 0.3])[None, :, None, None]
    images = background * (1 - 0.5 * labels[:, None])
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    return float((a & b).sum()) / max(1, float((a | b).sum()))


def test_identity_settings_leave_image_and_label_unchanged():
    images, labels = vessel_batch()
    out_images, out_labels = geometric_augment(images, labels, IDENTITY, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out_images, images, rtol=0, atol=1e-5)
    assert torch.equal(out_labels, labels) and out_labels.dtype == labels.dtype
    # probability 0: every sample as it was, bit for bit, whatever the other settings
    untouched = geometric_augment(images, labels, GeometricSettings(probability=0), torch.Generator().manual_seed(0))
    assert torch.equal(untouched[0], images) and torch.equal(untouched[1], labels)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_quarter_turn_matches_rot90(turns):
    images, labels = vessel_batch(4, 24)
    images = images + 0.1 * torch.rand(images.shape, generator=torch.Generator().manual_seed(1))
    n = len(images)
    grid = sampling_grid(torch.full((n,), 90.0 * turns), torch.ones(n), None, 24, 24)
    out_images, out_labels = warp(images, labels, grid)
    torch.testing.assert_close(out_images, torch.rot90(images, turns, dims=(-2, -1)).clamp(0, 1), rtol=0, atol=1e-5)
    assert torch.equal(out_labels, torch.rot90(labels, turns, dims=(-2, -1)))


def test_non_square_rotation_by_180_is_a_double_flip():
    images = torch.rand(2, 3, 12, 20, generator=torch.Generator().manual_seed(2))
    labels = (images[:, 1] > 0.5).to(torch.uint8)
    grid = sampling_grid(torch.full((2,), 180.0), torch.ones(2), None, 12, 20)
    out_images, out_labels = warp(images, labels, grid)
    torch.testing.assert_close(out_images, images.flip(-1, -2), rtol=0, atol=1e-5)
    assert torch.equal(out_labels, labels.flip(-1, -2))


def test_scaling_about_the_centre():
    """Scale 2 magnifies: the output's centre pixels come from the central half of the input."""
    size = 16
    images = torch.zeros(1, 3, size, size)
    images[..., 4:12, 4:12] = 1.0  # central square of half the side
    labels = images[:, 0].to(torch.uint8)
    out_images, out_labels = warp(images, labels, sampling_grid(torch.zeros(1), torch.full((1,), 2.0), None, size, size))
    assert out_labels.float().mean() > 0.95  # the square fills (nearly) the whole patch
    shrunk = warp(images, labels, sampling_grid(torch.zeros(1), torch.full((1,), 0.5), None, size, size))[1]
    assert shrunk[0, 6:10, 6:10].all() and not shrunk[0, 3, 3]  # square shrunk to a quarter of the side


def test_image_and_label_move_together():
    images, labels = vessel_batch(32, 32, seed=3)
    settings = GeometricSettings(elastic_alpha=3.0, elastic_sigma=6.0, probability=1.0)
    out_images, out_labels = geometric_augment(images, labels, settings, torch.Generator().manual_seed(4))
    assert not torch.equal(out_labels, labels)
    # red channel: 0.8 background, 0.4 vessel; bilinear sampling of both keeps them consistent
    from_image = (out_images[:, 0] < 0.6).to(torch.uint8)
    assert iou(from_image, out_labels) > 0.99
    # the photometric part comes after the geometric one and leaves the label alone: the
    # labels are those of mode geometric with the same generator seed
    geometric = augment_batch(images, labels, "geometric", torch.Generator().manual_seed(5), settings)
    images2, labels2 = augment_batch(images, labels, "photometric_geometric", torch.Generator().manual_seed(5), settings)
    assert torch.equal(labels2, geometric[1]) and not torch.equal(images2, geometric[0])
    # and the recoloured, blurred, noisy image still shows its label's vessels, not the input's
    brightness = images2.mean(dim=1)
    middle = [(b[y == 1].mean() + b[y == 0].mean()) / 2 for b, y in zip(brightness, labels2)]
    from_image2 = torch.stack([b < m for b, m in zip(brightness, middle)])
    assert iou(from_image2, labels2) > 0.75 > 0.3 > iou(from_image2, labels)


def test_same_generator_seed_gives_the_same_batch_and_another_seed_another():
    images, labels = vessel_batch()
    settings = GeometricSettings()
    first = geometric_augment(images, labels, settings, torch.Generator().manual_seed(7))
    again = geometric_augment(images, labels, settings, torch.Generator().manual_seed(7))
    other = geometric_augment(images, labels, settings, torch.Generator().manual_seed(8))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    for mode in ("geometric", "photometric_geometric"):
        a = augment_batch(images, labels, mode, torch.Generator().manual_seed(9), settings)
        b = augment_batch(images, labels, mode, torch.Generator().manual_seed(9), settings)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), mode


@pytest.mark.parametrize("mode", ["geometric", "photometric_geometric"])
def test_outputs_stay_in_range_and_labels_binary(mode):
    images = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(10))
    images[0] = 1.0
    images[1] = 0.0
    labels = (images[:, 2] > 0.7).to(torch.uint8)
    settings = GeometricSettings(elastic_alpha=5.0, elastic_sigma=3.0, scale_min=0.5, scale_max=2.0)
    out_images, out_labels = augment_batch(images, labels, mode, torch.Generator().manual_seed(11), settings)
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert out_images.dtype == images.dtype and out_labels.dtype == labels.dtype
    assert out_images.min() >= 0 and out_images.max() <= 1 and torch.isfinite(out_images).all()
    assert set(out_labels.unique().tolist()) <= {0, 1}


def test_probability_sets_the_share_of_transformed_samples():
    images, labels = vessel_batch(64, 16, seed=5)
    out, _ = geometric_augment(images, labels, GeometricSettings(probability=0.5), torch.Generator().manual_seed(12))
    changed = sum(not torch.equal(a, b) for a, b in zip(out, images))
    assert 20 <= changed <= 44  # binomial(64, 0.5): mean 32, sd 4


def test_elastic_displacement_has_the_requested_strength_and_smoothness():
    field = elastic_displacement(400, 32, 32, 2.0, 4.0, torch.Generator().manual_seed(13), "cpu")
    assert field.shape == (400, 2, 32, 32)
    assert field.std().item() == pytest.approx(2.0, rel=0.05)
    assert abs(field.mean().item()) < 0.1
    # equally strong at the border as in the middle (noise drawn on a margin, no padding)
    assert field[..., 0].std().item() == pytest.approx(field[..., 16].std().item(), rel=0.1)
    # smooth: correlation of neighbours exp(-1 / (4 sigma^2)) (the field's autocorrelation is a
    # Gaussian of sigma * sqrt(2))
    for lag in (1, 4):
        pairs = torch.stack((field[..., :-lag].flatten(), field[..., lag:].flatten()))
        assert torch.corrcoef(pairs)[0, 1].item() == pytest.approx(math.exp(-(lag**2) / 64), abs=0.03), lag


def test_label_threshold_keeps_vessel_area_under_rotation():
    """The rule that chose LABEL_THRESHOLD: rotations keep the vessel area inside the disc that
    stays within the patch (to a few per cent)."""
    images, labels = vessel_batch(64, 32, seed=6)
    n = len(labels)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disc = ((yy - 15.5) ** 2 + (xx - 15.5) ** 2) <= 14**2
    angles = torch.rand(n, generator=torch.Generator().manual_seed(14)) * 360 - 180
    _, rotated = warp(images, labels, sampling_grid(angles, torch.ones(n), None, 32, 32))
    ratio = float((rotated * disc).sum()) / float((labels * disc).sum())
    assert LABEL_THRESHOLD == 0.5 and ratio == pytest.approx(1.0, abs=0.05)


# ------------------------------------------------------------------------------------------
# settings
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, message",
    [
        ({"scale_min": 0}, r"'geometric.scale_min' must be positive"),
        ({"scale_max": -1}, r"'geometric.scale_max' must be positive"),
        ({"scale_min": 1.5, "scale_max": 1.2}, r"'geometric.scale_min' \(1.5\) exceeds 'geometric.scale_max'"),
        ({"rotation": 200}, r"'geometric.rotation' must be between 0 and 180"),
        ({"elastic_alpha": -1}, r"'geometric.elastic_alpha' must be at least 0"),
        ({"elastic_sigma": 0}, r"'geometric.elastic_sigma' must be positive"),
        ({"probability": 1.5}, r"'geometric.probability' must be between 0 and 1"),
        ({"probability": "often"}, r"'geometric.probability' must be a finite number"),
        ({"rotation": True}, r"'geometric.rotation' must be a finite number"),
        ({"rotation": float("nan")}, r"'geometric.rotation' must be a finite number"),
        ({"shear": 3}, r"unknown U-Net setting\(s\): geometric.shear"),
    ],
)
def test_bad_settings_raise_naming_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        UNetSettings.from_dict({"augment": "geometric", "geometric": values})


def test_settings_round_trip_and_defaults():
    settings = UNetSettings.from_dict({"augment": "photometric_geometric", "geometric": {"rotation": 45}})
    assert settings.geometric == GeometricSettings(rotation=45.0)
    assert UNetSettings.from_dict(settings.to_dict()) == settings
    assert UNetSettings().geometric == GeometricSettings()
    assert UNetSettings().to_dict()["geometric"]["scale_max"] == 1.25
    with pytest.raises(ValueError, match="'geometric' must be a mapping"):
        UNetSettings(geometric=3)
    with pytest.raises(Exception):
        GeometricSettings().rotation = 10  # frozen


def test_fingerprint_has_the_geometric_settings_where_the_mode_uses_them():
    images, labels = [np.zeros((16, 16, 3), np.float32)], [np.zeros((16, 16), bool)]

    def fingerprint(**values):
        return training_fingerprint(images, labels, None, UNetSettings(patch_size=16, patch_stride=16, depth=2,
                                                                       **values), 0)

    changed = {"geometric": {"elastic_alpha": 1.0}}
    assert fingerprint(augment="photometric_geometric") != fingerprint(augment="photometric_geometric", **changed)
    assert fingerprint(augment="geometric") != fingerprint(augment="geometric", **changed)
    # unused by the other modes: their checkpoints stay valid
    assert fingerprint(augment="photometric") == fingerprint(augment="photometric", **changed)


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------


class Killed(Exception):
    pass


def test_training_with_photometric_geometric_is_deterministic_and_resumes_bit_identically(tmp_path):
    images, labels = vessel_batch(2, 32, seed=15)
    images = [im.permute(1, 2, 0).numpy() for im in images]
    labels = [lab.numpy().astype(bool) for lab in labels]
    settings = UNetSettings(base_channels=4, depth=2, patch_size=16, patch_stride=16, batch_size=4, epochs=3,
                            lr=1e-2, checkpoint_every=1, augment="photometric_geometric")

    def quiet(_message):
        pass

    reference = train_unet(images, labels, None, settings, device="cpu", seed=3, log=quiet)
    again = train_unet(images, labels, None, settings, device="cpu", seed=3, log=quiet)
    assert all(torch.equal(reference.state[k], again.state[k]) for k in reference.state)
    assert np.isfinite(reference.history.loss).all()

    checkpoint = tmp_path / "unet.ckpt"

    def dies_after_epoch_2(message: str) -> None:
        if message.startswith("U-Net epoch 2/"):
            raise Killed(message)

    with pytest.raises(Killed):
        train_unet(images, labels, None, settings, device="cpu", seed=3, checkpoint_path=checkpoint,
                   log=dies_after_epoch_2)
    resumed = train_unet(images, labels, None, settings, device="cpu", seed=3, checkpoint_path=checkpoint, log=quiet)
    assert resumed.resumed_from_epoch == 2
    np.testing.assert_array_equal(resumed.history.loss, reference.history.loss)
    assert all(torch.equal(resumed.state[k], reference.state[k]) for k in reference.state)
    # other geometric settings: a new fingerprint, so the checkpoint is not resumed
    other = dataclasses_replace(settings, geometric={"rotation": 10.0})
    assert train_unet(images, labels, None, other, device="cpu", seed=3, checkpoint_path=checkpoint,
                      log=quiet).resumed_from_epoch == 0


def dataclasses_replace(settings: UNetSettings, **changes) -> UNetSettings:
    return UNetSettings.from_dict({**settings.to_dict(), **changes})


def test_mode_lists_agree_with_the_schema_and_the_workflow():
    import yaml

    from helpers import ROOT
    from cyclesynth.pipeline import rule_settings
    from cyclesynth.segmentation.augmentation import AUGMENT_MODES, GEOMETRIC_MODES

    from cyclesynth.pipeline import config_validation

    schema = yaml.safe_load(config_validation.SCHEMA.read_text())
    assert schema["properties"]["unet"]["properties"]["augment"]["enum"] == list(AUGMENT_MODES)
    experiment = schema["properties"]["experiments"]["additionalProperties"]["properties"]["augment"]
    assert experiment["enum"] == [*AUGMENT_MODES, None]
    assert rule_settings.GEOMETRIC_AUGMENT_MODES == GEOMETRIC_MODES
    defaults = {k: v["default"] for k, v in schema["properties"]["unet"]["properties"]["geometric"]["properties"].items()}
    assert GeometricSettings(**defaults) == GeometricSettings()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_a_reproducible_batch_close_to_the_cpu_warp():
    images, labels = vessel_batch(16, 64, seed=16)
    settings = GeometricSettings()
    cuda = torch.device("cuda")
    runs = [augment_batch(images.to(cuda), labels.to(cuda), "photometric_geometric",
                          torch.Generator(device=cuda).manual_seed(17), settings) for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert runs[0][0].device.type == "cuda" and set(runs[0][1].unique().tolist()) <= {0, 1}
    # the same grid warps alike on both devices
    n = len(images)
    angles = torch.linspace(-180, 170, n)
    grid = sampling_grid(angles, torch.linspace(0.8, 1.25, n), None, 64, 64)
    on_cpu = warp(images, labels, grid)
    on_gpu = warp(images.to(cuda), labels.to(cuda), grid.to(cuda))
    torch.testing.assert_close(on_gpu[0].cpu(), on_cpu[0], rtol=0, atol=1e-4)
    assert (on_gpu[1].cpu() != on_cpu[1]).float().mean() < 1e-3
