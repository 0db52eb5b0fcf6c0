"""The report's inputs: reading the per-image metrics tables, training histories, the dataset
index, the synthetic images' quality table and the segmentation tables the other stages write."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cyclesynth.data.datasets import read_index
from cyclesynth.synthesis.quality_filter import normalise_quality, read_quality

PathLike = str | os.PathLike

_GROUP = ["experiment", "region", "threshold_name"]


def read_metrics(path: PathLike) -> pd.DataFrame:
    """Read one per-image metrics table (threshold names and image ids stay text)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: metrics table not found")
    frame = pd.read_csv(
        path,
        sep="\t",
        dtype={"experiment": str, "image": str, "region": str, "threshold_name": str},
    )
    missing = set(_GROUP) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: metrics table lacks column(s) {sorted(missing)}")
    return frame


def read_history(path: PathLike) -> pd.DataFrame | None:
    """Read a training history TSV; ``None`` when it is missing or empty."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return None
    return frame if len(frame) else None


def _as_index(index: pd.DataFrame | PathLike) -> pd.DataFrame:
    if isinstance(index, pd.DataFrame):
        frame = index.copy()
        for column in ("id", "split", "image", "label", "fov", "label2", "role"):
            if column not in frame.columns:
                frame[column] = ""
            frame[column] = frame[column].fillna("").astype(str)
        return frame
    return read_index(index)


def _as_quality(quality: pd.DataFrame | PathLike | None) -> pd.DataFrame | None:
    if quality is None:
        return None
    if isinstance(quality, pd.DataFrame):
        return normalise_quality(quality)
    return read_quality(quality)


def read_segmentations(path: PathLike) -> pd.DataFrame:
    from cyclesynth.segmentation.segment import read_table

    return read_table(path)
