"""Self-training: the band of doubt, ignored pixels in the loss and the augmentation, the
pseudo_label step on a tiny model, which images it labels, the config checks, two rounds in the
DAG and the report's lines."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import validate

from cyclesynth.pipeline import config_validation
from cyclesynth.pipeline import dataset_plan, rule_settings, self_training_plan
from cyclesynth.pipeline import workflow_config as wc
from cyclesynth.data.datasets import RoleSettings, assign_roles, plan_drive
from cyclesynth.segmentation.experiments import training_pairs
from cyclesynth.segmentation.augmentation import GeometricSettings, geometric_augment
from cyclesynth.segmentation.pseudo_labels import (
    FILE_VALUES,
    IGNORE,
    band_edges,
    encode,
    pseudo_label,
    pseudo_label_rows,
    read_pseudo_label,
    read_table,
    render_markdown,
    write_pseudo_labels,
)
from cyclesynth.evaluation.segmentation_report import render_segmentations, source_line
from cyclesynth.segmentation.loss import IGNORE_INDEX, weighted_cross_entropy
from cyclesynth.segmentation.settings import UNetSettings
from cyclesynth.segmentation.augmentation import augment_batch
from cyclesynth.segmentation.training import build_model, train_unet
from cyclesynth.segmentation.saved import save_model

torch.set_num_threads(min(2, torch.get_num_threads()))  # a worker's share under xdist
ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(config_validation.SCHEMA)


# ------------------------------------------------------------------------------ the band


def test_band_edges_on_the_weight_corrected_probability():
    # w = 1: the threshold is 0.5 and the band is laid on p itself
    assert band_edges(1.0, 0.1) == pytest.approx((0.4, 0.6), abs=1e-15)
    # band 0: a plain threshold at t = w / (1 + w), for any w
    assert band_edges(10.0, 0.0) == pytest.approx((10 / 11, 10 / 11), abs=1e-15)
    # w = 10, band 0.1: q = 0.6 and 0.4 in p
    low, high = band_edges(10.0, 0.1)
    assert high == pytest.approx(6.0 / 6.4) and low == pytest.approx(4.0 / 4.6)
    assert low < 10 / 11 < high < 1  # t + 0.1 on p would be 1.009: no vessel at all
    with pytest.raises(ValueError, match="0.5"):
        band_edges(10.0, 0.5)
    with pytest.raises(ValueError, match="0.5"):
        band_edges(10.0, -0.1)


def test_thresholding_with_the_band_is_exact_at_the_edges():
    low, high = band_edges(10.0, 0.1)
    p = np.array([0.0, np.nextafter(low, 0), low, 10 / 11, np.nextafter(high, 0), high, 1.0])
    codes = pseudo_label(p, 10.0, 0.1)
    assert codes.tolist() == [0, 0, IGNORE, IGNORE, IGNORE, 1, 1]
    # w = 1: vessel where p >= t + band, background where p < t - band (t = 0.5)
    low, high = band_edges(1.0, 0.2)
    codes = pseudo_label(np.array([np.nextafter(low, 0), low, 0.5, np.nextafter(high, 0), high]), 1.0, 0.2)
    assert codes.tolist() == [0, IGNORE, IGNORE, IGNORE, 1]
    # band 0 ignores nothing: p >= t vessel, below background
    t = 10 / 11
    assert pseudo_label(np.array([np.nextafter(t, 0), t]), 10.0, 0.0).tolist() == [0, 1]


def test_the_file_keeps_the_three_values(tmp_path):
    from cyclesynth.data.images import write_png

    codes = np.array([[0, 1, IGNORE], [IGNORE, 0, 1]], np.uint8)
    encoded = encode(codes)
    assert encoded.tolist() == [[0, 255, 128], [128, 0, 255]]
    assert set(FILE_VALUES.values()) == {0, 128, 255}
    write_png(tmp_path / "x.png", encoded)
    np.testing.assert_array_equal(read_pseudo_label(tmp_path / "x.png"), codes)
    write_png(tmp_path / "bad.png", np.array([[0, 7]], np.uint8))
    from cyclesynth.data.images import ImageReadError

    with pytest.raises(ImageReadError, match="not a pseudo-label"):
        read_pseudo_label(tmp_path / "bad.png")


# ------------------------------------------------------------------------------ the loss


def test_ignored_pixels_are_left_out_of_the_loss():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 8, 8, generator=generator)
    labels = (torch.rand(3, 8, 8, generator=generator) < 0.3).to(torch.uint8)
    ignored = torch.rand(3, 8, 8, generator=generator) < 0.4
    with_ignored = torch.where(ignored, torch.full_like(labels, IGNORE_INDEX), labels)
    kept_logits = logits.permute(0, 2, 3, 1)[~ignored]  # (M, 2): the other pixels only
    kept = weighted_cross_entropy(kept_logits[:, :, None, None], labels[~ignored][:, None, None], 10.0)
    got = weighted_cross_entropy(logits, with_ignored, 10.0)
    assert got.item() == pytest.approx(kept.item(), rel=1e-6)
    assert got.item() != pytest.approx(weighted_cross_entropy(logits, labels, 10.0).item(), rel=1e-3)


def test_training_accepts_ignored_pixels_and_skips_patches_with_no_other():
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype(np.float32)
    label = (rng.random((32, 32)) < 0.2).astype(np.uint8)
    label[:16, :16] = IGNORE  # one of the four 16-px patches is all ignored
    label[16:, 16:20] = IGNORE
    settings = UNetSettings(base_channels=4, depth=2, patch_size=16, patch_stride=16, batch_size=4, epochs=1,
                            augment="photometric_geometric")
    result = train_unet([image, image], [label, label > 0], None, settings, device="cpu", seed=0, log=lambda m: None)
    assert result.n_patches == 3 + 4 and np.isfinite(result.history["loss"]).all()
    with pytest.raises(ValueError, match="not binary"):
        train_unet([image], [label.clip(0, 7)], None, settings, device="cpu", seed=0, log=lambda m: None)


# ------------------------------------------------------------------------------ augmentation


def _labels_with_ignored(n=8, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, size, size, generator=generator) < 0.2).to(torch.uint8)
    labels[:, 8:20, 10:24] = IGNORE  # a block of doubt
    images = torch.rand(n, 3, size, size, generator=generator)
    return images, labels


@pytest.mark.parametrize("mode", ["flips", "photometric", "geometric", "photometric_geometric"])
def test_every_augment_mode_keeps_255_as_255(mode):
    images, labels = _labels_with_ignored()
    _, out = augment_batch(images, labels, mode, torch.Generator().manual_seed(1), GeometricSettings())
    assert set(torch.unique(out).tolist()) <= {0, 1, IGNORE}
    assert (out == IGNORE).any()
    if mode in ("flips", "photometric"):  # flips and quarter turns move pixels, count kept
        assert int((out == IGNORE).sum()) == int((labels == IGNORE).sum())


def test_the_geometric_warp_carries_the_ignored_block():
    images, labels = _labels_with_ignored()
    turn = GeometricSettings(rotation=0, scale_min=1, scale_max=1, elastic_alpha=0, probability=1)
    _, same = geometric_augment(images, labels, turn, torch.Generator().manual_seed(0))
    assert torch.equal(same, labels)  # the identity transform changes nothing, 255 included
    _, out = geometric_augment(images, labels, GeometricSettings(probability=1), torch.Generator().manual_seed(2))
    ignored = (out == IGNORE).float().mean(dim=(1, 2))
    before = float((labels[0] == IGNORE).float().mean())
    # a moved block of about the same area (scale 0.8-1.25 changes it by up to 1.56x)
    assert bool(((ignored > before / 1.8) & (ignored < before * 1.8)).all())
    # a label without ignored pixels gives the warp's result of before (no 255 appears)
    plain = torch.where(labels == IGNORE, torch.zeros_like(labels), labels)
    _, out_plain = geometric_augment(images, plain, GeometricSettings(probability=1), torch.Generator().manual_seed(2))
    assert not (out_plain == IGNORE).any()
    _, out_bool = geometric_augment(images, plain.bool(), GeometricSettings(probability=1),
                                    torch.Generator().manual_seed(2))
    assert torch.equal(out_bool, out_plain.bool())


# ------------------------------------------------------------------------------ which images


def _index(include_test: bool, validation=()):
    table = dataset_plan.phantom_table({"dataset": {"phantom": {"n_test": 2, "n_training": 4}}})
    return assign_roles(table, RoleSettings(include_test_as_unlabeled=include_test, validation=tuple(validation)))


def test_validation_and_test_images_are_never_pseudo_labeled_unless_transductive():
    index = _index(False, validation=["04"])
    rows = pseudo_label_rows(index)
    assert rows["id"].tolist() == ["05", "06"]  # 03 the reference, 04 validation, 01/02 tests
    rows = pseudo_label_rows(_index(True, validation=["04"]))
    assert rows["id"].tolist() == ["05", "06", "01", "02"]
    assert "04" not in rows["id"].tolist() and "03" not in rows["id"].tolist()


def test_the_pseudo_label_step_on_a_tiny_model(tmp_path):
    from cyclesynth.data.phantom.io import write_phantom_dataset

    write_phantom_dataset(tmp_path / "data", n_training=3, n_test=2, height=40, width=40, seed=3)
    index = assign_roles(plan_drive(tmp_path / "data"), RoleSettings(validation=("04",)))
    settings = UNetSettings(base_channels=4, depth=2, patch_size=16, patch_stride=16)
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", build_model(settings).state_dict(), settings)
    out = tmp_path / "pseudo"
    messages = []
    table = write_pseudo_labels(tmp_path / "model.pt", index, out, band=0.1, stride=8, tta=True, log=messages.append)
    assert table["id"].tolist() == ["05"]  # 03 reference, 04 validation, tests not unlabeled
    assert sorted(p.name for p in out.iterdir()) == ["05_probability.png", "05_pseudo_label.png", "pseudo_labels.tsv"]
    probability = iio.imread(out / "05_probability.png")
    codes = read_pseudo_label(out / "05_pseudo_label.png")
    assert probability.dtype == np.uint16 and probability.shape == codes.shape == (40, 40)
    low, high = band_edges(10.0, 0.1)
    written = read_table(out / "pseudo_labels.tsv")
    assert written.columns.tolist()[:7] == ["id", "role", "image", "probability", "pseudo_label", "vessel_fraction",
                                            "ignored_fraction"]
    assert written["vessel_fraction"].item() == pytest.approx((codes == 1).mean(), abs=1e-6)
    assert written["ignored_fraction"].item() == pytest.approx((codes == IGNORE).mean(), abs=1e-6)
    assert written["low"].item() == pytest.approx(low, abs=1e-6) and written["high"].item() == pytest.approx(high, abs=1e-6)
    p = probability / 65535.0  # the codes follow the map (up to its 16-bit rounding)
    assert ((p >= high + 1e-4) <= (codes == 1)).all() and ((p < low - 1e-4) <= (codes == 0)).all()
    assert any("band 0.1" in m and "stride 8" in m for m in messages)
    # the student's training set: the reference, then the pseudo-labeled image with its own FOV
    pairs = training_pairs(index, "pseudo_labels", pseudo_labels=written)
    assert [p.pseudo for p in pairs] == [False, True]
    assert pairs[1].label == str(out / "05_pseudo_label.png") and pairs[1].fov.endswith("05_training_mask.gif")


# ------------------------------------------------------------------------------ config


def load(path="config/config.yaml") -> dict:
    config = yaml.safe_load((ROOT / path).read_text())
    validate(config, SCHEMA, set_default=True)
    return config


def student(teacher, **more):
    return {"training_set": "pseudo_labels", "pseudo_labels": {"teacher": teacher, **more}}


@pytest.mark.parametrize(
    "experiments, message",
    [
        ({"s": student("nobody")}, r"experiments.s.pseudo_labels.teacher: 'nobody' is not an experiment"),
        ({"s": student("all_labels")}, r"experiments.s.pseudo_labels.teacher: 'all_labels' trains on every label"),
        ({"s": student("frangi")}, r"experiments.s.pseudo_labels.teacher: 'frangi' is the zero-label"),
        ({"s": student("t"), "t": student("s")}, r"the teachers form a cycle \(s -> t -> s\)"),
        ({"s": student("s")}, r"cycle \(s -> s\)"),
        ({"s": {"training_set": "pseudo_labels"}}, r"experiments.s.pseudo_labels: required for training_set"),
        ({"s": {"training_set": "reference_only", "pseudo_labels": {"teacher": "synthetic"}}},
         r"experiments.s.pseudo_labels only applies"),
        ({"s": student("synthetic", band=0.1), "u": student("synthetic", band=0.2)}, r"different bands: s 0.1, u 0.2"),
        ({"s": student("synthetic", init="teachers")}, r"experiments.s.pseudo_labels.init \('teachers'\) must be"),
    ],
)
def test_bad_self_training_names_the_key(experiments, message):
    config = load()
    config["experiments"].update(copy.deepcopy(experiments))
    if "init" not in str(experiments):  # the schema's enum already refuses a bad init
        validate(config, SCHEMA, set_default=True)
    with pytest.raises(wc.ConfigError, match=message):
        wc.check_config(config)


def test_the_schema_checks_init():
    config = load()
    config["experiments"]["self_trained"]["pseudo_labels"]["init"] = "teachers"
    with pytest.raises(Exception, match="teachers"):
        validate(config, SCHEMA, set_default=True)
    config["experiments"]["self_trained"]["pseudo_labels"]["init"] = "teacher"
    validate(config, SCHEMA, set_default=True)
    assert self_training_plan.starts_from_teacher(config, "self_trained")
    del config["experiments"]["self_trained"]["pseudo_labels"]["init"]
    assert not self_training_plan.starts_from_teacher(config, "self_trained")
    assert not self_training_plan.starts_from_teacher(config, "reference_only")


def test_the_schema_checks_the_band():
    config = load()
    config["experiments"]["self_trained"]["pseudo_labels"]["band"] = 0.5
    with pytest.raises(Exception, match="0.5"):
        validate(config, SCHEMA, set_default=True)


def test_final_experiment_is_the_default_segmentation_and_is_checked():
    config = load()
    wc.check_config(config)
    assert config["final_experiment"] == "self_trained"
    assert rule_settings.segmentation_experiments(config) == ["self_trained"]
    assert rule_settings.segmentation_source(config) == "final_experiment"
    config["segmentation"]["experiments"] = ["synthetic"]
    assert rule_settings.segmentation_experiments(config) == ["synthetic"]
    assert rule_settings.segmentation_source(config) == "segmentation.experiments"
    config["segmentation"]["experiments"] = None
    config["final_experiment"] = "best"
    with pytest.raises(wc.ConfigError, match="config key final_experiment: 'best' is not an experiment; experiments"):
        wc.check_config(config)
    for preset in ("drive.yaml", "drive-gpu.yaml"):
        assert load(f"config/{preset}")["final_experiment"] == "self_trained_2"
    # drive-cpu's: chosen on its validation images 37-40 (docs/measurements.md), the student
    # of reference_geometric_long
    drive_cpu = load("config/drive-cpu.yaml")
    assert drive_cpu["final_experiment"] == "self_trained"
    assert drive_cpu["experiments"]["self_trained"]["pseudo_labels"]["teacher"] == "reference_geometric_long"
    # a config without the key: as earlier versions (synthetic where it exists)
    bare = {"experiments": {"synthetic": {"training_set": "synthetic"}, "x": {"training_set": "reference_only"}}}
    validate(bare, SCHEMA, set_default=True)
    assert bare["final_experiment"] is None and rule_settings.segmentation_experiments(bare) == ["synthetic"]
    assert rule_settings.segmentation_source(bare) == "default"


def test_paired_order_puts_students_before_their_teachers():
    config = load("config/drive.yaml")
    wc.check_config(config | {"dataset": {**config["dataset"], "root": "x"}})
    one_label = [n for n, e in config["experiments"].items() if e["training_set"] != "all_labels"]
    order = self_training_plan.paired_order(config, one_label)
    assert order[:2] == ["self_trained_2", "self_trained"]
    assert order[2:] == [n for n in one_label if not n.startswith("self_trained")]  # as listed
    assert self_training_plan.teachers(config) == ["reference_augmented", "self_trained"]
    assert self_training_plan.teacher_band(config, "self_trained") == 0.1
    assert not rule_settings.uses_synthetic({"experiments": {"s": student("r")}, "dataset": {}})


def test_teaching_depth_puts_the_teachers_chain_first():
    """The workflow's priority for train_unet and pseudo_label: how many rounds build on an
    experiment, so the longest chain of the DAG starts before U-Nets nothing waits for."""
    demo = load()
    assert self_training_plan.teaching_depth(demo, "reference_augmented") == 1
    assert self_training_plan.teaching_depth(demo, "self_trained") == 0
    assert self_training_plan.teaching_depth(demo, "all_labels") == 0
    two_rounds = load("config/drive.yaml")
    assert self_training_plan.teaching_depth(two_rounds, "reference_augmented") == 2
    assert self_training_plan.teaching_depth(two_rounds, "self_trained") == 1
    assert self_training_plan.teaching_depth(two_rounds, "self_trained_2") == 0
    # two students of one teacher: the deeper branch counts
    branched = {"experiments": {"t": {"training_set": "reference_only"}, "a": student("t"),
                                "b": student("t"), "c": student("b")}}
    assert [self_training_plan.teaching_depth(branched, n) for n in "tabc"] == [2, 0, 1, 0]


# ------------------------------------------------------------------------------ the DAG


@pytest.mark.slow
def test_two_rounds_in_the_dag(tmp_path):
    """Through the snakemake command: a second round taught by the tiny run's self_trained;
    its pseudo_label job waits for self_trained's U-Net, which waits for reference_only's
    pseudo-labels, which wait for reference_only's U-Net."""
    from helpers import planned_jobs, snakemake

    second = tmp_path / "second.yaml"
    second.write_text(
        "experiments:\n  self_trained_2:\n    training_set: pseudo_labels\n"
        "    pseudo_labels: {teacher: self_trained, band: 0.1}\n    epochs: 2\n"
    )
    configs = [ROOT / "tests/data/tiny.yaml", second]
    jobs = planned_jobs(snakemake(tmp_path, "-n", configfile=configs).stdout)
    assert jobs["pseudo_label"] == 2 and jobs["train_unet"] == 5
    dag = snakemake(tmp_path, "--dag", "dot", "results/unet/self_trained_2/model.pt", configfile=configs).stdout
    nodes = {}
    for number, label in re.findall(r'^\s*(\d+)\[label = "([^"]*)"', dag, re.M):
        nodes[number] = label.replace("\\n", " ")
    edges = {(nodes[a], nodes[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dag, re.M)}

    def node(rule, value):
        return next(label for label in nodes.values() if label == f"{rule} {value}")

    chain = [
        node("train_unet", "experiment: reference_only"),
        node("pseudo_label", "teacher: reference_only"),
        node("train_unet", "experiment: self_trained"),
        node("pseudo_label", "teacher: self_trained"),
        node("train_unet", "experiment: self_trained_2"),
    ]
    for before, after in zip(chain, chain[1:]):
        assert (before, after) in edges, (before, after)


def test_a_student_that_starts_from_its_teacher_waits_for_its_model(tmp_path):
    """init: teacher (the tiny config's self_trained) puts the teacher's model.pt among the
    student's inputs and passes it as --init-model; init: scratch does neither."""
    from helpers import snakemake

    scratch = tmp_path / "scratch.yaml"
    scratch.write_text(
        "experiments:\n  self_trained:\n    training_set: pseudo_labels\n"
        "    pseudo_labels: {teacher: reference_only, init: scratch}\n    epochs: 2\n"
    )
    target = "results/unet/self_trained/model.pt"
    tiny = ROOT / "tests/data/tiny.yaml"
    shell = snakemake(tmp_path, "-n", "-p", target, configfile=[tiny]).stdout
    student = next(line for line in shell.splitlines() if "train-unet" in line and "self_trained" in line)
    assert "--init-model results/unet/reference_only/model.pt" in student
    plain = snakemake(tmp_path, "-n", "-p", target, configfile=[tiny, scratch]).stdout
    assert "--init-model" not in plain and "train-unet" in plain
    dag = snakemake(tmp_path, "--dag", "dot", target, configfile=[tiny]).stdout
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "([^"]*)"', dag, re.M))
    edges = {(nodes[a].replace("\\n", " "), nodes[b].replace("\\n", " ")) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dag, re.M)}
    assert ("train_unet experiment: reference_only", "train_unet experiment: self_trained") in edges


