"""Background band statistics, and the phantom's calibration against DRIVE's measured values."""

import numpy as np
import pytest

from cyclesynth.evaluation.image_statistics import at_size, background_bands
from cyclesynth.data.phantom.render import generate_phantom


def disc_image(size=160, noise=0.0, vessel_darkening=0.2, seed=0):
    yy, xx = np.mgrid[:size, :size]
    fov = np.hypot(yy - size / 2, xx - size / 2) < 0.45 * size
    label = (np.abs(yy - size / 2) < 2) & fov  # one horizontal vessel, 4 px wide
    rgb = np.full((size, size, 3), 0.5)
    rgb[label] *= 1 - vessel_darkening
    rgb += np.random.default_rng(seed).normal(0, noise, rgb.shape)
    return rgb, label, fov


def test_flat_background_has_no_texture_and_the_vessel_its_contrast():
    bands = background_bands(*disc_image())
    assert bands.fine < 1e-3 and bands.mid < 0.005  # only the vessel's trace in the local mean
    # the local mean around a vessel includes it, so a 20 % darkening reads a little lower
    assert 0.12 < bands.vessel_contrast < 0.2
    assert background_bands(*disc_image(vessel_darkening=0.4)).vessel_contrast > 2 * bands.vessel_contrast - 0.02


def test_white_noise_lands_mostly_in_the_fine_band():
    bands = background_bands(*disc_image(noise=0.02))
    assert bands.fine > bands.mid > 2 * bands.coarse
    double = background_bands(*disc_image(noise=0.04))
    assert double.fine == pytest.approx(2 * bands.fine, rel=0.1)  # linear in the noise level


def test_bad_input_is_refused():
    rgb, label, fov = disc_image()
    with pytest.raises(ValueError, match="shapes differ"):
        background_bands(rgb, label[:10], fov)
    with pytest.raises(ValueError, match="fewer than 100"):
        background_bands(rgb, label, np.zeros_like(fov))


def test_at_size_resamples_image_label_and_fov():
    rgb, label, fov = disc_image(size=200)
    small, small_label, small_fov = at_size(rgb, label, fov, 100)
    assert small.shape == (100, 100, 3) and small_label.shape == small_fov.shape == (100, 100)
    assert small_fov.sum() == pytest.approx(fov.sum() / 4, rel=0.05)


# Measured by scripts/phantom_realism.py on the 40 DRIVE images resampled to 192 px (min, max).
DRIVE_RANGE = {"fine": (0.0066, 0.0199), "mid": (0.0098, 0.0396), "vessel_contrast": (0.0702, 0.1785)}


def test_phantom_texture_and_contrast_lie_within_drive_range():
    rows = [background_bands(*generate_phantom(1000 + seed, 192, 192)).as_dict() for seed in range(8)]
    for key, (low, high) in DRIVE_RANGE.items():
        median = float(np.median([row[key] for row in rows]))
        assert low <= median <= high, (key, median)
