"""Self-training as the workflow plans it: the students (training set ``pseudo_labels``), their
teachers (one ``pseudo_label`` job each), the rounds, and the checks of their settings."""

from __future__ import annotations

from cyclesynth.errors import ConfigError


def students(config: dict) -> dict[str, dict]:
    """The self-training experiments (training set ``pseudo_labels``), each with its
    ``pseudo_labels`` settings (teacher, band, include_synthetic), in config order."""
    return {
        name: dict(experiment.get("pseudo_labels") or {})
        for name, experiment in config["experiments"].items()
        if experiment["training_set"] == "pseudo_labels"
    }


def teachers(config: dict) -> list[str]:
    """The experiments whose U-Nets pseudo-label the unlabeled images (one pseudo_label job
    each), in the order their first student is listed."""
    return list(dict.fromkeys(str(settings["teacher"]) for settings in students(config).values()))


def teacher_band(config: dict, teacher: str) -> float:
    """The band of the pseudo-labels of ``teacher`` (its students agree on it, check_config)."""
    return float(next(s.get("band", 0.1) for s in students(config).values() if s["teacher"] == teacher))


def starts_from_teacher(config: dict, name: str) -> bool:
    """Whether the student ``name`` starts from its teacher's trained weights
    (``pseudo_labels.init: teacher``) instead of a fresh initialisation."""
    return students(config).get(name, {}).get("init", "scratch") == "teacher"


def transductive(config: dict) -> bool:
    """Whether test images are pseudo-labeled (dataset.include_test_as_unlabeled with a
    self-training experiment)."""
    return bool(config["dataset"]["include_test_as_unlabeled"]) and bool(students(config))


def self_training_round(config: dict, name: str) -> int:
    """0 for an experiment trained on labels or syntheses, 1 + its teacher's round for a
    student (after check_config, which rules out cycles)."""
    rounds = 0
    while config["experiments"][name]["training_set"] == "pseudo_labels":
        name = str(config["experiments"][name]["pseudo_labels"]["teacher"])
        rounds += 1
    return rounds


def teaching_depth(config: dict, name: str) -> int:
    """How many self-training rounds build on ``name``: 0 for an experiment that teaches
    nobody, 1 + the deepest of its students' for a teacher. The workflow's scheduling
    priority for its U-Net and its pseudo-labels: a teacher's chain (its U-Net, its
    pseudo_label job, each student's U-Net) is the longest path through the DAG, so it
    starts first instead of waiting behind U-Nets that nothing else waits for."""
    children = [s for s, settings in students(config).items() if str(settings["teacher"]) == name]
    return max((1 + teaching_depth(config, child) for child in children), default=0)


def paired_order(config: dict, names: list[str]) -> list[str]:
    """``names`` in the paired comparison's order (each pair is a - b, a listed first): later
    self-training rounds first, so that a student comes before its teacher and the other
    experiments (``<student> - <teacher>``, ``<student> - reference_augmented``); otherwise
    as listed."""
    rounds = {n: self_training_round(config, n) if n in config["experiments"] else 0 for n in names}
    return sorted(names, key=lambda n: -rounds[n])


def check_self_training(config: dict) -> None:
    experiments = config["experiments"]
    for name, experiment in experiments.items():
        key = f"config key experiments.{name}.pseudo_labels"
        if experiment["training_set"] != "pseudo_labels":
            if experiment.get("pseudo_labels") is not None:
                raise ConfigError(f"{key} only applies to the pseudo_labels training set")
            continue
        settings = experiment.get("pseudo_labels")
        if not isinstance(settings, dict) or not settings.get("teacher"):
            raise ConfigError(
                f"{key}: required for training_set pseudo_labels, e.g. pseudo_labels: {{teacher: reference_augmented, "
                "band: 0.1, include_synthetic: false}"
            )
        teacher = str(settings["teacher"])
        if teacher == "frangi":
            raise ConfigError(f"{key}.teacher: 'frangi' is the zero-label Frangi baseline, not a U-Net that can teach")
        if teacher not in experiments:
            raise ConfigError(
                f"{key}.teacher: '{teacher}' is not an experiment; experiments are {', '.join(experiments)}"
            )
        if experiments[teacher]["training_set"] == "all_labels":
            raise ConfigError(
                f"{key}.teacher: '{teacher}' trains on every label (all_labels); a teacher must see one label only"
            )
        init = settings.get("init", "scratch")
        if init not in ("scratch", "teacher"):
            raise ConfigError(f"{key}.init ({init!r}) must be scratch or teacher")
        band = settings.get("band", 0.1)
        if isinstance(band, bool) or not isinstance(band, (int, float)) or not 0 <= band < 0.5:
            raise ConfigError(f"{key}.band ({band!r}) must lie in [0, 0.5)")
        chain = [name]
        while experiments[chain[-1]]["training_set"] == "pseudo_labels":
            following = str((experiments[chain[-1]].get("pseudo_labels") or {}).get("teacher"))
            if following not in experiments:
                break  # reported for that experiment
            if following in chain:
                raise ConfigError(
                    f"{key}.teacher: the teachers form a cycle ({' -> '.join(chain + [following])}); "
                    "the first round needs a teacher trained without pseudo-labels"
                )
            chain.append(following)
    for teacher in teachers(config):
        bands = {n: float(s.get("band", 0.1)) for n, s in students(config).items() if s["teacher"] == teacher}
        if len(set(bands.values())) > 1:
            raise ConfigError(
                f"config keys experiments.<name>.pseudo_labels.band: the students of '{teacher}' share its "
                f"pseudo-labels (one pseudo_label job) but ask for different bands: "
                + ", ".join(f"{n} {b:g}" for n, b in bands.items())
            )
