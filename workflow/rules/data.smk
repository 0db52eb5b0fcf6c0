PHANTOM = config["dataset"]["phantom"]


rule generate_phantom_training:
    output:
        **{
            kind: naming.path(dataset_plan.PHANTOM_ROOT, "{id}", "training", kind)
            for kind in naming.kinds_of("training")
        },
    log:
        "results/logs/generate_phantom/training_{id}.log",
    benchmark:
        "results/benchmarks/generate_phantom/training_{id}.tsv"
    conda:
        CONDA_ENV
    params:
        root=lambda wildcards, output: Path(output.image).parents[2],
        height=PHANTOM["height"],
        width=PHANTOM["width"],
        seed=PHANTOM["seed"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} generate-phantom --root {params.root} --split training"
        " --id {wildcards.id} --height {params.height} --width {params.width}"
        " --seed {params.seed} > {log} 2>&1"


rule generate_phantom_test:
    output:
        **{
            kind: naming.path(dataset_plan.PHANTOM_ROOT, "{id}", "test", kind)
            for kind in naming.kinds_of("test")
        },
    log:
        "results/logs/generate_phantom/test_{id}.log",
    benchmark:
        "results/benchmarks/generate_phantom/test_{id}.tsv"
    conda:
        CONDA_ENV
    params:
        root=lambda wildcards, output: Path(output.image).parents[2],
        height=PHANTOM["height"],
        width=PHANTOM["width"],
        seed=PHANTOM["seed"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} generate-phantom --root {params.root} --split test"
        " --id {wildcards.id} --height {params.height} --width {params.width}"
        " --seed {params.seed} > {log} 2>&1"


# One check per image: readable, label and masks binary and of the image's size. The checks
# run first (priority) so bad input stops the run before any training job starts; a training
# job depends only on the checks of its own images, so adding an image adds only its jobs.
rule check_image:
    input:
        unpack(lambda wildcards: dataset_plan.image_files(INDEX, wildcards.id)),
    output:
        "results/data/checked/{id}.json",
    log:
        "results/logs/check_image/{id}.log",
    benchmark:
        "results/benchmarks/check_image/{id}.tsv"
    priority: 100
    conda:
        CONDA_ENV
    params:
        annotations=lambda wildcards, input: " ".join(
            f"--{kind} {shlex.quote(getattr(input, kind))}"
            for kind in ("label", "fov", "label2")
            if kind in input.keys()
        ),
        min_size=PATCH_SIZE,
        context=lambda wildcards: dataset_plan.check_context_option(INDEX, wildcards.id),
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} check-image --image {input.image:q} {params.annotations}"
        " --min-size {params.min_size} {params.context} --out {output}"
        " > {log} 2>&1"


rule prepare_dataset:
    input:
        images=INDEX.loc[INDEX["role"] != "unused", "image"].tolist(),
        checked=expand(
            "results/data/checked/{id}.json",
            id=INDEX.loc[INDEX["role"] != "unused", "id"],
        ),
        samplesheet=(
            [config["dataset"]["samplesheet"]]
            if config["dataset"]["source"] == "samplesheet"
            else []
        ),
    output:
        "results/data/index.tsv",
    log:
        "results/logs/prepare_dataset.log",
    benchmark:
        "results/benchmarks/prepare_dataset.tsv"
    priority: 100
    conda:
        CONDA_ENV
    params:
        # the section the Snakefile planned INDEX from: the job writes that same index
        dataset=rule_settings.as_json(config["dataset"]),
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} prepare-dataset --dataset {params.dataset:q}"
        " --checked {input.checked}"
        " --out {output} > {log} 2>&1"
