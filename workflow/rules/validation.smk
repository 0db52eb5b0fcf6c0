# Validation images (dataset.validation, or the samplesheet role validation): labeled training
# images held out of every CycleGAN, pseudo-label and U-Net, predicted with the test images
# (rule predict) and scored apart: where settings are chosen without the test images.
VALIDATION_PAIRED = [name for name in ONE_LABEL if name != "frangi"]


use rule evaluate as evaluate_validation with:
    output:
        "results/validation/metrics/{experiment}.tsv",
    log:
        "results/logs/evaluate_validation/{experiment}.log",
    benchmark:
        "results/benchmarks/evaluate_validation/{experiment}.tsv"
    params:
        predictions_dir=lambda wildcards, input: os.path.dirname(input.probabilities[0]),
        thresholds=rule_settings.as_json(rule_settings.thresholds(config)),
        role="validation",
        cyclesynth=CYCLESYNTH,


use rule paired_comparison as paired_validation with:
    input:
        metrics=expand(
            "results/validation/metrics/{experiment}.tsv", experiment=VALIDATION_PAIRED
        ),
    output:
        "results/validation/metrics/paired.tsv",
    log:
        "results/logs/paired_validation.log",
    benchmark:
        "results/benchmarks/paired_validation.tsv"
    params:
        metrics=lambda wildcards, input: " ".join(
            f"{e}={p}" for e, p in zip(VALIDATION_PAIRED, input.metrics)
        ),
        cyclesynth=CYCLESYNTH,
