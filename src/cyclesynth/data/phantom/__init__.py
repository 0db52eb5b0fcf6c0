"""Phantoms, the built-in default dataset: synthetic fundus-like images with exact vessel labels.

Nothing is downloaded. Each phantom is drawn from one integer seed:

* geometry: a circular field of view (FOV) on black, an optic disc left or right of the
  centre, a fovea on the other side, and a vessel tree of 2 to 4 trunks that leave the disc
  (two temporal arcades curving around the fovea, up to two nasal trunks), branch
  recursively with daughter radii following Murray's law (``r0**3 = r1**3 + r2**3``) and
  Murray's optimal branching angles, taper, wander (smoothly varying direction) and end at the
  FOV border, after thinning to one pixel, or (thin ones, mostly) just short of a vessel
  they run into. A coarse density map steers branches into empty regions. The tree grows
  thickest vessels first until the vessel fraction inside the FOV reaches a drawn target
  (9 to 14 %; DRIVE has about 12 %).
* label: the exact footprint of the rendered tubes (pixel centres within a vessel's radius
  of its centre line; widths are at least one pixel), clipped to the FOV. The image's
  anti-aliased vessel opacity is >= 0.5 exactly on the label.
* appearance (:class:`PhantomStyle`): background colour with low-frequency texture and a
  per-image amount of fine texture, illumination gradient, vignetting, a darker macula, a
  bright optic disc, vessels darkening mostly green and blue (optional central reflex),
  gamma, blur and Gaussian noise. Noise, fine texture and vessel contrast are drawn from
  ranges measured on DRIVE at the phantom's size (``scripts/phantom_realism.py``, README).

:func:`write_phantom_dataset` writes a dataset in DRIVE's layout and file formats, including
a plausible "second observer" for the test images (:func:`second_observer_label`).

Modules: ``style`` (:class:`PhantomStyle`, the per-image random streams), ``vessels`` (the
geometry: field of view, optic disc, fovea and the growing vessel tree), ``render`` (label and
image, :func:`generate_phantom`, the second observer) and ``io`` (writing a dataset in DRIVE's
layout, :func:`write_phantom_dataset`).
"""
