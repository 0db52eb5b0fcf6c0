rule train_unet:
    input:
        unpack(unet_training_inputs),
    output:
        model="results/unet/{experiment}/model.pt",
        history="results/unet/{experiment}/history.tsv",
    log:
        "results/logs/train_unet/{experiment}.log",
    benchmark:
        "results/benchmarks/train_unet/{experiment}.tsv"
    # a teacher first: its chain (U-Net, pseudo-labels, students) is the DAG's longest path
    priority: lambda wildcards: self_training_plan.teaching_depth(config, wildcards.experiment)
    conda:
        CONDA_ENV
    threads: resource("train_unet", "threads")
    resources:
        mem_mb=resource("train_unet", "mem_mb"),
        runtime=resource("train_unet", "runtime"),
        gpu=resource("train_unet", "gpu"),
    params:
        options=unet_training_options,
        settings=lambda wildcards: rule_settings.as_json(
            rule_settings.unet_settings(config, wildcards.experiment)
        ),
        seed=config["seed"],
        device=config["device"],
        checkpoint="results/checkpoints/unet/{experiment}.pt",
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} train-unet --index {input.index}"
        " --experiment {wildcards.experiment} {params.options}"
        " --settings {params.settings:q} --seed {params.seed}"
        " --device {params.device} --threads {threads}"
        " --checkpoint {params.checkpoint} --model {output.model}"
        " --history {output.history} > {log} 2>&1"


# Self-training: a teacher's U-Net predicts every unlabeled image (never a validation image;
# test images only with dataset.include_test_as_unlabeled) into its probability map and
# pseudo-label (vessel, background, ignored), for the students that name it.
rule pseudo_label:
    input:
        index="results/data/index.tsv",
        model="results/unet/{teacher}/model.pt",
        images=[INDEX.set_index("id").loc[i, "image"] for i in UNLABELED],
    output:
        probabilities=expand(
            "results/pseudo_labels/{{teacher}}/{image}_probability.png",
            image=UNLABELED,
        ),
        pseudo_labels=expand(
            "results/pseudo_labels/{{teacher}}/{image}_pseudo_label.png",
            image=UNLABELED,
        ),
        table="results/pseudo_labels/{teacher}/pseudo_labels.tsv",
    log:
        "results/logs/pseudo_label/{teacher}.log",
    benchmark:
        "results/benchmarks/pseudo_label/{teacher}.tsv"
    priority: lambda wildcards: self_training_plan.teaching_depth(config, wildcards.teacher)
    conda:
        CONDA_ENV
    threads: resource("pseudo_label", "threads")
    resources:
        mem_mb=resource("pseudo_label", "mem_mb"),
        runtime=resource("pseudo_label", "runtime"),
        gpu=resource("pseudo_label", "gpu"),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        band=lambda wildcards: self_training_plan.teacher_band(
            config, wildcards.teacher
        ),
        prediction=rule_settings.prediction_options(config),
        device=config["device"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} pseudo-label --index {input.index} --model {input.model}"
        " --band {params.band} --out-dir {params.out_dir} {params.prediction}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule predict:
    input:
        index="results/data/index.tsv",
        model="results/unet/{experiment}/model.pt",
    output:
        masks=expand(
            "results/predictions/{{experiment}}/{test}.png", test=TESTS + VALIDATION
        ),
        probabilities=expand(
            "results/predictions/{{experiment}}/{test}_probability.png",
            test=TESTS + VALIDATION,
        ),
    log:
        "results/logs/predict/{experiment}.log",
    benchmark:
        "results/benchmarks/predict/{experiment}.tsv"
    conda:
        CONDA_ENV
    threads: resource("predict", "threads")
    resources:
        mem_mb=resource("predict", "mem_mb"),
        runtime=resource("predict", "runtime"),
        gpu=resource("predict", "gpu"),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.masks[0]),
        prediction=rule_settings.prediction_options(config),
        device=config["device"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} predict --index {input.index} --model {input.model}"
        " --out-dir {params.out_dir} {params.prediction}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