def _tiny_pairs(n=2, size=32, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]
    labels = [rng.random((size, size)) < 0.2 for _ in range(n)]
    return images, labels


def test_training_from_starting_weights(tmp_path):
    """A U-Net started from a teacher's weights begins at them (a tiny learning rate barely
    moves them; a fresh one differs), its checkpoint is not resumed by a run from other
    weights, and a model of another architecture is refused with the file's name."""
    from cyclesynth.segmentation.saved import load_starting_weights
    from cyclesynth.segmentation.training import state_fingerprint, training_fingerprint

    images, labels = _tiny_pairs()
    settings = UNetSettings(base_channels=4, depth=2, patch_size=16, patch_stride=16, batch_size=4, epochs=1)
    teacher = train_unet(images, labels, None, settings, device="cpu", seed=1, log=lambda m: None)
    path = tmp_path / "teacher.pt"
    save_model(path, teacher.state, settings)
    start = load_starting_weights(path, settings)
    assert state_fingerprint(start) == state_fingerprint(teacher.state)

    tiny_lr = UNetSettings(**{**settings.to_dict(), "lr": 1e-9})
    messages = []
    tuned = train_unet(images, labels, None, tiny_lr, device="cpu", seed=2, init_state=start, log=messages.append)
    fresh = train_unet(images, labels, None, tiny_lr, device="cpu", seed=2, log=lambda m: None)
    name = next(k for k, v in start.items() if v.ndim == 4)  # the first convolution's weights
    assert torch.allclose(tuned.state[name], start[name], atol=1e-6)
    assert not torch.allclose(fresh.state[name], start[name], atol=1e-3)
    assert any("starting from the given weights" in m for m in messages)

    plain = training_fingerprint(images, labels, None, settings, 2, precision="float32")
    assert plain != training_fingerprint(images, labels, None, settings, 2, precision="float32",
                                         init=state_fingerprint(start))
    other = {k: v + 1 if v.dtype.is_floating_point else v for k, v in start.items()}
    assert state_fingerprint(other) != state_fingerprint(start)

    checkpoint = tmp_path / "student.ckpt"
    two = UNetSettings(**{**settings.to_dict(), "epochs": 2, "checkpoint_every": 1})
    train_unet(images, labels, None, two, device="cpu", seed=3, init_state=start, checkpoint_path=checkpoint,
               log=lambda m: None)
    same, changed = [], []
    train_unet(images, labels, None, two, device="cpu", seed=3, init_state=start, checkpoint_path=checkpoint,
               log=same.append)
    train_unet(images, labels, None, two, device="cpu", seed=3, init_state=other, checkpoint_path=checkpoint,
               log=changed.append)
    assert any("resuming" in m for m in same) and not any("resuming" in m for m in changed)

    wider = UNetSettings(**{**settings.to_dict(), "base_channels": 8})
    with pytest.raises(ValueError, match=r"teacher.pt: cannot start from this U-Net.*base_channels 4 \(this U-Net: 8\)"):
        load_starting_weights(path, wider)
    with pytest.raises(ValueError, match="do not fit"):
        train_unet(images, labels, None, wider, device="cpu", seed=2, init_state=start, log=lambda m: None)


