PHANTOM = config["dataset"]["phantom"]


rule generate_phantom_training:
    output:
        image=f"{wc.PHANTOM_ROOT}/training/images/{{id}}_training.tif",
        label=f"{wc.PHANTOM_ROOT}/training/1st_manual/{{id}}_manual1.gif",
        fov=f"{wc.PHANTOM_ROOT}/training/mask/{{id}}_training_mask.gif",
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
        image=f"{wc.PHANTOM_ROOT}/test/images/{{id}}_test.tif",
        label=f"{wc.PHANTOM_ROOT}/test/1st_manual/{{id}}_manual1.gif",
        label2=f"{wc.PHANTOM_ROOT}/test/2nd_manual/{{id}}_manual2.gif",
        fov=f"{wc.PHANTOM_ROOT}/test/mask/{{id}}_test_mask.gif",
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
        unpack(lambda wildcards: wc.image_files(INDEX, wildcards.id)),
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
        context=lambda wildcards: wc.check_context_option(INDEX, wildcards.id),
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
        source=lambda wildcards, input: (
            f"--samplesheet {shlex.quote(input.samplesheet[0])}"
            if input.samplesheet
            else f"--root {Path(input.images[0]).parents[2]}"
        ),
        reference=f"--reference {REFERENCE['id']}",
        include_test=(
            "--include-test-as-unlabeled"
            if config["dataset"]["include_test_as_unlabeled"]
            else ""
        ),
        validation=wc.validation_option(config),
        max_unlabeled=(
            f"--max-unlabeled {config['dataset']['max_unlabeled']}"
            if config["dataset"]["max_unlabeled"]
            else ""
        ),
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} prepare-dataset {params.source} {params.reference}"
        " {params.include_test} {params.max_unlabeled} {params.validation}"
        " --checked {input.checked}"
        " --out {output} > {log} 2>&1"
