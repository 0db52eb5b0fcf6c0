rule generate_phantom:
    output:
        wc.phantom_files(config),
        manifest=f"{wc.PHANTOM_ROOT}/manifest.json",
    log:
        "results/logs/generate_phantom.log",
    benchmark:
        "results/benchmarks/generate_phantom.tsv"
    conda:
        "../../envs/cyclesynth.yaml"
    params:
        root=lambda wildcards, output: os.path.dirname(output.manifest),
        n_training=config["dataset"]["phantom"]["n_training"],
        n_test=config["dataset"]["phantom"]["n_test"],
        height=config["dataset"]["phantom"]["height"],
        width=config["dataset"]["phantom"]["width"],
        seed=config["dataset"]["phantom"]["seed"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} generate-phantom --root {params.root}"
        " --n-training {params.n_training} --n-test {params.n_test}"
        " --height {params.height} --width {params.width} --seed {params.seed}"
        " > {log} 2>&1"


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
