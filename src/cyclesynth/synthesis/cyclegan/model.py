"""The four networks, their optimisers, schedules and image pools, and one training step
(Zhu et al.'s ``cycle_gan_model.py``):

* least-squares GAN loss (MSE against 1 for real, 0 for fake);
* cycle loss L1, weight ``lambda_cycle`` each way; identity loss L1, weight
  ``lambda_identity * lambda_cycle``;
* a history pool of ``pool_size`` generated images per discriminator (50 % swap rule);
  discriminator loss halved;
* Adam(lr, (beta1, 0.999)) for both generators jointly and for both discriminators jointly;
  learning rate constant for ``epochs`` epochs, then linear decay to 0 over ``epochs_decay``.

Two equivalent-math shortcuts keep a step cheap: a generator's two inputs that do not depend
on each other (``G_A(fake_A)`` for the cycle and ``G_A(real_B)`` for the identity) go through
the network as one batch, and a discriminator sees its real and fake batches in one call.
With instance normalisation (no batch statistics) and no dropout, this gives the same losses
as separate calls.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cyclesynth import runtime
from cyclesynth.synthesis.cyclegan.networks import NLayerDiscriminator, ResnetGenerator, init_weights
from cyclesynth.synthesis.cyclegan.data import uses_channels_last
from cyclesynth.synthesis.cyclegan.settings import CycleGANSettings, linear_decay_rule

LOSS_NAMES = (
    "loss_G_A",
    "loss_G_B",
    "loss_D_A",
    "loss_D_B",
    "loss_cycle_A",
    "loss_cycle_B",
    "loss_idt_A",
    "loss_idt_B",
)


class ImagePool:
    """History of generated images (Shrivastava et al.), as the original ``ImagePool``.

    Until the pool is full every image is stored and returned. Afterwards, with probability
    0.5 an image is swapped with a random stored one (the stored one is returned), else the
    image itself is returned. ``pool_size == 0`` passes images through. Random decisions come
    from ``rng`` (a NumPy generator), so runs are reproducible and resumable.
    """

    def __init__(self, pool_size: int, rng: np.random.Generator | None = None):
        self.pool_size = int(pool_size)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                return_images.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                random_id = int(self.rng.integers(0, self.pool_size))
                stored = self.images[random_id]
                self.images[random_id] = image.clone()
                return_images.append(stored)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)

    def state(self) -> list[torch.Tensor]:
        return [image.detach().cpu() for image in self.images]

    def load_state(self, images: list[torch.Tensor], device: torch.device) -> None:
        self.images = [image.to(device) for image in images]


def _set_requires_grad(nets: list[nn.Module], requires_grad: bool) -> None:
    for net in nets:
        for param in net.parameters():
            param.requires_grad_(requires_grad)


class CycleGANModel:
    """The four networks, their optimisers, schedulers and image pools; one training step.

    ``precision`` (default: what ``settings.precision`` gives on ``device``, see
    :func:`runtime.training_precision`) decides autocast, loss scaling and TF32 in
    :meth:`optimize_parameters`. With ``settings.compile`` on CUDA, the four networks are
    compiled (:func:`runtime.compile_for_training`); the step itself, the image pools' random
    swaps on the host and the schedules stay as they are. ``compile_backend`` compiles with
    that torch.compile backend on any device (tests).
    """

    def __init__(
        self,
        settings: CycleGANSettings,
        device: torch.device,
        rng: np.random.Generator,
        *,
        precision: runtime.Precision | None = None,
        compile_backend: str | None = None,
    ):
        self.settings = s = settings
        self.device = device
        if precision is not None:
            self.precision, self.precision_reason = precision, "as given"
        else:
            self.precision, self.precision_reason = runtime.choose_precision(s.precision, device)

        def generator() -> ResnetGenerator:
            return ResnetGenerator(
                3, 3, s.ngf, s.n_blocks, residual=s.residual, upsampling=s.upsampling, down_padding=s.down_padding
            )

        self.netG_A = init_weights(generator(), s.init_gain).to(device)
        self.netG_B = init_weights(generator(), s.init_gain).to(device)
        self.netD_A = init_weights(NLayerDiscriminator(3, s.ndf, s.n_layers_d), s.init_gain).to(device)
        self.netD_B = init_weights(NLayerDiscriminator(3, s.ndf, s.n_layers_d), s.init_gain).to(device)
        self.channels_last, self.layout_reason = self._choose_layout(device)
        if self.channels_last:
            for net in self.networks().values():
                net.to(memory_format=torch.channels_last)

        self.fake_A_pool = ImagePool(s.pool_size, rng)
        self.fake_B_pool = ImagePool(s.pool_size, rng)
        self.criterionGAN = nn.MSELoss()
        self.criterionCycle = nn.L1Loss()
        self.criterionIdt = nn.L1Loss()

        betas = (s.beta1, 0.999)
        if s.train_layers == "last":  # fine-tuning: the generators' encoders and blocks stay fixed
            trainable = self.netG_A.decoder_parameters() + self.netG_B.decoder_parameters()
            kept = {id(p) for p in trainable}
            for net in (self.netG_A, self.netG_B):
                for param in net.parameters():
                    param.requires_grad_(id(param) in kept)
        else:
            trainable = list(self.netG_A.parameters()) + list(self.netG_B.parameters())
        self.optimizer_G = torch.optim.Adam(trainable, lr=s.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(
            list(self.netD_A.parameters()) + list(self.netD_B.parameters()), lr=s.lr, betas=betas
        )
        rule = linear_decay_rule(s.epochs, s.epochs_decay)
        self.scheduler_G = torch.optim.lr_scheduler.LambdaLR(self.optimizer_G, lr_lambda=rule)
        self.scheduler_D = torch.optim.lr_scheduler.LambdaLR(self.optimizer_D, lr_lambda=rule)

        self.scaler = self.precision.scaler()  # float16 only; a pass-through otherwise
        self.compiled = any(
            [runtime.compile_for_training(net, s.compile, device, backend=compile_backend) for net in self.networks().values()]
        )

    def _choose_layout(self, device: torch.device) -> tuple[bool, str]:
        """channels_last on CUDA when set; on the CPU when set and this machine's kernels give
        the generator and discriminator the same gradients in both layouts
        (:func:`runtime.choose_channels_last`; torch 2.13 on an Intel Xeon did not). The check
        draws its input from a generator of its own, so the seeded streams are untouched."""
        if not self.settings.channels_last:
            return False, "default layout (channels_last false)"
        if device.type == "cuda":
            return uses_channels_last(self.settings, device), "channels_last as set"
        side = 4 * 2 ** max(2, self.settings.n_layers_d)
        batch = max(2, self.settings.batch_size)
        sample = torch.rand((batch, 3, side, side), generator=torch.Generator().manual_seed(0)).to(device) * 2 - 1
        return runtime.choose_channels_last(
            True, nn.Sequential(self.netG_A, self.netD_A), [sample[:1], sample], self.precision, cpu_default=False
        )

    def networks(self) -> dict[str, nn.Module]:
        return {"netG_A": self.netG_A, "netG_B": self.netG_B, "netD_A": self.netD_A, "netD_B": self.netD_B}

    def train(self) -> None:
        for net in self.networks().values():
            net.train()

    def load_networks(self, states: dict[str, dict]) -> None:
        """Start from other weights (a pretrained CycleGAN): the four networks only;
        optimisers, schedules and image pools stay fresh."""
        for name, net in self.networks().items():
            net.load_state_dict(states[name])

    def _autocast(self):
        return self.precision.autocast()

    def _gan_loss(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        prediction = prediction.float()
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return self.criterionGAN(prediction, target)

    def _discriminator_loss(self, netD: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Original ``backward_D_basic`` (real and fake through ``netD`` in one call)."""
        with self._autocast():
            pred = netD(torch.cat([real, fake.to(real.dtype)], 0))
        pred_real, pred_fake = pred[: real.shape[0]], pred[real.shape[0] :]
        return (self._gan_loss(pred_real, True) + self._gan_loss(pred_fake, False)) * 0.5

    def optimize_parameters(self, real_A: torch.Tensor, real_B: torch.Tensor) -> torch.Tensor:
        """One step (generators, then discriminators); returns the detached losses in
        :data:`LOSS_NAMES` order as one tensor on the device. In float16 a step whose
        gradients overflow is skipped by the scaler (its losses are still returned)."""
        runtime.mark_step_begin(self.compiled)
        with self.precision.tf32():
            return self._step(real_A, real_B)

    def _step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> torch.Tensor:
        s = self.settings
        lambda_A = lambda_B = s.lambda_cycle
        lambda_idt = s.lambda_identity
        n_a = real_A.shape[0]
        n_b = real_B.shape[0]

        # forward: fake_B = G_A(A), rec_A = G_B(G_A(A)); fake_A = G_B(B), rec_B = G_A(G_B(B))
        with self._autocast():
            fake_B = self.netG_A(real_A)
            fake_A = self.netG_B(real_B)
            if lambda_idt > 0:  # identity inputs share the pass with the cycle inputs
                out_A = self.netG_A(torch.cat([fake_A, real_B], 0))
                rec_B, idt_A = out_A[:n_b], out_A[n_b:]
                out_B = self.netG_B(torch.cat([fake_B, real_A], 0))
                rec_A, idt_B = out_B[:n_a], out_B[n_a:]
            else:
                rec_B = self.netG_A(fake_A)
                rec_A = self.netG_B(fake_B)

        # generators G_A and G_B (the discriminators need no gradients here)
        _set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        if lambda_idt > 0:
            loss_idt_A = self.criterionIdt(idt_A.float(), real_B) * lambda_B * lambda_idt
            loss_idt_B = self.criterionIdt(idt_B.float(), real_A) * lambda_A * lambda_idt
        else:
            loss_idt_A = loss_idt_B = torch.zeros((), device=real_A.device)
        with self._autocast():
            pred_fake_B = self.netD_A(fake_B)
            pred_fake_A = self.netD_B(fake_A)
        loss_G_A = self._gan_loss(pred_fake_B, True)
        loss_G_B = self._gan_loss(pred_fake_A, True)
        loss_cycle_A = self.criterionCycle(rec_A.float(), real_A) * lambda_A
        loss_cycle_B = self.criterionCycle(rec_B.float(), real_B) * lambda_B
        loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.optimizer_G)

        # discriminators D_A (real B vs fake B) and D_B (real A vs fake A)
        _set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        loss_D_A = self._discriminator_loss(self.netD_A, real_B, self.fake_B_pool.query(fake_B.detach().float()))
        loss_D_B = self._discriminator_loss(self.netD_B, real_A, self.fake_A_pool.query(fake_A.detach().float()))
        self.scaler.scale(loss_D_A + loss_D_B).backward()
        self.scaler.step(self.optimizer_D)
        self.scaler.update()

        return torch.stack(
            [loss_G_A, loss_G_B, loss_D_A, loss_D_B, loss_cycle_A, loss_cycle_B, loss_idt_A, loss_idt_B]
        ).detach().float()

    def update_learning_rate(self) -> None:
        self.scheduler_G.step()
        self.scheduler_D.step()

    @property
    def lr(self) -> float:
        return float(self.optimizer_G.param_groups[0]["lr"])

    def state(self) -> dict:
        state = {name: net.state_dict() for name, net in self.networks().items()}
        state.update(
            optimizer_G=self.optimizer_G.state_dict(),
            optimizer_D=self.optimizer_D.state_dict(),
            scheduler_G=self.scheduler_G.state_dict(),
            scheduler_D=self.scheduler_D.state_dict(),
            scaler=self.scaler.state_dict(),
            fake_A_pool=self.fake_A_pool.state(),
            fake_B_pool=self.fake_B_pool.state(),
        )
        return state

    def load_state(self, state: dict) -> None:
        for name, net in self.networks().items():
            net.load_state_dict(state[name])
        self.optimizer_G.load_state_dict(state["optimizer_G"])
        self.optimizer_D.load_state_dict(state["optimizer_D"])
        self.scheduler_G.load_state_dict(state["scheduler_G"])
        self.scheduler_D.load_state_dict(state["scheduler_D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.fake_A_pool.load_state(state["fake_A_pool"], self.device)
        self.fake_B_pool.load_state(state["fake_B_pool"], self.device)
