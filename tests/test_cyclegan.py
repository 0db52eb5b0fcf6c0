"""CycleGAN networks and training: sizes, initialisation, schedule, pool, determinism, resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cyclesynth import runtime
from cyclesynth.synthesis.cyclegan.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    count_parameters,
    format_parameters,
    init_weights,
)
from cyclesynth.synthesis.cyclegan import (
    CycleGANModel,
    CycleGANSettings,
    DomainPatches,
    ImagePool,
    LOSS_NAMES,
    PretrainedCycleGAN,
    architecture,
    epoch_batches,
    linear_decay_rule,
    load_generator,
    load_pretrained,
    save_generator,
    save_pretrained,
    train_cyclegan,
    training_fingerprint,
    translate_patches,
)

TINY = dict(ngf=8, ndf=8, n_blocks=1, preprocess="native", epochs=3, epochs_decay=3, pool_size=4, lr=1e-3)


def smooth_patches(n: int, side: int, seed: int) -> np.ndarray:
    """Smooth random colour blobs in [0, 1], shape (n, side, side, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = np.zeros((n, side, side, 3), dtype=np.float32)
    for i in range(n):
        for _ in range(3):
            cy, cx = rng.random(2)
            width = 0.1 + 0.2 * rng.random()
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
            out[i] += blob[:, :, None] * rng.random(3)[None, None, :]
    return np.clip(out / max(out.max(), 1e-6), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def domains():
    a = smooth_patches(6, 32, seed=0)
    b = np.clip(1.0 - smooth_patches(6, 32, seed=1)[..., ::-1] * 0.8, 0, 1).astype(np.float32)
    return a, b


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The tiny networks gain nothing from threads, and on a shared 2-core machine a second
    # OpenMP thread that gets descheduled stalls every small kernel.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def quiet(_message: str) -> None:
    pass


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- networks


def test_parameter_counts_at_paper_values():
    generator = ResnetGenerator(3, 3, ngf=64, n_blocks=9)
    discriminator = NLayerDiscriminator(3, ndf=64, n_layers=3)
    assert count_parameters(generator) == 11_378_179
    assert count_parameters(discriminator) == 2_764_737
    assert format_parameters(count_parameters(generator)) == "11.378 M"
    assert format_parameters(count_parameters(discriminator)) == "2.765 M"


def test_generator_output_shape_and_range():
    generator = init_weights(ResnetGenerator(3, 3, ngf=64, n_blocks=9)).eval()
    with torch.no_grad():
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        y = generator(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1
    small = ResnetGenerator(3, 3, ngf=8, n_blocks=2).eval()
    with torch.no_grad():
        assert small(torch.zeros(1, 3, 32, 48)).shape == (1, 3, 32, 48)


@pytest.mark.parametrize("side, out_side", [(64, 6), (256, 30), (70, 6)])
def test_patchgan_output_map(side, out_side):
    discriminator = NLayerDiscriminator(3, ndf=64, n_layers=3).eval()
    with torch.no_grad():
        pred = discriminator(torch.zeros(1, 3, side, side))
    assert pred.shape == (1, 1, out_side, out_side)


def test_init_weights_normal_002():
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(3, 3, ngf=64, n_blocks=9), init_gain=0.02)
    weights = torch.cat(
        [m.weight.flatten() for m in generator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    )
    biases = torch.cat(
        [m.bias.flatten() for m in generator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    )
    assert abs(weights.std().item() - 0.02) < 0.0005
    assert abs(weights.mean().item()) < 0.0005
    assert torch.count_nonzero(biases) == 0
    affine = init_weights(torch.nn.BatchNorm2d(1000), init_gain=0.02)
    assert abs(affine.weight.mean().item() - 1.0) < 0.005
    assert abs(affine.weight.std().item() - 0.02) < 0.003
    assert torch.count_nonzero(affine.bias) == 0


# ----------------------------------------------------------------------------- settings, schedule, pool


def test_settings_defaults_round_trip_and_unknown_key():
    settings = CycleGANSettings()
    assert (settings.ngf, settings.ndf, settings.n_blocks, settings.n_layers_d) == (64, 64, 9, 3)
    assert (settings.load_size, settings.crop_size, settings.epochs, settings.epochs_decay) == (286, 256, 100, 100)
    assert (settings.lr, settings.beta1, settings.lambda_cycle, settings.lambda_identity) == (2e-4, 0.5, 10.0, 0.5)
    assert (settings.pool_size, settings.batch_size, settings.init_gain) == (50, 1, 0.02)
    assert CycleGANSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match="n_blockz"):
        CycleGANSettings.from_dict({"ngf": 8, "n_blockz": 2})
    with pytest.raises(ValueError, match="preprocess"):
        CycleGANSettings(preprocess="crop")
    with pytest.raises(ValueError, match="crop_size"):
        CycleGANSettings(load_size=64, crop_size=128)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_linear_decay_schedule():
    epochs, decay = 3, 4
    rule = linear_decay_rule(epochs, decay)
    assert [rule(e) for e in range(epochs + decay + 1)] == pytest.approx([1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0])

    settings = CycleGANSettings(ngf=4, ndf=4, n_blocks=0, epochs=epochs, epochs_decay=decay, lr=2e-4)
    model = CycleGANModel(settings, torch.device("cpu"), np.random.default_rng(0))
    lrs = []
    for _ in range(epochs + decay):
        lrs.append(model.lr)
        model.update_learning_rate()
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1.6e-4, 1.2e-4, 0.8e-4, 0.4e-4])
    assert model.lr == pytest.approx(0.0)
    assert model.optimizer_D.param_groups[0]["lr"] == pytest.approx(0.0)
    assert model.optimizer_G.param_groups[0]["betas"] == (0.5, 0.999)


def test_image_pool():
    images = torch.randn(5, 3, 4, 4)
    passthrough = ImagePool(0)
    assert passthrough.query(images) is images
    assert len(passthrough) == 0

    pool = ImagePool(3, np.random.default_rng(0))
    first = pool.query(images[:3])
    assert torch.equal(first, images[:3])  # filling: images come back unchanged
    assert len(pool) == 3
    given = list(images[:3])
    swaps = 0
    for _ in range(40):
        new = torch.randn(1, 3, 4, 4)
        out = pool.query(new)
        assert out.shape == new.shape
        assert len(pool) == 3  # never grows beyond the pool size
        if not torch.equal(out, new):  # swapped: an earlier image comes back out of the pool
            swaps += 1
            assert any(torch.equal(out[0], img) for img in given)
            assert any(torch.equal(new[0], img[0]) for img in pool.images)
        given.append(new[0])
    assert 8 <= swaps <= 32  # about half of the queries swap


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def reference_run(domains):
    a, b = domains
    settings = CycleGANSettings(**TINY)
    return train_cyclegan(a, b, settings, device="cpu", seed=7, log=quiet)


def test_training_decreases_cycle_loss_and_is_deterministic(domains, reference_run):
    history = reference_run.history
    assert list(history["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert list(history.columns) == ["epoch", *LOSS_NAMES, "lr", "seconds"]
    assert history["lr"].tolist() == pytest.approx([1e-3] * 3 + [1e-3 * 0.75, 1e-3 * 0.5, 1e-3 * 0.25])
    cycle = history["loss_cycle_A"] + history["loss_cycle_B"]
    assert cycle.iloc[-1] < 0.8 * cycle.iloc[0]
    assert reference_run.resumed_from_epoch == 0
    assert all(v.device.type == "cpu" for v in reference_run.generator_state.values())

    a, b = domains
    again = train_cyclegan(a, b, CycleGANSettings(**TINY), device="cpu", seed=7, log=quiet)
    assert states_equal(again.generator_state, reference_run.generator_state)
    assert np.array_equal(again.history[list(LOSS_NAMES)].values, history[list(LOSS_NAMES)].values)

    other_seed = train_cyclegan(a, b, dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0),
                                device="cpu", seed=8, log=quiet)
    assert not states_equal(other_seed.generator_state, reference_run.generator_state)


class Killed(Exception):
    pass


def test_resume_after_kill_matches_uninterrupted_run(domains, reference_run, tmp_path):
    a, b = domains
    settings = dataclasses.replace(CycleGANSettings(**TINY), checkpoint_every=1)
    checkpoint = tmp_path / "cyclegan.ckpt"

    def kill_after_epoch_2(message: str) -> None:
        if message.startswith("epoch 2/"):
            raise Killed

    with pytest.raises(Killed):
        train_cyclegan(a, b, settings, device="cpu", seed=7, checkpoint_path=checkpoint, log=kill_after_epoch_2)
    assert runtime.load_checkpoint(checkpoint)["epoch"] == 2

    messages = []
    resumed = train_cyclegan(a, b, settings, device="cpu", seed=7, checkpoint_path=checkpoint, log=messages.append)
    assert resumed.resumed_from_epoch == 2
    assert any(m.startswith("resuming") and "epoch 2/6" in m for m in messages)
    assert list(resumed.history["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert states_equal(resumed.generator_state, reference_run.generator_state)
    assert np.array_equal(
        resumed.history[list(LOSS_NAMES)].values, reference_run.history[list(LOSS_NAMES)].values
    )
    assert checkpoint.is_file()  # the caller deletes it
    assert runtime.load_checkpoint(checkpoint)["epoch"] == 6


def test_checkpoint_from_other_settings_is_ignored(domains, tmp_path):
    a, b = domains
    checkpoint = tmp_path / "cyclegan.ckpt"
    first = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0, checkpoint_every=1)
    train_cyclegan(a, b, first, device="cpu", seed=7, checkpoint_path=checkpoint, log=quiet)
    assert runtime.load_checkpoint(checkpoint)["epoch"] == 1

    messages = []
    other = dataclasses.replace(first, lambda_identity=0.0)
    result = train_cyclegan(a, b, other, device="cpu", seed=7, checkpoint_path=checkpoint, log=messages.append)
    assert result.resumed_from_epoch == 0
    assert any(m.startswith("ignoring checkpoint") for m in messages)
    assert result.history["loss_idt_A"].tolist() == [0.0]

    messages = []
    result = train_cyclegan(a, b[:5], other, device="cpu", seed=7, checkpoint_path=checkpoint, log=messages.append)
    assert result.resumed_from_epoch == 0  # other data, same settings
    assert any(m.startswith("ignoring checkpoint") for m in messages)


def test_nan_patches_raise_training_diverged(domains):
    a, b = domains
    bad = a.copy()
    bad[:, 3, 3, :] = np.nan
    settings = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0)
    with pytest.raises(runtime.TrainingDiverged, match=r"loss_\w+.*epoch 1"):
        train_cyclegan(bad, b, settings, device="cpu", seed=7, log=quiet)


def test_patch_sizes_are_checked(domains):
    a, b = domains
    with pytest.raises(ValueError, match="divisible by 4"):
        train_cyclegan(a[:, :30, :30], b[:, :30, :30], CycleGANSettings(**TINY), device="cpu", seed=0, log=quiet)
    with pytest.raises(ValueError, match="too small"):
        train_cyclegan(a[:, :16, :16], b[:, :16, :16], CycleGANSettings(**TINY), device="cpu", seed=0, log=quiet)
    with pytest.raises(ValueError, match=r"\(N, h, w, 3\)"):
        train_cyclegan(a[..., 0], b, CycleGANSettings(**TINY), device="cpu", seed=0, log=quiet)


def test_resize_crop_training_runs(domains):
    a, b = domains
    settings = CycleGANSettings(**{**TINY, "preprocess": "resize_crop", "load_size": 40, "crop_size": 32,
                                   "epochs": 1, "epochs_decay": 1, "batch_size": 2})
    result = train_cyclegan(a, b[:4], settings, device="cpu", seed=3, log=quiet)
    assert len(result.history) == 2
    assert np.isfinite(result.history[list(LOSS_NAMES)].values).all()


# ----------------------------------------------------------------------------- translation, I/O


@pytest.mark.parametrize("preprocess", ["native", "resize_crop"])
def test_translate_patches_shape_and_range(domains, preprocess):
    a, _ = domains
    settings = CycleGANSettings(ngf=8, ndf=8, n_blocks=1, preprocess=preprocess, load_size=72, crop_size=64)
    generator = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1))
    out = translate_patches(generator, a[:5], settings, device="cpu", batch_size=2)
    assert out.shape == a[:5].shape
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    odd = translate_patches(generator, a[:2, :30, :26], settings, device="cpu")
    assert odd.shape == (2, 30, 26, 3)


