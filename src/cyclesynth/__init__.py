"""cyclesynth: segmentation from a single ground truth with CycleGAN-synthesised data."""

__version__ = "0.1.0"
