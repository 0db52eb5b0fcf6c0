import os

# cyclesynth: segmentation from a single ground truth with CycleGAN-synthesised data.
# See README.md: `snakemake --cores 2` runs the built-in phantom demo.


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/synthesis.smk"
include: "workflow/rules/segmentation.smk"
include: "workflow/rules/comparison.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