def test_save_load_generator_round_trip(domains, reference_run, tmp_path):
    a, _ = domains
    settings = CycleGANSettings(**TINY)
    path = tmp_path / "gen" / "generator.pt"
    save_generator(path, reference_run.generator_state, settings)
    loaded, loaded_settings = load_generator(path, "cpu")
    assert loaded_settings == settings
    assert not loaded.training
    assert states_equal(loaded.state_dict(), reference_run.generator_state)

    direct = ResnetGenerator(3, 3, ngf=settings.ngf, n_blocks=settings.n_blocks)
    direct.load_state_dict(reference_run.generator_state)
    expected = translate_patches(direct, a, settings, device="cpu")
    assert np.array_equal(translate_patches(loaded, a, loaded_settings, device="cpu"), expected)
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.pt", "cpu")


# ----------------------------------------------------------------------------- residual generator


def test_residual_generator_is_the_identity_when_its_network_outputs_zero(domains):
    a, _ = domains
    generator = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1, residual=True))
    assert not isinstance(generator.model[-1], torch.nn.Tanh)
    last = generator.model[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.from_numpy(a[:3].transpose(0, 3, 1, 2).copy()) * 2 - 1  # [-1, 1]
    with torch.no_grad():
        y = generator(x)
    assert torch.allclose(y, x.clamp(-0.999, 0.999), atol=1e-5)
    # at initialisation (no zeroing) it is already close to the identity, unlike the original
    fresh = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1, residual=True))
    original = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1))
    with torch.no_grad():
        assert (fresh(x) - x).abs().mean() < 0.5 * (original(x) - x).abs().mean()


