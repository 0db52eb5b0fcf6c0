rule report:
    input:
        unpack(report_inputs),
    output:
        summary=report(
            "results/metrics/summary.tsv",
            caption="../report/summary.rst",
            category="Metrics",
        ),
        table1=report(
            "results/metrics/table1.md",
            caption="../report/table1.rst",
            category="Metrics",
        ),
        synthetic_examples=report(
            "results/figures/synthetic_examples.png",
            caption="../report/synthetic_examples.rst",
            category="Figures",
        ),
        rejected_synthetic=report(
            "results/figures/rejected_synthetic.png",
            caption="../report/rejected_synthetic.rst",
            category="Figures",
        ),
        synthetic_mse=report(
            "results/figures/synthetic_mse.png",
            caption="../report/synthetic_mse.rst",
            category="Figures",
        ),
        segmentations=report(
            "results/figures/segmentations.png",
            caption="../report/segmentation_examples.rst",
            category="Figures",
        ),
        loss_curves=report(
            "results/figures/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Figures",
        ),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        CONDA_ENV
    params:
        options=report_options,
        labels=rule_settings.as_json(rule_settings.experiment_labels(config)),
        max_mse=config["filter"]["max_mse"],
        prediction=rule_settings.as_json(rule_settings.prediction_settings(config)),
        self_training=rule_settings.as_json(
            {
                "students": STUDENTS,
                "transductive": self_training_plan.transductive(config),
            }
        ),
        segmented_by=rule_settings.as_json(
            {
                "experiments": SEGMENTATION_EXPERIMENTS,
                "source": rule_settings.segmentation_source(config),
            }
        ),
        figures_dir=lambda wildcards, output: os.path.dirname(output.synthetic_examples),
        predictions_dir="results/predictions",
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} report --index {input.index}"
        " {params.options} --predictions-dir {params.predictions_dir}"
        " --labels {params.labels:q} --max-mse {params.max_mse}"
        " --prediction {params.prediction:q}"
        " --self-training {params.self_training:q} --segmented-by {params.segmented_by:q}"
        " --summary {output.summary} --table1 {output.table1}"
        " --figures-dir {params.figures_dir} > {log} 2>&1"
