"""Synthesis: CycleGAN-restyled copies of the labeled reference image, and the filter that
rejects failed ones.

``cyclegan``        the CycleGAN: networks, settings, data, model, training loop, saved networks
``synthesize``      restyling the reference with a trained generator, patch by patch
``blending``        blended stitching of overlapping tiles, and a measure of seams at tile borders
``quality_filter``  the failure filter: MSE against the reference, and a decision rule
"""
