"""The pipeline layer: what connects the stages to the Snakemake workflow.

``cli``                the command line, one module per workflow stage (``python -m cyclesynth``)
``workflow_config``    what the Snakefile needs from the config: file plan, job lists, per-rule settings
``config_validation``  validating a config against ``workflow/schemas/config.schema.yaml`` with messages naming the key

The stages (:mod:`cyclesynth.data`, :mod:`cyclesynth.synthesis`, :mod:`cyclesynth.segmentation`,
:mod:`cyclesynth.evaluation`) never import this layer.
"""
