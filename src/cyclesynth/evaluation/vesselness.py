"""The zero-label floor: Frangi vesselness on the green channel.

A one-label method has to beat what needs no label at all. This baseline scores each test
image with the Frangi filter (scikit-image, ``black_ridges=True``: vessels are darker than
the background) on the green channel, where fundus vessels have the most contrast:

* Pixels outside the FOV are first filled with the value of the nearest FOV pixel, so that
  the dark surround does not make the FOV border the strongest "vessel" (and does not set
  the filter's automatic structureness scale). The response outside the FOV is 0.
* The score of a pixel is the rank of its vesselness among the image's FOV pixels, as a
  fraction in (0, 1] (ties share their mean rank), 0 outside the FOV. Ranks keep the AUC of
  the vesselness exactly, fit the workflow's 16-bit probability maps without losing the
  many small responses, and make one threshold mean the same thing on every image: call the
  top (1 - t) of the FOV vessel. Frangi's response scale follows each image's contrast; the
  fraction of vessel pixels in the FOV varies much less between fundus images.
* The threshold t is chosen on the reference image only: the score threshold that
  maximises F1 against the reference's label within its FOV. No test label is used. (F1,
  not accuracy: with ~10 % vessel pixels and a weak filter, the accuracy-best threshold can
  be "nothing is vessel", which a floor row must not be.)
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.stats import rankdata
from skimage.filters import frangi

#: Name of the baseline in the metrics tables (results/metrics/frangi.tsv).
EXPERIMENT = "frangi"
#: threshold_name of its rows: the threshold was chosen on the reference.
THRESHOLD_NAME = "reference"


def fill_outside(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``image`` with every pixel outside ``region`` set to its nearest pixel inside."""
    region = np.asarray(region, dtype=bool)
    if region.all():
        return np.asarray(image, dtype=np.float64).copy()
    if not region.any():
        raise ValueError("the FOV mask is empty")
    indices = distance_transform_edt(~region, return_distances=False, return_indices=True)
    return np.asarray(image, dtype=np.float64)[indices[0], indices[1]]


def green_vesselness(rgb: np.ndarray, fov: np.ndarray, sigmas) -> np.ndarray:
    """Frangi vesselness of the green channel (dark ridges), 0 outside the FOV."""
    rgb = np.asarray(rgb, dtype=np.float64)
    green = rgb[..., 1] if rgb.ndim == 3 else rgb
    filled = fill_outside(green, fov)
    response = frangi(filled, sigmas=list(sigmas), black_ridges=True)
    response = np.where(np.asarray(fov, dtype=bool), np.nan_to_num(response), 0.0)
    return response


def rank_score(values: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """Rank of each FOV pixel's value among the FOV's, as a fraction in (0, 1]; 0 outside."""
    fov = np.asarray(fov, dtype=bool)
    score = np.zeros(values.shape, dtype=np.float64)
    inside = values[fov]
    if inside.size:
        score[fov] = rankdata(inside, method="average") / inside.size
    return score


def best_threshold(score: np.ndarray, truth: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """The threshold t (pixels with score >= t are vessel) that maximises F1 within
    ``region``, and that F1. Candidates are the distinct scores; ties go to the highest t
    (fewest vessel pixels). Without any vessel pixel in the region, F1 is undefined: the
    threshold then lies above every score (nothing is vessel) and the F1 returned is 1."""
    region = np.asarray(region, dtype=bool)
    s = np.asarray(score, dtype=np.float64)[region]
    t = np.asarray(truth, dtype=bool)[region]
    if s.size == 0:
        raise ValueError("empty region: no threshold can be chosen")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    if not t.any():
        return float(np.nextafter(s[0], np.inf)), 1.0
    # cut after the last of each run of equal scores: pixels 0..k are called vessel
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tp = np.cumsum(t)[last]
    called = last + 1
    f1 = 2 * tp / (called + t.sum())
    best = int(np.flatnonzero(f1 == f1.max())[0])
    return float(s[last[best]]), float(f1[best])


def score_test_images(index, sigmas, out_dir, *, log=print):
    """The baseline's scores (the ``frangi`` subcommand): the threshold that maximises the F1
    of the reference's rank score within its FOV, then every labeled test image's rank score
    written as a probability map (``{id}_probability.png``) and a mask (``{id}.png``) into
    ``out_dir`` and scored at that threshold; returns the metrics rows (experiment
    :data:`EXPERIMENT`, threshold :data:`THRESHOLD_NAME`)."""
    from pathlib import Path

    import pandas as pd

    from cyclesynth.data.datasets import reference_row, scored_tests
    from cyclesynth.data.images import read_binary, read_fov, read_rgb, write_png, write_probability
    from cyclesynth.evaluation.metrics import evaluate_probabilities, scored_regions

    reference = reference_row(index)
    reference_label = read_binary(reference["label"])
    fov = read_fov(reference["fov"], reference_label.shape)
    score = rank_score(green_vesselness(read_rgb(reference["image"]), fov, sigmas), fov)
    threshold, f1 = best_threshold(score, reference_label, fov)
    log(f"reference {reference['id']}: threshold {threshold:.4f} (top {1 - threshold:.1%} of the FOV), "
        f"F1 {f1:.4f} within its FOV; sigmas {sigmas}")
    out, rows = Path(out_dir), []
    for row in scored_tests(index).itertuples():
        truth = read_binary(row.label)
        fov = read_fov(row.fov, truth.shape)
        score = rank_score(green_vesselness(read_rgb(row.image), fov, sigmas), fov)
        write_probability(out / f"{row.id}_probability.png", score)
        write_png(out / f"{row.id}.png", score >= threshold)
        for result in evaluate_probabilities(score, truth, scored_regions(fov), {THRESHOLD_NAME: threshold}):
            rows.append({"experiment": EXPERIMENT, "image": row.id, **result})
    return pd.DataFrame(rows)