def test_residual_generator_trains_saves_and_loads(domains, tmp_path):
    a, b = domains
    settings = CycleGANSettings(**{**TINY, "residual": True, "epochs": 1, "epochs_decay": 1})
    result = train_cyclegan(a, b, settings, device="cpu", seed=5, log=quiet)
    path = tmp_path / "generator.pt"
    save_generator(path, result.generator_state, settings)
    loaded, loaded_settings = load_generator(path, "cpu")
    assert loaded.residual and loaded_settings.residual
    out = translate_patches(loaded, a, loaded_settings, device="cpu")
    assert out.shape == a.shape and 0.0 <= out.min() and out.max() <= 1.0
    # structure kept after two epochs: the translation still correlates with its input
    assert np.corrcoef(out.mean(axis=3).ravel(), a.mean(axis=3).ravel())[0, 1] > 0.5


# ----------------------------------------------------------------------------- pretraining, fine-tuning


def pretrained_from(result, settings: CycleGANSettings) -> PretrainedCycleGAN:
    return PretrainedCycleGAN(
        networks=result.network_states,
        architecture=architecture(settings),
        fingerprint=result.fingerprint,
        source="test",
    )


def test_result_holds_all_four_networks(reference_run):
    assert set(reference_run.network_states) == {"netG_A", "netG_B", "netD_A", "netD_B"}
    assert states_equal(reference_run.network_states["netG_A"], reference_run.generator_state)
    assert len(reference_run.fingerprint) == 64


