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
        "../../envs/cyclesynth.yaml"
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
        "../../envs/cyclesynth.yaml"
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


rule prepare_dataset:
    input:
        images=INDEX.loc[INDEX["role"] != "unused", "image"].tolist(),
        annotations=wc.annotation_files(INDEX),
    output:
        "results/data/index.tsv",
    log:
        "results/logs/prepare_dataset.log",
    benchmark:
        "results/benchmarks/prepare_dataset.tsv"
    conda:
        "../../envs/cyclesynth.yaml"
    params:
        root=lambda wildcards, input: Path(input.images[0]).parents[2],
        reference=f"--reference {INDEX.loc[INDEX['role'] == 'reference', 'id'].iloc[0]}",
        include_test=(
            "--include-test-as-unlabeled"
            if config["dataset"]["include_test_as_unlabeled"]
            else ""
        ),
        max_unlabeled=(
            f"--max-unlabeled {config['dataset']['max_unlabeled']}"
            if config["dataset"]["max_unlabeled"]
            else ""
        ),
        patch_size=PATCH_SIZE,
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} prepare-dataset --root {params.root:q} {params.reference}"
        " {params.include_test} {params.max_unlabeled} --patch-size {params.patch_size}"
        " --out {output} > {log} 2>&1"