rule evaluate:
    input:
        index="results/data/index.tsv",
        probabilities=rules.predict.output.probabilities,
    output:
        "results/metrics/{experiment}.tsv",
    log:
        "results/logs/evaluate/{experiment}.log",
    benchmark:
        "results/benchmarks/evaluate/{experiment}.tsv"
    conda:
        CONDA_ENV
    params:
        predictions_dir=lambda wildcards, input: os.path.dirname(input.probabilities[0]),
        thresholds=rule_settings.as_json(rule_settings.thresholds(config)),
        role="test",
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} evaluate --index {input.index}"
        " --experiment {wildcards.experiment} --role {params.role}"
        " --predictions-dir {params.predictions_dir}"
        " --thresholds {params.thresholds:q} --out {output} > {log} 2>&1"


rule evaluate_human:
    input:
        index="results/data/index.tsv",
    output:
        "results/metrics/human.tsv",
    log:
        "results/logs/evaluate_human.log",
    benchmark:
        "results/benchmarks/evaluate_human.tsv"
    conda:
        CONDA_ENV
    params:
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} evaluate-human --index {input.index} --out {output} > {log} 2>&1"


# The product: every image but the reference segmented by the chosen experiments' U-Nets
# (mask, 16-bit probability, overlay), labeled or not.
rule segment:
    input:
        model="results/unet/{experiment}/model.pt",
        images=[INDEX.set_index("id").loc[i, "image"] for i in SEGMENTED],
    output:
        masks=segmentation_outputs("{experiment}", "mask"),
        probabilities=segmentation_outputs("{experiment}", "probability"),
        overlays=[
            report(
                path,
                caption="../report/segment_overlay.rst",
                category="Segmentations",
                subcategory="{experiment}",
            )
            for path in segmentation_outputs("{experiment}", "overlay")
        ],
        table="results/segmentations/{experiment}/segmentations.tsv",
    log:
        "results/logs/segment/{experiment}.log",
    benchmark:
        "results/benchmarks/segment/{experiment}.tsv"
    conda:
        CONDA_ENV
    threads: resource("segment", "threads")
    resources:
        mem_mb=resource("segment", "mem_mb"),
        runtime=resource("segment", "runtime"),
        gpu=resource("segment", "gpu"),
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        names=SEGMENTED,
        threshold=config["segmentation"]["threshold"],
        prediction=rule_settings.prediction_options(config),
        device=config["device"],
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} segment --model {input.model} --out {params.out_dir}"
        " --names {params.names} --threshold {params.threshold} {params.prediction}"
        " --device {params.device} --threads {threads} {input.images:q} > {log} 2>&1"


# Images added later (segmentation.new_images): the same step, run on their own, so that adding
# images reruns only this.
use rule segment as segment_new with:
    input:
        model="results/unet/{experiment}/model.pt",
        images=list(NEW_IMAGES.values()),
    output:
        masks=expand(
            "results/new_segmentations/{{experiment}}/{name}_mask.png", name=NEW_IMAGES
        ),
        probabilities=expand(
            "results/new_segmentations/{{experiment}}/{name}_probability.png",
            name=NEW_IMAGES,
        ),
        overlays=expand(
            "results/new_segmentations/{{experiment}}/{name}_overlay.png",
            name=NEW_IMAGES,
        ),
        table="results/new_segmentations/{experiment}/segmentations.tsv",
    log:
        "results/logs/segment_new/{experiment}.log",
    benchmark:
        "results/benchmarks/segment_new/{experiment}.tsv"
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.table),
        names=list(NEW_IMAGES),
        threshold=config["segmentation"]["threshold"],
        prediction=rule_settings.prediction_options(config),
        device=config["device"],
        cyclesynth=CYCLESYNTH,
