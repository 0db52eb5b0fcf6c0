"""The pipeline layer: what connects the stages to the Snakemake workflow.

``cli``                the command line, one module per workflow stage (``python -m cyclesynth``)
``workflow_config``    the experiments of a run (config merging) and the checks across keys
``dataset_plan``       the dataset as planned from file names: roles, job lists, new images
``self_training_plan`` the students, their teachers and rounds, and their checks
``rule_settings``      what each rule passes through ``params:`` (training, prediction, evaluation)
``config_validation``  validating a config against ``workflow/schemas/config.schema.yaml`` with messages naming the key

The stages (:mod:`cyclesynth.data`, :mod:`cyclesynth.synthesis`, :mod:`cyclesynth.segmentation`,
:mod:`cyclesynth.evaluation`) never import this layer.
"""