def test_fine_tuning_starts_from_the_pretrained_weights(domains, reference_run):
    a, b = domains
    init = pretrained_from(reference_run, CycleGANSettings(**TINY))
    # a vanishing learning rate: fine-tuning returns (almost) exactly the pretrained networks
    still = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0, lr=1e-12)
    messages = []
    result = train_cyclegan(a, b, still, device="cpu", seed=11, init=init, log=messages.append)
    assert any(m.startswith("starting from pretrained weights (test)") for m in messages)
    for name, state in result.network_states.items():
        for key, value in state.items():
            assert torch.allclose(value, reference_run.network_states[name][key], atol=1e-6), (name, key)
    # with a real learning rate, the first epoch starts where pretraining ended: its cycle loss
    # is far below the first epoch of a run from scratch
    tune = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0)
    tuned = train_cyclegan(a, b, tune, device="cpu", seed=11, init=init, log=quiet)
    scratch = train_cyclegan(a, b, tune, device="cpu", seed=11, log=quiet)
    cycle = lambda h: float(h["loss_cycle_A"].iloc[0] + h["loss_cycle_B"].iloc[0])  # noqa: E731
    assert cycle(tuned.history) < 0.8 * cycle(scratch.history)
    assert not states_equal(tuned.generator_state, reference_run.generator_state)


def test_train_layers_last_changes_only_the_generator_decoders(domains, reference_run):
    a, b = domains
    settings = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0, train_layers="last")
    init = pretrained_from(reference_run, settings)
    result = train_cyclegan(a, b, settings, device="cpu", seed=11, init=init, log=quiet)
    generator = ResnetGenerator(3, 3, ngf=settings.ngf, n_blocks=settings.n_blocks)
    decoder = {id(p) for p in generator.decoder_parameters()}
    decoder_keys = {k for k, p in generator.named_parameters() if id(p) in decoder}
    assert decoder_keys and len(decoder_keys) < len(dict(generator.named_parameters()))
    assert {k.split(".")[1] for k in decoder_keys} == {str(i) for i in range(generator.decoder_start, len(generator.model))} - {
        str(i) for i, m in enumerate(generator.model) if not list(m.parameters())
    }
    for name in ("netG_A", "netG_B"):
        before, after = reference_run.network_states[name], result.network_states[name]
        for key in dict(generator.named_parameters()):
            if key in decoder_keys:
                assert not torch.equal(before[key], after[key]), (name, key)
            else:
                assert torch.equal(before[key], after[key]), (name, key)
    for name in ("netD_A", "netD_B"):  # discriminators are trained in full
        assert not states_equal(reference_run.network_states[name], result.network_states[name])
    with pytest.raises(ValueError, match="train_layers"):
        CycleGANSettings(**{**TINY, "train_layers": "first"})


