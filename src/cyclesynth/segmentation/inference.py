"""Predicting a whole image with a trained U-Net: overlapping tiles, blending, test-time augmentation.

The U-Net is trained on ``patch_size`` patches and predicts one tile of that size at a time.
:func:`predict_image` turns the tiles into one vessel-probability map of the whole image:

Tiles (``stride``)
    The image is cut into tiles of ``patch_size`` at ``stride`` on the regular grid of
    :mod:`cyclesynth.data.patches` (reflect-padded at the bottom and right until the grid covers it;
    the padding is cropped off again). ``stride`` = ``patch_size`` is the training grid: tiles
    side by side, each pixel predicted once, and the tile borders can show in the map (the
    network sees less context near a tile's border). A smaller stride overlaps the tiles and
    blends them with :func:`cyclesynth.synthesis.blending.blend_patches`: each tile's probabilities are
    weighted by a separable Hann window with a floor and every pixel is divided by the summed
    weights of the tiles covering it, so the weights sum to one at every pixel, a constant map
    stays constant, and the image's own borders (covered by fewer tiles) keep full weight
    rather than darkening. ``stride`` may be an integer from 1 to ``patch_size`` or ``"half"``
    (``patch_size // 2``, the default of the ``prediction.stride`` setting).

Test-time augmentation (``tta``)
    With ``tta`` the whole image is also predicted in its 7 other dihedral orientations (4
    quarter turns, each with and without a left-right flip; a non-square image turns into a
    W x H one), each map is turned back, and the 8 maps are averaged. A network equivariant to
    these transforms gives the same map with and without.

Images smaller than ``patch_size`` are padded (mirrored) to it first and cropped back. With
``stride`` = ``patch_size`` and no augmentation the result is that of
:func:`predict_probabilities` (the training grid) bit for bit.

The network runs under ``torch.inference_mode`` in eval mode (the model's previous mode is
restored afterwards), in batches of ``batch_size`` tiles cut as they are needed (the image's
tiles are never all held at once; by default :data:`CPU_TILE_BATCH` on the CPU, where small
batches stay in the caches, and :data:`CUDA_TILE_BATCH` on a card), optionally under a
:class:`cyclesynth.runtime.Precision`'s autocast and in channels_last (the model and its tiles;
see :func:`cyclesynth.segmentation.saved.prediction_layout`); the softmax is taken in float32.
The batch size never changes the map. torch is imported on the first prediction only, so
that the workflow can check the settings (:func:`resolve_stride`) without it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from cyclesynth.synthesis.blending import blend_patches
from cyclesynth.data.patches import PatchGrid, grid_for, pad_to_grid, stitch_patches

if TYPE_CHECKING:  # torch is imported where a prediction runs
    import torch

    from cyclesynth.runtime import Precision
    from cyclesynth.segmentation.unet import UNet

#: The ``stride`` that means half the patch size.
HALF = "half"

#: Tiles per forward pass on the CPU (a DRIVE image, drive-cpu's U-Net in bfloat16 +
#: channels_last on one core: 4.7 s at 16 against 5.1 s at 64) and on CUDA.
CPU_TILE_BATCH = 16
CUDA_TILE_BATCH = 64

#: The 8 dihedral transforms as (quarter turns counter-clockwise, then flipped left-right?);
#: the first is the identity.
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((turns, flip) for turns in range(4) for flip in (False, True))


def tile_batch(device, batch_size: int | None) -> int:
    """``batch_size``, or the default for ``device`` when None."""
    if batch_size is not None:
        return int(batch_size)
    return CUDA_TILE_BATCH if str(device).startswith("cuda") else CPU_TILE_BATCH


def resolve_stride(stride: int | str, patch_size: int, key: str = "stride") -> int:
    """The tile step in pixels: ``"half"`` is ``patch_size // 2`` (at least 1); an integer (or
    its digits as text, as from a command line) must lie in 1..``patch_size``. Raises
    ValueError naming ``key`` otherwise."""
    expected = f"expected '{HALF}' (patch size // 2) or an integer from 1 to the patch size {patch_size}"
    if isinstance(stride, str):
        text = stride.strip()
        if text == HALF:
            return max(1, patch_size // 2)
        if not text.isdigit():
            raise ValueError(f"{key} {stride!r}: {expected}")
        stride = int(text)
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)):
        raise ValueError(f"{key} {stride!r}: {expected}")
    if not 1 <= stride <= patch_size:
        raise ValueError(f"{key} {stride}: {expected}")
    return int(stride)


def describe(patch_size: int, stride: int | str, tta: bool) -> str:
    """One sentence for the report saying how the probability maps were predicted."""
    stride = resolve_stride(stride, patch_size)
    if stride >= patch_size:
        tiles = f"tiles of {patch_size} side by side on the training grid (stride {stride}, no overlap)"
    else:
        tiles = f"tiles of {patch_size} at stride {stride} blended with a Hann window"
    augmentation = (
        "test-time augmentation over 8 flips and quarter turns" if tta else "no test-time augmentation"
    )
    return f"Prediction: {tiles}, {augmentation}."


def dihedral(array: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """``array`` (H, W[, C]) turned ``turns`` quarter turns counter-clockwise, then flipped
    left-right when ``flip`` (a view)."""
    out = np.rot90(array, turns, axes=(0, 1))
    return out[:, ::-1] if flip else out


def undo_dihedral(array: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`dihedral` with the same arguments (a view)."""
    out = array[:, ::-1] if flip else array
    return np.rot90(out, -turns, axes=(0, 1))


