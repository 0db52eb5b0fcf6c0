"""CycleGAN training (Zhu et al.'s recipe, unchanged), resumable, on in-memory patch sets.

Domain A is the labeled reference image's patches, domain B one unlabeled image's patches.
``G_A`` translates A -> B (the reference restyled as the unlabeled image); it is the network
the workflow keeps. Everything else follows the original ``cycle_gan_model.py``:

* least-squares GAN loss (MSE against 1 for real, 0 for fake);
* cycle loss L1, weight ``lambda_cycle`` each way; identity loss L1, weight
  ``lambda_identity * lambda_cycle``;
* a history pool of ``pool_size`` generated images per discriminator (50 % swap rule);
  discriminator loss halved;
* Adam(lr, (beta1, 0.999)) for both generators jointly and for both discriminators jointly;
  learning rate constant for ``epochs`` epochs, then linear decay to 0 over ``epochs_decay``;
* an epoch is ``max(len(A), len(B))`` samples: A in a shuffled order, B drawn at random
  (the original ``unaligned`` dataset).

Data pipeline: ``resize_crop`` is the original default ``resize_and_crop`` (each patch
upsampled bicubically to ``load_size``, then a random ``crop_size`` crop and a random
horizontal flip per sample); ``native`` trains on the patches as they are (flip only). The
patch sets are converted once to device tensors in [-1, 1]; each step only indexes them.

Pretraining and fine-tuning (the paper's proposed future work, not in the original): a
run's result holds all four networks; a later run can start from them (``init``) instead of
the random initialisation, with fresh optimisers and schedule, training every layer or only
the generators' decoders (``train_layers``). Pretraining is an ordinary run whose domain B
pools the patches of several unlabeled images.

Two equivalent-math shortcuts keep a step cheap: a generator's two inputs that do not depend
on each other (``G_A(fake_A)`` for the cycle and ``G_A(real_B)`` for the identity) go through
the network as one batch, and a discriminator sees its real and fake batches in one call.
With instance normalisation (no batch statistics) and no dropout, this gives the same losses
as separate calls.

Modules, one concern each (as the original code splits options, data, models and networks):

``settings``  :class:`CycleGANSettings` (defaults the paper's), the learning-rate rule
``data``      each domain's patches on the device, per-sample crops and flips, epoch batches
``model``     :class:`CycleGANModel`: four networks, optimisers, image pools, one step
``training``  :func:`train_cyclegan`: the loop, checkpoints and resuming, fine-tuning
``saved``     saved generators and pretrained networks, translating patches
``networks``  the generator and discriminator themselves

Every name is importable from ``cyclesynth.synthesis.cyclegan`` itself.
"""

from cyclesynth.synthesis.cyclegan.data import (
    DomainPatches,
    _check_patches,
    _resize,
    _to_tensor,
    epoch_batches,
    uses_channels_last,
)
from cyclesynth.synthesis.cyclegan.model import LOSS_NAMES, CycleGANModel, ImagePool
from cyclesynth.synthesis.cyclegan.saved import (
    GENERATOR_FORMAT,
    PRETRAINED_FORMAT,
    PretrainedCycleGAN,
    load_generator,
    load_pretrained,
    save_generator,
    save_pretrained,
    translate_patches,
)
from cyclesynth.synthesis.cyclegan.settings import (
    ARCHITECTURE_KEYS,
    PREPROCESS_MODES,
    TRAIN_LAYERS,
    CycleGANSettings,
    architecture,
    linear_decay_rule,
)
from cyclesynth.synthesis.cyclegan.training import (
    CHECKPOINT_FORMAT,
    CycleGANResult,
    train_cyclegan,
    training_fingerprint,
)

__all__ = [
    "ARCHITECTURE_KEYS",
    "CHECKPOINT_FORMAT",
    "GENERATOR_FORMAT",
    "LOSS_NAMES",
    "PREPROCESS_MODES",
    "PRETRAINED_FORMAT",
    "TRAIN_LAYERS",
    "CycleGANModel",
    "CycleGANResult",
    "CycleGANSettings",
    "DomainPatches",
    "ImagePool",
    "PretrainedCycleGAN",
    "architecture",
    "epoch_batches",
    "linear_decay_rule",
    "load_generator",
    "load_pretrained",
    "save_generator",
    "save_pretrained",
    "train_cyclegan",
    "training_fingerprint",
    "translate_patches",
    "uses_channels_last",
]