def test_pretrained_file_round_trip_and_architecture_check(domains, reference_run, tmp_path):
    settings = CycleGANSettings(**TINY)
    path = tmp_path / "pretrained" / "networks.pt"
    save_pretrained(path, reference_run, settings)
    loaded = load_pretrained(path)
    assert loaded.fingerprint == reference_run.fingerprint and loaded.source == str(path)
    for name, state in reference_run.network_states.items():
        assert states_equal(loaded.networks[name], state)
    loaded.check_architecture(dataclasses.replace(settings, epochs=1, lr=1e-5))  # schedule may differ
    with pytest.raises(ValueError, match=r"networks\.pt.*ngf 8 vs 16"):
        loaded.check_architecture(dataclasses.replace(settings, ngf=16))
    a, b = domains
    with pytest.raises(ValueError, match="n_blocks 1 vs 2"):
        train_cyclegan(a, b, dataclasses.replace(settings, n_blocks=2), device="cpu", seed=0, init=loaded, log=quiet)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_pretrained(tmp_path / "missing.pt")
    generator_file = tmp_path / "generator.pt"
    save_generator(generator_file, reference_run.generator_state, settings)
    with pytest.raises(ValueError, match="not a cyclesynth pretrained CycleGAN"):
        load_pretrained(generator_file)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt: unreadable"):
        load_pretrained(garbage)


def test_fingerprint_includes_the_initial_weights(domains):
    a, b = domains
    settings = CycleGANSettings(**TINY)
    scratch = training_fingerprint(settings, 1, a, b)
    assert training_fingerprint(settings, 1, a, b, "x" * 64) != scratch
    assert training_fingerprint(settings, 1, a, b, "x" * 64) != training_fingerprint(settings, 1, a, b, "y" * 64)
    assert training_fingerprint(settings, 1, a, b, None) == scratch


def test_fine_tuning_resumes_after_kill(domains, reference_run, tmp_path):
    a, b = domains
    settings = dataclasses.replace(CycleGANSettings(**TINY), epochs=2, epochs_decay=1, checkpoint_every=1)
    init = pretrained_from(reference_run, settings)
    whole = train_cyclegan(a, b, settings, device="cpu", seed=3, init=init, log=quiet)
    checkpoint = tmp_path / "tune.ckpt"

    def kill_after_epoch_1(message: str) -> None:
        if message.startswith("epoch 1/"):
            raise Killed

    with pytest.raises(Killed):
        train_cyclegan(a, b, settings, device="cpu", seed=3, init=init, checkpoint_path=checkpoint, log=kill_after_epoch_1)
    resumed = train_cyclegan(a, b, settings, device="cpu", seed=3, init=init, checkpoint_path=checkpoint, log=quiet)
    assert resumed.resumed_from_epoch == 1
    assert states_equal(resumed.generator_state, whole.generator_state)
    # the scratch run's checkpoint (same settings, seed, data) is not taken for a fine-tuning run
    other = tmp_path / "scratch.ckpt"
    train_cyclegan(a, b, settings, device="cpu", seed=3, checkpoint_path=other, log=quiet)
    messages = []
    again = train_cyclegan(a, b, settings, device="cpu", seed=3, init=init, checkpoint_path=other, log=messages.append)
    assert again.resumed_from_epoch == 0 and any(m.startswith("ignoring checkpoint") for m in messages)


# ----------------------------------------------------------------------------- efficient step


