"""Training sets for the U-Net experiments.

An experiment (config section ``experiments``) names one of these training sets:

* ``all_labels``: every training image that has a label (DRIVE: all 20).
* ``synthetic``: every kept synthetic image, each paired with the reference's label and FOV
  mask; with ``include_reference`` the reference itself is added.
* ``reference_only``: the reference image alone.
* ``pseudo_labels`` (self-training, :mod:`cyclesynth.segmentation.pseudo_labels`): the reference with its
  label, then every image of the teacher's pseudo-label table with its pseudo-label (pixels in
  the band of doubt ignored by the loss), then, with ``include_synthetic``, the kept synthetic
  images with the reference's label (as ``synthetic``). A pseudo-labeled image keeps its own
  FOV mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd

from cyclesynth.data.datasets import DatasetError, reference_row
from cyclesynth.synthesis.quality_filter import normalise_quality

TRAINING_SETS = ("all_labels", "synthetic", "reference_only", "pseudo_labels")


@dataclass(frozen=True)
class TrainingPair:
    image: str
    label: str
    fov: str
    pseudo: bool = False  # the label is a pseudo-label (cyclesynth.segmentation.pseudo_labels.read_pseudo_label)


class EmptyTrainingSet(DatasetError):
    """A training set selected no image."""


def derive_seed(seed: int, *names: str) -> int:
    """A stable per-job seed from the config seed and job names (e.g. the image id)."""
    digest = hashlib.sha256("/".join([str(seed), *map(str, names)]).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def training_pairs(
    index: pd.DataFrame,
    training_set: str,
    *,
    quality: pd.DataFrame | None = None,
    include_reference: bool = False,
    pseudo_labels: pd.DataFrame | None = None,
    include_synthetic: bool = False,
) -> list[TrainingPair]:
    """The (image, label, FOV) files an experiment trains on (``pseudo_labels``: the teacher's
    table, :func:`cyclesynth.segmentation.pseudo_labels.read_table`, for that training set)."""
    if training_set not in TRAINING_SETS:
        raise ValueError(f"unknown training set '{training_set}'; known: {', '.join(TRAINING_SETS)}")
    reference = reference_row(index)
    as_pair = lambda image: TrainingPair(image, reference["label"], reference["fov"])  # noqa: E731
    if training_set == "reference_only":
        return [as_pair(reference["image"])]
    if training_set == "all_labels":
        # every labeled training image but the held-out validation ones
        labeled = index[(index["split"] == "training") & (index["label"] != "") & (index["role"] != "validation")]
        return [TrainingPair(r.image, r.label, r.fov) for r in labeled.itertuples()]
    if training_set == "pseudo_labels":
        if pseudo_labels is None:
            raise ValueError("the pseudo_labels training set needs the teacher's pseudo-label table")
        fovs = dict(zip(index["id"].astype(str), index["fov"]))
        pairs = [as_pair(reference["image"])]
        pairs += [
            TrainingPair(r.image, r.pseudo_label, fovs.get(str(r.id), ""), pseudo=True)
            for r in pseudo_labels.itertuples()
        ]
        if include_synthetic:
            pairs += training_pairs(index, "synthetic", quality=quality)
        return pairs
    if quality is None:
        raise ValueError("the synthetic training set needs the filter's quality table")
    kept = quality[normalise_quality(quality)["kept"]]
    if kept.empty:
        raise EmptyTrainingSet(
            "the synthetic filter kept no image, so the 'synthetic' experiment has nothing to train on.\n"
            "Per-image MSE against the reference (config keys filter.max_mse, filter.normalize):\n"
            + quality[["image", "mse", "kept", "reason"]].to_string(index=False)
        )
    pairs = [as_pair(path) for path in kept["synthetic"]]
    if include_reference:
        pairs.insert(0, as_pair(reference["image"]))
    return pairs
