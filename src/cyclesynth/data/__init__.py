"""Data: reading and writing images, datasets and their roles, samplesheets and folder layouts,
the patch grid, and the built-in phantom dataset.

``naming``       DRIVE's file naming (also the phantom's): the one place that spells it
``images``       reading RGB images and binary masks, writing PNGs atomically
``datasets``     finding images, labels and FOV masks, assigning roles, validating contents
``samplesheet``  a user's own images as a table, one row per image
``layouts``      folder layouts (DRIVE, globs) as samplesheet rows
``patches``      the regular patch grid: cutting images into patches and stitching them back
``phantom``      synthetic fundus-like images with exact vessel labels (the default dataset)
"""