@pytest.mark.parametrize("preprocess", ["native", "resize_crop"])
def test_domain_batches_fill_one_buffer_with_the_right_crops(domains, preprocess):
    a, _ = domains
    settings = CycleGANSettings(**{**TINY, "preprocess": preprocess, "load_size": 40, "crop_size": 32, "batch_size": 3})
    data = DomainPatches(a, settings, torch.device("cpu"))
    pointers = set()
    for indices in ([0, 1, 2], [5, 3, 4], [2]):
        draw = np.random.default_rng(sum(indices))
        batch = data.batch(np.array(indices), draw)
        pointers.add(batch.data_ptr())
        replay = np.random.default_rng(sum(indices))
        n = len(indices)
        if preprocess == "resize_crop":
            offsets = replay.integers(0, 40 - 32 + 1, size=(n, 2))
        flips = replay.random(n) < 0.5
        for k, index in enumerate(indices):
            expected = data.data[index]
            if preprocess == "resize_crop":
                y, x = offsets[k]
                expected = expected[:, y : y + 32, x : x + 32]
            if flips[k]:
                expected = expected.flip(-1)
            assert torch.equal(batch[k], expected)
    assert len(pointers) == 1  # no new batch tensor per step
    with pytest.raises(ValueError, match="exceeds batch_size"):
        data.batch(np.arange(4), np.random.default_rng(0))


def test_cuda_options_on_cpu_train_as_float32_uncompiled(domains):
    """tf32 and float16 are CUDA modes: on the CPU the networks train in exact float32, and
    compile is left out; each choice is logged with its reason."""
    a, b = domains
    settings = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0)
    plain = train_cyclegan(a, b, settings, device="cpu", seed=4, log=quiet)
    for precision in ("tf32", "float16"):
        messages = []
        fast = dataclasses.replace(settings, precision=precision, compile="reduce-overhead")
        with_options = train_cyclegan(a, b, fast, device="cpu", seed=4, log=messages.append)
        assert any(f"precision float32 ({precision} is a CUDA mode: float32 on the CPU)" in m for m in messages)
        assert any("compile reduce-overhead requested but the device is not CUDA" in m for m in messages)
        assert states_equal(with_options.generator_state, plain.generator_state)


def test_auto_precision_on_cpu_without_native_bf16_is_exact_float32(domains, monkeypatch):
    a, b = domains
    settings = dataclasses.replace(CycleGANSettings(**TINY), epochs=1, epochs_decay=0)
    plain = train_cyclegan(a, b, settings, device="cpu", seed=4, log=quiet)
    monkeypatch.delenv(runtime.NATIVE_BF16_SWITCH, raising=False)  # the CPU as it is, also in a float32 suite
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: [])
    messages = []
    auto = train_cyclegan(a, b, dataclasses.replace(settings, precision="auto"), device="cpu", seed=4,
                          log=messages.append)
    assert any("precision float32 (auto: the CPU has no native bfloat16" in m for m in messages)
    assert states_equal(auto.generator_state, plain.generator_state)
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: ["avx512_bf16"])
    messages = []
    native = train_cyclegan(a, b, dataclasses.replace(settings, precision="auto"), device="cpu", seed=4,
                            log=messages.append)
    assert any("precision bfloat16 (auto: the CPU does bfloat16 natively (avx512_bf16))" in m for m in messages)
    assert not states_equal(native.generator_state, plain.generator_state)


def test_channels_last_on_cpu_is_used_only_after_the_layout_check(domains):
    """channels_last true on the CPU: the model checks the generator and discriminator in both
    layouts on this machine first and says what it chose; either way the step gives the
    float32 default-layout step (MODE_TOLERANCES["channels_last"])."""
    settings = CycleGANSettings(**{**TINY, "channels_last": True})
    model = CycleGANModel(settings, torch.device("cpu"), runtime.seed_everything(4))
    assert ("checked on this CPU" in model.layout_reason) == model.channels_last
    assert model.channels_last or "wrong gradients on this CPU" in model.layout_reason
    off = CycleGANModel(CycleGANSettings(**TINY), torch.device("cpu"), runtime.seed_everything(4))
    assert not off.channels_last and off.layout_reason == "default layout (channels_last false)"
    a, b = domains
    compare_with_float32(a, b, torch.device("cpu"), "channels_last")


def test_amp_is_retired_with_its_replacement_named_and_old_files_still_load(domains, reference_run, tmp_path):
    with pytest.raises(ValueError, match=r"'amp' was replaced by 'precision': amp true -> precision float16"):
        CycleGANSettings.from_dict({**TINY, "amp": True})
    assert CycleGANSettings.from_saved({**TINY, "amp": True}).precision == "float16"
    assert CycleGANSettings.from_saved({**TINY, "amp": False}).precision == "float32"
    with pytest.raises(ValueError, match="'precision' must be one of auto, float32, tf32, bfloat16, float16"):
        CycleGANSettings(precision="half")
    with pytest.raises(ValueError, match="'compile' must be one of none, reduce-overhead"):
        CycleGANSettings(compile="max-autotune")
    # a generator saved before the change (settings with amp) loads
    path = tmp_path / "old.pt"
    settings = CycleGANSettings(**TINY)
    save_generator(path, reference_run.generator_state, settings)
    payload = torch.load(path, weights_only=False)
    old = {k: v for k, v in payload["settings"].items() if k not in ("precision", "compile")}
    payload["settings"] = {**old, "amp": False}
    torch.save(payload, path)
    _, loaded = load_generator(path, "cpu")
    assert loaded == settings