@contextlib.contextmanager
def evaluating(model, device, channels_last: bool = False):
    """Move ``model`` to ``device`` (in channels_last when ``channels_last``) and put it in eval
    mode; its previous mode is restored afterwards (the layout is kept)."""
    import torch

    was_training = model.training
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def tile_probabilities(
    model,
    image: np.ndarray,
    grid: PatchGrid,
    *,
    device: torch.device | str,
    batch_size: int | None = None,
    precision: Precision | None = None,
    channels_last: bool = False,
) -> np.ndarray:
    """Vessel probability (softmax channel 1, float32) of every tile of ``grid`` over the
    (H, W, C) [0, 1] ``image``, shape (N, size, size) in the grid's order.

    The tiles are cut from the reflect-padded image ``batch_size`` at a time (None: the
    device's default, :func:`tile_batch`), scaled to [-1, 1] and predicted under
    ``torch.inference_mode`` (and ``precision.autocast()`` when given), in channels_last when
    ``channels_last`` (the model must be in that layout, see :func:`evaluating`); the model is
    used as it is.
    """
    import torch

    from cyclesynth.segmentation.settings import normalise

    batch_size = tile_batch(device, batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
    device = torch.device(device)
    padded = pad_to_grid(image, grid)
    s = grid.size
    origins = grid.origins()
    autocast = precision.autocast if precision is not None else contextlib.nullcontext
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(origins), batch_size):
            chunk = np.stack([padded[r : r + s, c : c + s] for r, c in origins[start : start + batch_size]])
            batch = torch.from_numpy(np.ascontiguousarray(chunk.transpose(0, 3, 1, 2))).to(device)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits = model(normalise(batch))
            outputs.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(outputs).astype(np.float32)


def predict_image(
    model,
    image: np.ndarray,
    *,
    patch_size: int,
    stride: int | str,
    tta: bool,
    device: torch.device | str,
    batch_size: int | None = None,
    precision: Precision | None = None,
    channels_last: bool = False,
) -> np.ndarray:
    """Vessel probability of a whole (H, W, C) [0, 1] image of any size: float32 (H, W) in [0, 1].

    Tiles of ``patch_size`` at ``stride`` (an integer in 1..patch_size or ``"half"``),
    blended where they overlap; with ``tta`` the mean over the 8 dihedral orientations of the
    image (module docstring). ``precision`` (a :class:`cyclesynth.runtime.Precision`; None =
    float32) wraps the forward passes in its autocast; ``channels_last`` runs the model and
    its tiles in that layout. The model is moved to ``device`` and evaluated in eval mode; its
    previous mode is restored afterwards.
    """
    import torch

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != model.in_channels:
        raise ValueError(f"expected an image of shape (H, W, {model.in_channels}), got {image.shape}")
    stride = resolve_stride(stride, patch_size)
    device = torch.device(device)
    height, width = image.shape[:2]
    pad = ((0, max(0, patch_size - height)), (0, max(0, patch_size - width)), (0, 0))
    padded = np.pad(image, pad, mode="symmetric") if pad[0][1] or pad[1][1] else image
    padded = padded.astype(np.float32, copy=False)
    total = None
    with evaluating(model, device, channels_last):
        for turns, flip in DIHEDRAL if tta else DIHEDRAL[:1]:
            view = np.ascontiguousarray(dihedral(padded, turns, flip))
            grid = grid_for(view, patch_size, stride)
            tiles = tile_probabilities(
                model, view, grid, device=device, batch_size=batch_size, precision=precision,
                channels_last=channels_last,
            )
            probability = np.clip(blend_patches(tiles, grid), 0.0, 1.0).astype(np.float32)
            if not tta:
                return probability[:height, :width]
            probability = undo_dihedral(probability, turns, flip)
            total = probability.astype(np.float64) if total is None else total + probability
    mean = total / len(DIHEDRAL)
    return np.clip(mean, 0.0, 1.0).astype(np.float32)[:height, :width]


def predict_probabilities(
    model: UNet,
    image: np.ndarray,
    *,
    patch_size: int,
    stride: int,
    device: torch.device | str,
    batch_size: int | None = None,
    precision: Precision | None = None,
) -> np.ndarray:
    """Vessel probability (softmax channel 1) for a whole (H, W, 3) image in [0, 1], on the
    training grid.

    The image is cut on the same patch grid as in training (padded by reflection at the bottom
    and right if needed), scaled to [-1, 1], predicted in batches under ``torch.inference_mode``
    and stitched back (overlaps averaged); returns float32 (H, W) in [0, 1]. The model is moved
    to ``device`` and evaluated in eval mode (its previous mode is restored afterwards). The
    workflow predicts with :func:`predict_image` (blended overlapping
    tiles, test-time augmentation), which with stride = patch size and no augmentation gives
    this function's map bit for bit (both predict the tiles with
    :func:`tile_probabilities`).
    ``precision`` (default float32): the forward passes under its autocast (bfloat16 where the
    model was trained so, :func:`cyclesynth.segmentation.saved.prediction_precision`); the softmax is taken in float32.
    """
    import torch

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != model.in_channels:
        raise ValueError(f"expected an image of shape (H, W, {model.in_channels}), got {image.shape}")
    image = image.astype(np.float32, copy=False)
    grid = grid_for(image, patch_size, stride)
    with evaluating(model, torch.device(device)):
        tiles = tile_probabilities(model, image, grid, device=device, batch_size=batch_size, precision=precision)
    probabilities = stitch_patches(tiles, grid)
    return np.clip(probabilities, 0.0, 1.0).astype(np.float32)
