"""Segmentation: the U-Net, its training on (synthesised or pseudo-labeled) image/label pairs,
its saved model file, and predicting vessel probabilities with it.

Modules, one concern each (as :mod:`cyclesynth.synthesis.cyclegan` splits the CycleGAN):

``unet``           the U-Net network itself
``settings``       :class:`UNetSettings` (defaults the paper's), input scaling, learning-rate rule
``loss``           the weighted cross-entropy with ignored pixels
``augmentation``   flips and quarter turns, photometric and geometric augmentation
``training``       :func:`train_unet`: the loop, checkpoints and resuming
``saved``          the saved model file: writing, loading, its prediction precision
``inference``      predicting a whole image: overlapping tiles, blending, test-time augmentation
``pseudo_labels``  self-training: the teacher's pseudo-labels and their band of doubt
``experiments``    the training sets of the U-Net experiments (config ``experiments``)
``segment``        segmenting a user's images with a trained model
"""