def test_precision_sets_tf32_for_the_step_and_restores_it():
    # the flags are plain globals, so the CUDA behaviour can be checked without a card
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # a card's cuDNN default
        for name, inside in (("float32", False), ("tf32", True), ("bfloat16", False), ("float16", False)):
            with runtime.Precision(name, "cuda").tf32():
                assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (inside, inside)
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        with runtime.Precision("float32", "cpu").tf32():  # no CUDA: nothing touched
            assert torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
    cpu = torch.device("cpu")
    assert [runtime.training_precision(n, cpu).name for n in ("float32", "tf32", "bfloat16", "float16")] == [
        "float32", "float32", "bfloat16", "float32"]
    cuda = torch.device("cuda")
    assert [runtime.training_precision(n, cuda).name for n in runtime.PRECISIONS] == ["float32"] + list(runtime.MODES)
    assert runtime.Precision("float16", "cpu").scaler().is_enabled()
    assert not runtime.Precision("bfloat16", "cpu").scaler().is_enabled()


# One step of each mode against true float32 (TF32 off), at the same weights and batch.
# Tolerances: losses relative; gradients as the relative L2 error per network. At random
# initialisation a generator's gradient is a sum of many nearly cancelling terms, so rounding
# moves it much more than the losses: measured on the CPU (torch 2.13, these tiny networks)
# bfloat16 changes the generators' gradients by 0.33 / 0.42 and the discriminators' by
# 0.16 / 0.22, float16 by 0.06 / 0.15 and 0.02 / 0.02, the losses by at most 1.4e-2
# (bfloat16) and 1.7e-3 (float16). The bounds leave about 2x room above those.
MODE_TOLERANCES = {
    "channels_last": {"loss": 1e-4, "D": 1e-3, "G": 1e-3},
    "tf32": {"loss": 1e-2, "D": 0.1, "G": 0.3},
    "float16": {"loss": 1e-2, "D": 0.1, "G": 0.3},
    "bfloat16": {"loss": 5e-2, "D": 0.4, "G": 0.8},
}


def step_outcome(a, b, settings, device, precision, scale=None):
    """Losses and per-network gradients of one step from the seed-4 initialisation, and
    whether the gradient scaler skipped it (its scale went down)."""
    model = CycleGANModel(settings, device, runtime.seed_everything(4), precision=precision)
    if scale is not None:
        model.scaler = torch.amp.GradScaler(device.type, init_scale=scale)
    layout = model.channels_last
    data_a, data_b = (DomainPatches(a, settings, device, channels_last=layout),
                      DomainPatches(b, settings, device, channels_last=layout))
    real_a = data_a.batch(np.array([0]), np.random.default_rng(0)).clone()
    real_b = data_b.batch(np.array([1]), np.random.default_rng(1)).clone()
    before = model.scaler.get_scale() if model.scaler.is_enabled() else None
    losses = model.optimize_parameters(real_a, real_b).float().cpu()
    skipped = before is not None and model.scaler.get_scale() < before
    grads = {
        name: torch.cat([p.grad.float().flatten().cpu() for p in net.parameters() if p.grad is not None])
        for name, net in model.networks().items()
    }
    return losses, grads, skipped


def compare_with_float32(a, b, device, mode):
    """One step in ``mode`` (a precision, or channels_last in float32) against true float32 in
    the default layout. A float16 step that the scaler skips (its gradients overflowed, as the
    first steps at the initial scale 65536 do) is not compared: the same step is taken again
    from the same weights at the halved scale the scaler moved to, until one is not skipped.
    Returns the number of skipped steps."""
    settings = CycleGANSettings(**TINY)
    reference = step_outcome(a, b, settings, device, runtime.Precision("float32", device.type))
    if mode == "channels_last":
        settings, precision = CycleGANSettings(**{**TINY, "channels_last": True}), "float32"
    else:
        precision = mode
    scale = 2.0**16 if precision == "float16" else None
    for skipped_steps in range(24):
        losses, grads, skipped = step_outcome(a, b, settings, device, runtime.Precision(precision, device.type), scale)
        if not skipped:
            break
        scale /= 2
    else:
        raise AssertionError("the float16 scaler skipped 24 steps in a row")
    tolerance = MODE_TOLERANCES[mode]
    torch.testing.assert_close(losses, reference[0], rtol=tolerance["loss"], atol=tolerance["loss"] * 1e-2)
    for name, grad in grads.items():
        assert torch.isfinite(grad).all(), name
        error = float((grad - reference[1][name]).norm() / reference[1][name].norm())
        assert error < tolerance[name[3]], (mode, name, error)
    return skipped_steps