# ------------------------------------------------------------------------------ the report


def test_the_report_says_who_segmented_and_why():
    assert source_line(["self_trained"], "final_experiment") == (
        "Segmentations from `self_trained`: the config's final_experiment."
    )
    assert source_line(["a", "b"], "segmentation.experiments") == (
        "Segmentations from `a`, `b`: set by segmentation.experiments."
    )
    index = pd.DataFrame({"id": ["01"], "role": ["test"], "label": [""]})
    text = render_segmentations(index, {}, {}, segmented_by={"experiments": ["s"], "source": "final_experiment"})
    assert "Segmentations from `s`: the config's final_experiment." in text


def test_the_self_training_section_and_the_transductive_note():
    table = pd.DataFrame({"id": ["04", "05"], "vessel_fraction": [0.1, 0.2], "ignored_fraction": [0.05, 0.15]})
    students = {"self_trained": {"teacher": "reference_augmented", "band": 0.1, "include_synthetic": False}}
    labels = {"self_trained": "1 ground truth + self-training", "reference_augmented": "augmented"}
    text = render_markdown(students, {"reference_augmented": table}, labels, transductive=False)
    assert "## Self-training" in text and "transductive" not in text
    assert ("| 1 ground truth + self-training (`self_trained`) | augmented (`reference_augmented`) | 0.1 | no "
            "| scratch | 2 | 0.150 | 0.100 |") in text
    students["self_trained"]["init"] = "teacher"
    text = render_markdown(students, {"reference_augmented": table}, labels, transductive=False)
    assert "| 0.1 | no | its teacher | 2 |" in text
    text = render_markdown(students, {"reference_augmented": table}, labels, transductive=True)
    assert "This run is transductive: dataset.include_test_as_unlabeled is true" in text


@pytest.mark.slow
def test_test_images_are_pseudo_labeled_only_in_a_transductive_run(tmp_path):
    from helpers import snakemake

    plain = snakemake(tmp_path, "-n", "-p").stdout
    assert "results/pseudo_labels/reference_only/04_pseudo_label.png" in plain and "01_pseudo_label" not in plain
    assert '"transductive": false' in plain
    transductive = snakemake(tmp_path, "-n", "-p", "--config", "dataset={include_test_as_unlabeled: true}").stdout
    assert "results/pseudo_labels/reference_only/01_pseudo_label.png" in transductive
    assert '"transductive": true' in transductive
