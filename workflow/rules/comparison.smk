# The zero-label floor (Frangi vesselness, threshold chosen on the reference) and the paired
# comparison of the one-label experiments over the labeled test images (planned only where
# there are some).
FRANGI = config["frangi"]["enabled"]
TEST_ROWS = INDEX[INDEX["id"].isin(TESTS)]
# Experiments that see one label only (the reference), and the zero-label baseline; later
# self-training rounds first, so that each pair reads <student> - <teacher> (self_training_plan.paired_order).
ONE_LABEL = self_training_plan.paired_order(
    config,
    [
        name
        for name, experiment in config["experiments"].items()
        if experiment["training_set"] != "all_labels"
    ],
) + (["frangi"] if FRANGI else [])


rule frangi:
    input:
        index="results/data/index.tsv",
        reference=[p for p in REFERENCE[["image", "label", "fov"]] if p],
        tests=[
            p
            for p in (*TEST_ROWS["image"], *TEST_ROWS["label"], *TEST_ROWS["fov"])
            if p
        ],
    output:
        metrics="results/metrics/frangi.tsv",
        masks=expand("results/predictions/frangi/{test}.png", test=TESTS),
        scores=expand("results/predictions/frangi/{test}_probability.png", test=TESTS),
    log:
        "results/logs/frangi.log",
    benchmark:
        "results/benchmarks/frangi.tsv"
    conda:
        CONDA_ENV
    params:
        sigmas=config["frangi"]["sigmas"],
        out_dir=lambda wildcards, output: os.path.dirname(output.masks[0]),
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} frangi --index {input.index} --sigmas {params.sigmas}"
        " --out-dir {params.out_dir} --out {output.metrics} > {log} 2>&1"


rule paired_comparison:
    input:
        metrics=expand("results/metrics/{experiment}.tsv", experiment=ONE_LABEL),
    output:
        "results/metrics/paired.tsv",
    log:
        "results/logs/paired_comparison.log",
    benchmark:
        "results/benchmarks/paired_comparison.tsv"
    conda:
        CONDA_ENV
    params:
        metrics=lambda wildcards, input: " ".join(
            f"{e}={p}" for e, p in zip(ONE_LABEL, input.metrics)
        ),
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} paired --metrics {params.metrics} --out {output} > {log} 2>&1"
