"""Synthesis: restyle the reference image with a trained generator, patch by patch."""

from __future__ import annotations

import numpy as np

from cyclesynth.synthesis.cyclegan import load_generator, translate_patches
from cyclesynth.synthesis.blending import blend_patches
from cyclesynth.data.patches import extract_patches


def synthesize_image(
    reference: np.ndarray,
    generator_path: str,
    *,
    patch_size: int,
    patch_stride: int,
    device,
    fov: np.ndarray | None = None,
) -> np.ndarray:
    """Translate the reference's tiles and stitch them back into one image.

    ``patch_stride`` = ``patch_size`` (the paper's): tiles side by side on the plain grid;
    seams between them are expected (the paper's Fig. 3) and harmless while the U-Net re-cuts
    the synthetic image along the same grid. A smaller stride translates overlapping tiles
    and blends them with a smooth window (:func:`cyclesynth.synthesis.blending.blend_patches`), which
    removes the seams. With ``fov`` given, pixels outside it are set to black, as in the real
    images.
    """
    generator, settings = load_generator(generator_path, device)
    patches, grid = extract_patches(reference, patch_size, patch_stride)
    translated = translate_patches(generator, patches, settings, device=device)
    image = np.clip(blend_patches(translated, grid), 0.0, 1.0).astype(np.float32)
    if fov is not None:
        image[~fov] = 0.0
    return image