@pytest.mark.parametrize("mode", ["bfloat16", "float16"])
def test_autocast_step_on_cpu_is_close_to_float32(domains, mode):
    """The autocast code paths of the step, run on the CPU by forcing the precision (the
    workflow trains in float32 on a CPU): bfloat16 without a scaler, float16 with one that
    skips its first steps (gradients overflow at the initial scale) and is then compared."""
    a, b = domains
    skipped = compare_with_float32(a, b, torch.device("cpu"), mode)
    assert skipped == 0 if mode == "bfloat16" else skipped >= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["channels_last", "tf32", "bfloat16", "float16"])
def test_cuda_options_give_the_same_step(domains, mode):
    """One training step on one batch on CUDA: losses and all four networks' gradients agree
    with true float32 (TF32 off, default layout) at the mode's tolerance
    (:data:`MODE_TOLERANCES`); float16 steps the scaler skips are skipped, not compared.
    Not yet run on a card: written without a GPU (the tolerances come from CPU runs of the
    autocast modes); the first GPU session runs it (scripts/gpu_check.sh)."""
    a, b = domains
    compare_with_float32(a, b, torch.device("cuda"), mode)


# ----------------------------------------------------------------------------- compilation


def compiled_and_eager_runs(a, b, device, backend=None, steps=4):
    """Losses of ``steps`` steps (image pools filling, then swapping; discriminators switched
    between frozen and trained each step) and G_A's weights after them, eager and compiled."""
    settings = CycleGANSettings(**{**TINY, "pool_size": 2, "compile": "reduce-overhead"})
    outcomes = []
    for compile_backend in (None, backend):
        model = CycleGANModel(settings, device, runtime.seed_everything(4), compile_backend=compile_backend)
        data_a, data_b = DomainPatches(a, settings, device), DomainPatches(b, settings, device)
        rng = np.random.default_rng(0)
        losses = []
        for index_a, index_b in list(epoch_batches(len(data_a), len(data_b), 1, rng))[:steps]:
            losses.append(model.optimize_parameters(data_a.batch(index_a, rng), data_b.batch(index_b, rng)).cpu())
        model.update_learning_rate()
        outcomes.append((torch.stack(losses), model.netG_A.state_dict(), model.compiled, model.lr))
    return outcomes


def test_compiled_step_gives_the_eager_losses_on_cpu(domains):
    """torch.compile traces the step's networks (backend aot_eager: the traced forward and
    backward graphs run eagerly, so this checks the capture, its guards and recompiles, not
    the CUDA-graph code generation): the same losses and weights as eager, the same random
    pool swaps (one generator drives both runs) and learning-rate schedule."""
    a, b = domains
    (eager_losses, eager_state, eager_compiled, eager_lr), (losses, state, compiled, lr) = compiled_and_eager_runs(
        a, b, torch.device("cpu"), backend="aot_eager"
    )
    assert compiled and not eager_compiled and lr == eager_lr
    torch.testing.assert_close(losses, eager_losses, rtol=1e-5, atol=1e-6)
    assert state.keys() == eager_state.keys()  # compiled in place: the saved weights keep their names
    for key in state:
        torch.testing.assert_close(state[key], eager_state[key], rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reduce_overhead_step_on_cuda_matches_eager(domains):
    """compile reduce-overhead (inductor kernels replayed as CUDA graphs) against the eager
    step in true float32 over four steps. Inductor fuses and reorders arithmetic, so the
    losses agree to rounding, not bit for bit. Not yet run on a card (written without a GPU)."""
    a, b = domains
    (eager_losses, eager_state, _, eager_lr), (losses, state, compiled, lr) = compiled_and_eager_runs(
        a, b, torch.device("cuda")
    )
    assert compiled and lr == eager_lr
    torch.testing.assert_close(losses, eager_losses, rtol=1e-3, atol=1e-4)
    for key in state:
        torch.testing.assert_close(state[key], eager_state[key], rtol=1e-2, atol=1e-4)
