"""Evaluation: scoring segmentations against the labels, comparing experiments, and the report.

``metrics``              confusion counts, sensitivity, specificity, accuracy, F1, AUC
``paired``               paired comparisons of experiments over the same test images
``vesselness``           the zero-label floor: Frangi vesselness on the green channel
``image_statistics``     background texture and vessel contrast, to compare phantoms with DRIVE
``inputs``               reading the tables and histories the other stages write
``tables``               the summary table and Table 1 (Markdown) beside the paper's
``figures``              the report's matplotlib figures
``figure_registry``      the report's one list of figures (name, caption, drawing function)
``segmentation_report``  the report's part on the product: what was segmented and scored
``validation_report``    the report's validation section
``report``               :func:`write_report`: every output of the report, in order
"""
