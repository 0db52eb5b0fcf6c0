# The report's figures: one list, in the package (cyclesynth.evaluation.figure_registry).
from cyclesynth.evaluation.figure_registry import FIGURES

# The front page of `snakemake --report`: the introduction and the results table that this rule
# writes (HEADLINE, included by workflow.rst relative to the working directory); before the
# rule has run, the introduction alone.
HEADLINE = "results/metrics/headline.rst"
FRONT_PAGE = "workflow.rst" if os.path.exists(HEADLINE) else "workflow_no_results.rst"


report: f"../report/{FRONT_PAGE}"


rule report:
    input:
        unpack(report_inputs),
    output:
        **{
            figure.name: report(
                f"results/figures/{figure.file}",
                caption=f"../report/{figure.caption}",
                category="Figures",
            )
            for figure in FIGURES
        },
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
        headline=HEADLINE,
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
        figures_dir=lambda wildcards, output: os.path.dirname(output[FIGURES[0].name]),
        predictions_dir="results/predictions",
        cyclesynth=CYCLESYNTH,
    shell:
        "{params.cyclesynth} report --index {input.index}"
        " {params.options} --predictions-dir {params.predictions_dir}"
        " --labels {params.labels:q} --max-mse {params.max_mse}"
        " --prediction {params.prediction:q}"
        " --self-training {params.self_training:q} --segmented-by {params.segmented_by:q}"
        " --summary {output.summary} --table1 {output.table1} --headline {output.headline}"
        " --figures-dir {params.figures_dir} > {log} 2>&1"
