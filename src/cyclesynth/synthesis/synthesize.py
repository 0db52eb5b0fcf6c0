"""Synthesis: restyle the reference image with a trained generator, tile by tile or whole."""

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
    whole_image: bool = False,
) -> np.ndarray:
    """Translate the reference's tiles and stitch them back into one image, or translate it
    whole.

    ``patch_stride`` = ``patch_size`` (the paper's): tiles side by side on the plain grid;
    seams between them are expected (the paper's Fig. 3) and harmless while the U-Net re-cuts
    the synthetic image along the same grid. A smaller stride translates overlapping tiles
    and blends them with a smooth window (:func:`cyclesynth.synthesis.blending.blend_patches`), which
    hides them (each tile is still translated and instance-normalised on its own).

    ``whole_image``: one pass of the fully convolutional generator over the whole reference
    (``patch_size`` and ``patch_stride`` are not used). There are no tile borders, so no seams
    by construction; the generator's instance normalisation then takes its statistics over
    the whole image where training saw patches. Only for a generator trained on ``native``
    patches (a ``resize_crop`` generator works at ``crop_size``, not at the image's scale).

    With ``fov`` given, pixels outside it are set to black, as in the real images.
    """
    generator, settings = load_generator(generator_path, device)
    if whole_image:
        if settings.preprocess != "native":
            raise ValueError(
                f"{generator_path}: whole-image synthesis needs a generator trained with "
                f"preprocess native, this one has {settings.preprocess!r}"
            )
        translated = translate_patches(generator, reference[None], settings, device=device)[0]
        image = np.clip(translated, 0.0, 1.0).astype(np.float32)
    else:
        patches, grid = extract_patches(reference, patch_size, patch_stride)
        translated = translate_patches(generator, patches, settings, device=device)
        image = np.clip(blend_patches(translated, grid), 0.0, 1.0).astype(np.float32)
    if fov is not None:
        image[~fov] = 0.0
    return image
