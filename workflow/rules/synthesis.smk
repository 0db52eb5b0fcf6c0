# Synthesis reads the reference and the unlabeled image directly (not the index), so that
# adding an image to the dataset adds its own jobs and reruns no other (with cyclegan.init
# pretrained, a change in the pretraining images also reruns the fine-tuning).
# Tiles of the reference each CycleGAN translates: synthesis.stride (null = patches.stride);
# a stride below the patch size blends overlapping tiles (hides the seams);
# synthesis.whole_image translates the reference in one pass (no tiles, no seams).
SYNTHESIS_STRIDE = config["synthesis"]["stride"] or PATCH_STRIDE


rule pretrain_cyclegan:
    input:
        reference=REFERENCE["image"],
        targets=[INDEX.set_index("id").loc[i, "image"] for i in PRETRAIN_IMAGES],
        checked=expand(
            "results/data/checked/{id}.json", id=[REFERENCE["id"], *PRETRAIN_IMAGES]
        ),
    output:
        model=PRETRAINED,
        history="results/cyclegan/pretrained/history.tsv",
    log:
        "results/logs/pretrain_cyclegan.log",
    benchmark:
        "results/benchmarks/pretrain_cyclegan.tsv"
    conda:
        CONDA_ENV
    threads: resource("pretrain_cyclegan", "threads")
    resources:
        mem_mb=resource("pretrain_cyclegan", "mem_mb"),
        runtime=resource("pretrain_cyclegan", "runtime"),
        gpu=resource("pretrain_cyclegan", "gpu"),
    params:
        settings=rule_settings.as_json(
            rule_settings.cyclegan_settings(config, "pretrain")
        ),
        images=PRETRAIN_IMAGES,
        patch_size=PATCH_SIZE,
        patch_stride=PATCH_STRIDE,
        seed=config["seed"],
        device=config["device"],
        checkpoint="results/checkpoints/cyclegan/pretrained.pt",
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} pretrain-cyclegan --reference {input.reference:q}"
        " --targets {input.targets:q} --images {params.images}"
        " --settings {params.settings:q} --patch-size {params.patch_size}"
        " --patch-stride {params.patch_stride} --seed {params.seed}"
        " --device {params.device} --threads {threads}"
        " --checkpoint {params.checkpoint} --model {output.model}"
        " --history {output.history} > {log} 2>&1"


rule train_cyclegan:
    input:
        reference=REFERENCE["image"],
        target=lambda wildcards: INDEX.set_index("id").loc[wildcards.image, "image"],
        checked=[
            f"results/data/checked/{REFERENCE['id']}.json",
            "results/data/checked/{image}.json",
        ],
        init=cyclegan_init,
    output:
        model="results/cyclegan/{image}/generator.pt",
        history="results/cyclegan/{image}/history.tsv",
    log:
        "results/logs/train_cyclegan/{image}.log",
    benchmark:
        "results/benchmarks/train_cyclegan/{image}.tsv"
    # SLURM: K jobs of this group share one submission and its GPU, one after another (K is
    # group-components in workflow/profiles/slurm/config.yaml; 1 there: one job each).
    group:
        "cyclegans"
    conda:
        CONDA_ENV
    threads: resource("train_cyclegan", "threads")
    resources:
        mem_mb=resource("train_cyclegan", "mem_mb"),
        runtime=resource("train_cyclegan", "runtime"),
        gpu=resource("train_cyclegan", "gpu"),
    params:
        settings=rule_settings.as_json(rule_settings.cyclegan_settings(config)),
        patch_size=PATCH_SIZE,
        patch_stride=PATCH_STRIDE,
        seed=config["seed"],
        device=config["device"],
        checkpoint="results/checkpoints/cyclegan/{image}.pt",
        init=cyclegan_init_option,
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} train-cyclegan --reference {input.reference:q}"
        " --target {input.target:q} --image {wildcards.image} {params.init}"
        " --settings {params.settings:q} --patch-size {params.patch_size}"
        " --patch-stride {params.patch_stride} --seed {params.seed}"
        " --device {params.device} --threads {threads}"
        " --checkpoint {params.checkpoint} --model {output.model}"
        " --history {output.history} > {log} 2>&1"


rule synthesize:
    input:
        unpack(reference_fov),
        reference=REFERENCE["image"],
        model="results/cyclegan/{image}/generator.pt",
    output:
        "results/synthetic/{image}.png",
    log:
        "results/logs/synthesize/{image}.log",
    benchmark:
        "results/benchmarks/synthesize/{image}.tsv"
    conda:
        CONDA_ENV
    threads: resource("default", "threads")
    resources:
        mem_mb=resource("default", "mem_mb"),
        runtime=resource("default", "runtime"),
    params:
        patch_size=PATCH_SIZE,
        patch_stride=SYNTHESIS_STRIDE,
        fov=reference_fov_option,
        mask_outside_fov=(
            "--mask-outside-fov" if config["synthesis"]["mask_outside_fov"] else ""
        ),
        whole_image="--whole-image" if config["synthesis"]["whole_image"] else "",
        device=config["device"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} synthesize --reference {input.reference:q} {params.fov}"
        " --model {input.model}"
        " --patch-size {params.patch_size} --patch-stride {params.patch_stride}"
        " {params.mask_outside_fov} {params.whole_image}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"


rule filter_synthetic:
    input:
        unpack(reference_fov),
        reference=REFERENCE["image"],
        synthetic=expand("results/synthetic/{image}.png", image=UNLABELED),
    output:
        report(
            "results/synthetic/quality.tsv",
            caption="../report/quality.rst",
            category="Synthetic images",
        ),
    log:
        "results/logs/filter_synthetic.log",
    benchmark:
        "results/benchmarks/filter_synthetic.tsv"
    conda:
        CONDA_ENV
    params:
        images=UNLABELED,
        fov=reference_fov_option,
        normalize=config["filter"]["normalize"],
        max_mse=config["filter"]["max_mse"],
        highpass_sigma=config["filter"]["highpass_sigma"],
        patch_size=PATCH_SIZE,
        patch_stride=SYNTHESIS_STRIDE,
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} filter-synthetic --reference {input.reference:q} {params.fov}"
        " --images {params.images} --synthetic {input.synthetic}"
        " --normalize {params.normalize} --max-mse {params.max_mse}"
        " --highpass-sigma {params.highpass_sigma}"
        " --seam-size {params.patch_size} --seam-stride {params.patch_stride}"
        " --out {output} > {log} 2>&1"
