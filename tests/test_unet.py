"""U-Net network, training loop, augmentation, checkpoint/resume, prediction, model files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cyclesynth.runtime import TrainingDiverged
from cyclesynth.segmentation.unet import UNet, count_parameters, required_divisor
from cyclesynth.segmentation.settings import UNetSettings
from cyclesynth.segmentation.augmentation import augment_batch
from cyclesynth.segmentation.training import build_model, train_unet
from cyclesynth.segmentation.saved import load_model, save_model
from cyclesynth.segmentation.inference import predict_probabilities
from cyclesynth.segmentation.loss import weighted_cross_entropy

torch.set_num_threads(min(2, torch.get_num_threads()))  # a worker's share under xdist


# ------------------------------------------------------------------------------------------
# synthetic data: dark lines ("vessels") on a bright, reddish background
# ------------------------------------------------------------------------------------------


def synthetic_pair(rng: np.random.Generator, size: int = 64, n_lines: int = 12):
    from skimage.draw import line

    label = np.zeros((size, size), bool)
    for _ in range(n_lines):
        r0, c0, r1, c1 = rng.integers(0, size, 4)
        rr, cc = line(r0, c0, r1, c1)
        label[rr, cc] = True
    image = np.ones((size, size, 3)) * np.array([0.85, 0.55, 0.35])
    image[label] *= 0.4
    image += rng.normal(0, 0.03, image.shape)
    return np.clip(image, 0, 1).astype(np.float32), label


def tiny_settings(**overrides) -> UNetSettings:
    values = dict(
        base_channels=8, depth=2, patch_size=16, patch_stride=16, batch_size=8,
        epochs=12, lr=1e-2, vessel_weight=10.0, checkpoint_every=2,
    )
    values.update(overrides)
    return UNetSettings(**values)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    pairs = [synthetic_pair(rng) for _ in range(3)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def quiet(_message: str) -> None:
    pass


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------
# network
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_output_has_input_size(depth):
    net = UNet(in_channels=3, n_classes=2, base_channels=4, depth=depth)
    h, w = 2 * required_divisor(depth), 3 * required_divisor(depth)
    out = net(torch.rand(2, 3, h, w))
    assert out.shape == (2, 2, h, w)


def test_required_divisor():
    assert [required_divisor(d) for d in (1, 2, 3, 4)] == [2, 4, 8, 16]


def test_wrong_size_raises_naming_size_and_divisor():
    net = UNet(base_channels=4, depth=3)
    with pytest.raises(ValueError, match=r"20x24.*\b8\b"):
        net(torch.rand(1, 3, 20, 24))
    with pytest.raises(ValueError, match=r"20x20.*\b16\b"):
        UNet(base_channels=4, depth=4, input_size=20)
    with pytest.raises(ValueError, match="patch_size"):
        UNetSettings(patch_size=24, depth=4)


def test_parameter_count_matches_closed_form():
    def conv(ci, co, k=3):  # weights + biases
        return k * k * ci * co + co

    def double(ci, co):
        return conv(ci, co) + conv(co, co)

    c = [64 * 2**level for level in range(5)]  # 64 ... 1024
    encoder = double(3, c[0]) + sum(double(c[l - 1], c[l]) for l in range(1, 5))
    decoder = sum(conv(c[l + 1], c[l], k=2) + double(2 * c[l], c[l]) for l in range(4))
    head = conv(c[0], 2, k=1)
    expected = encoder + decoder + head
    assert expected == 31_031_810
    assert count_parameters(UNet(3, 2, 64, 4, batch_norm=False)) == expected
    # batch norm: convolutions lose their bias, each gains a scale and a shift
    n_convs_channels = 2 * sum(c) + 2 * sum(c[:4])
    assert count_parameters(UNet(3, 2, 64, 4, batch_norm=True)) == expected + n_convs_channels


# ------------------------------------------------------------------------------------------
# loss and augmentation
# ------------------------------------------------------------------------------------------


def test_weighted_cross_entropy_by_hand():
    # 4 pixels in a 1x2x2x... layout: logits (1, 2, 1, 4)
    z = [(0.0, 1.0), (2.0, -1.0), (0.5, 0.5), (-1.0, 3.0)]
    y = [1, 0, 1, 0]
    w = 10.0
    logits = torch.tensor([[[[a for a, _ in z]], [[b for _, b in z]]]])
    labels = torch.tensor([[y]])

    def nll(pair, cls):
        return -(pair[cls] - math.log(math.exp(pair[0]) + math.exp(pair[1])))

    weights = [w if t == 1 else 1.0 for t in y]
    expected = sum(wi * nll(p, t) for wi, p, t in zip(weights, z, y)) / sum(weights)
    got = weighted_cross_entropy(logits, labels, w).item()
    assert got == pytest.approx(expected, rel=1e-6)


def test_flips_keep_image_and_label_aligned():
    g = torch.Generator().manual_seed(3)
    images = torch.rand(32, 3, 16, 16)
    labels = (images[:, 0] > 0.5).to(torch.uint8)
    out_images, out_labels = augment_batch(images, labels, "flips", g)
    assert out_images.shape == images.shape and out_labels.shape == labels.shape
    assert torch.equal(out_labels, (out_images[:, 0] > 0.5).to(torch.uint8))
    changed = [(not torch.equal(a, b)) for a, b in zip(out_images, images)]
    assert 16 <= sum(changed) < 32  # about 1/8 of the samples draw the identity
    # every output is a dihedral transform of its input: same multiset of values
    assert torch.equal(out_images.flatten(1).sort(dim=1).values, images.flatten(1).sort(dim=1).values)
    # same generator seed, same batch
    again = augment_batch(images, labels, "flips", torch.Generator().manual_seed(3))
    assert torch.equal(again[0], out_images) and torch.equal(again[1], out_labels)


def test_photometric_changes_image_only_and_stays_in_range():
    g = torch.Generator().manual_seed(5)
    images = torch.rand(16, 3, 16, 16)
    labels = (images[:, 0] > 0.5).to(torch.uint8)
    flips_only, flips_labels = augment_batch(images, labels, "flips", torch.Generator().manual_seed(5))
    out_images, out_labels = augment_batch(images, labels, "photometric", g)
    # the geometric part is the same as "flips" with the same generator; labels untouched otherwise
    assert torch.equal(out_labels, flips_labels)
    assert out_images.min() >= 0 and out_images.max() <= 1
    assert (out_images - flips_only).abs().mean() > 0.05
    assert torch.isfinite(out_images).all()


def test_none_augmentation_is_identity_and_unknown_mode_raises():
    images, labels = torch.rand(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.uint8)
    out = augment_batch(images, labels, "none", torch.Generator())
    assert out[0] is images and out[1] is labels
    with pytest.raises(ValueError, match="rotate"):
        augment_batch(images, labels, "rotate", torch.Generator())


# ------------------------------------------------------------------------------------------
# settings
# ------------------------------------------------------------------------------------------


def test_settings_round_trip_and_unknown_keys():
    s = tiny_settings(augment="flips")
    assert UNetSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="learning_rate"):
        UNetSettings.from_dict({"learning_rate": 0.1, "epochs": 3})
    with pytest.raises(ValueError, match="augment"):
        UNetSettings(augment="mixup")
    assert UNetSettings().to_dict()["epochs"] == 150


# ------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(data):
    images, labels = data
    return train_unet(images, labels, None, tiny_settings(), device="cpu", seed=7, log=quiet)


def test_training_learns_dark_lines(trained):
    history = trained.history
    assert list(history.columns) == ["epoch", "loss", "seconds"]
    assert list(history.epoch) == list(range(1, 13))
    assert history.loss.iloc[-1] < 0.3 * history.loss.iloc[0]
    assert trained.resumed_from_epoch == 0
    assert trained.n_patches == 3 * 16

    image, label = synthetic_pair(np.random.default_rng(123))
    model = build_model(trained.settings)
    model.load_state_dict(trained.state)
    probability = predict_probabilities(model, image, patch_size=16, stride=16, device="cpu")
    predicted = probability >= 0.5
    accuracy = (predicted == label).mean()
    sensitivity = (predicted & label).sum() / label.sum()
    specificity = (~predicted & ~label).sum() / (~label).sum()
    assert accuracy > 0.95 and sensitivity > 0.8 and specificity > 0.9


def test_training_is_deterministic_for_a_seed(data, trained):
    images, labels = data
    again = train_unet(images, labels, None, tiny_settings(), device="cpu", seed=7, log=quiet)
    assert states_equal(again.state, trained.state)
    other = train_unet(images, labels, None, tiny_settings(epochs=2), device="cpu", seed=8, log=quiet)
    assert not states_equal(other.state, trained.state)


class Killed(Exception):
    pass


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_kill_equals_uninterrupted_run(data, tmp_path, schedule):
    images, labels = data
    settings = tiny_settings(epochs=6, augment="photometric", checkpoint_every=2, lr_schedule=schedule)
    reference = train_unet(images, labels, None, settings, device="cpu", seed=11, log=quiet)

    checkpoint = tmp_path / "ckpt" / "unet.ckpt"

    def dies_after_epoch_3(message: str) -> None:
        if message.startswith("U-Net epoch 3/"):
            raise Killed(message)

    with pytest.raises(Killed):
        train_unet(images, labels, None, settings, device="cpu", seed=11,
                   checkpoint_path=checkpoint, log=dies_after_epoch_3)
    assert checkpoint.is_file()

    lines: list[str] = []
    resumed = train_unet(images, labels, None, settings, device="cpu", seed=11,
                         checkpoint_path=checkpoint, log=lines.append)
    assert resumed.resumed_from_epoch == 2
    assert any("resuming" in line and "epoch 2" in line for line in lines)
    assert list(resumed.history.epoch) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(resumed.history.loss, reference.history.loss, rtol=0, atol=0)
    assert states_equal(resumed.state, reference.state)

    # a checkpoint from other settings is not mixed in
    changed = train_unet(images, labels, None, tiny_settings(epochs=1, lr=5e-3), device="cpu",
                         seed=11, checkpoint_path=checkpoint, log=quiet)
    assert changed.resumed_from_epoch == 0


def test_nan_input_raises_training_diverged(data):
    images, labels = data
    bad = [image.copy() for image in images]
    bad[1][5, 5, 0] = np.nan
    with pytest.raises(TrainingDiverged, match="epoch 1"):
        train_unet(bad, labels, None, tiny_settings(epochs=2), device="cpu", seed=0, log=quiet)


def test_bad_inputs_are_rejected_before_training(data):
    images, labels = data
    with pytest.raises(ValueError, match="label shape"):
        train_unet(images, [l[:-1] for l in labels], None, tiny_settings(), device="cpu", seed=0, log=quiet)
    with pytest.raises(ValueError, match="larger than the image"):
        train_unet(images, labels, None, tiny_settings(patch_size=128, patch_stride=128),
                   device="cpu", seed=0, log=quiet)


def test_skip_empty_patches_uses_fov(data):
    images, labels = data
    fovs = [np.zeros(l.shape, bool) for l in labels]
    for f in fovs:
        f[:32, :32] = True  # 4 of the 16 patches per image
    result = train_unet(images, labels, fovs, tiny_settings(epochs=1, skip_empty_patches=True),
                        device="cpu", seed=0, log=quiet)
    assert result.n_patches == 3 * 4


# ------------------------------------------------------------------------------------------
# prediction and model files
# ------------------------------------------------------------------------------------------


def test_predict_on_size_not_divisible_by_patch(trained):
    model = build_model(trained.settings)
    model.load_state_dict(trained.state)
    model.train()
    image = np.random.default_rng(1).random((37, 45, 3)).astype(np.float32)
    p = predict_probabilities(model, image, patch_size=16, stride=16, device="cpu", batch_size=5)
    assert p.shape == (37, 45) and p.dtype == np.float32
    assert p.min() >= 0 and p.max() <= 1
    assert model.training  # the caller's mode is restored
    overlapping = predict_probabilities(model, image, patch_size=16, stride=8, device="cpu")
    assert overlapping.shape == (37, 45)


def test_save_load_round_trip(trained, tmp_path):
    path = tmp_path / "unet" / "model.pt"
    save_model(path, trained.state, trained.settings)
    model, settings = load_model(path, "cpu")
    assert settings == trained.settings
    assert not model.training
    assert states_equal({k: v for k, v in model.state_dict().items()}, trained.state)
    image, _ = synthetic_pair(np.random.default_rng(5), size=32)
    reference = build_model(trained.settings)
    reference.load_state_dict(trained.state)
    a = predict_probabilities(model, image, patch_size=16, stride=16, device="cpu")
    b = predict_probabilities(reference, image, patch_size=16, stride=16, device="cpu")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_model(tmp_path / "missing.pt", "cpu")


def test_learning_rate_schedules():
    from cyclesynth.segmentation.settings import learning_rate

    constant = UNetSettings(lr=1e-3)
    assert [learning_rate(constant, step, 10) for step in (0, 5, 9)] == [1e-3] * 3
    cosine = UNetSettings(lr=1e-3, lr_schedule="cosine")
    rates = [learning_rate(cosine, step, 11) for step in range(11)]
    assert rates[0] == pytest.approx(1e-3) and rates[5] == pytest.approx(5e-4) and rates[-1] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ValueError, match="lr_schedule"):
        UNetSettings(lr_schedule="step")


def test_cosine_schedule_changes_training(data):
    images, labels = data
    constant = train_unet(images, labels, None, tiny_settings(epochs=3), device="cpu", seed=2, log=quiet)
    cosine = train_unet(images, labels, None, tiny_settings(epochs=3, lr_schedule="cosine"), device="cpu",
                        seed=2, log=quiet)
    # the first step is the same (full lr); later ones are smaller, so the weights differ
    assert not states_equal(constant.state, cosine.state)


# ------------------------------------------------------------------------------------------
# precision and compilation
# ------------------------------------------------------------------------------------------


def test_precision_and_compile_settings_on_cpu(data):
    """Bad values are refused naming the key; on a CPU tf32 and float16 (CUDA modes) train in
    exact float32, compile is left out, and each choice is logged with its reason."""
    images, labels = data
    with pytest.raises(ValueError, match="'precision' must be one of auto, float32, tf32, bfloat16, float16"):
        tiny_settings(precision="half")
    with pytest.raises(ValueError, match="'compile' must be one of none, reduce-overhead"):
        tiny_settings(compile="max-autotune")
    with pytest.raises(ValueError, match="'channels_last' must be auto, true or false"):
        tiny_settings(channels_last="yes")
    plain = train_unet(images, labels, None, tiny_settings(epochs=1), device="cpu", seed=7, log=quiet)
    for precision in ("tf32", "float16"):
        messages = []
        fast = tiny_settings(epochs=1, precision=precision, compile="reduce-overhead")
        again = train_unet(images, labels, None, fast, device="cpu", seed=7, log=messages.append)
        assert any(f"precision float32 ({precision} is a CUDA mode: float32 on the CPU)" in m for m in messages)
        assert any("compile reduce-overhead requested but the device is not CUDA" in m for m in messages)
        assert states_equal(again.state, plain.state)


def test_auto_precision_follows_the_cpu(data, monkeypatch):
    """``auto`` on a CPU without native bf16 trains in exact float32 (bit-identical weights);
    with native bf16 (amx_bf16 or avx512_bf16, as torch reports) it trains in bfloat16."""
    from cyclesynth import runtime

    images, labels = data
    plain = train_unet(images, labels, None, tiny_settings(epochs=1), device="cpu", seed=7, log=quiet)
    monkeypatch.delenv(runtime.NATIVE_BF16_SWITCH, raising=False)  # the CPU as it is, also in a float32 suite
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: [])
    messages = []
    emulated = train_unet(images, labels, None, tiny_settings(epochs=1, precision="auto"), device="cpu", seed=7,
                          log=messages.append)
    assert any("precision float32 (auto: the CPU has no native bfloat16" in m for m in messages)
    assert states_equal(emulated.state, plain.state)
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: ["avx512_bf16"])
    messages = []
    native = train_unet(images, labels, None, tiny_settings(epochs=1, precision="auto"), device="cpu", seed=7,
                        log=messages.append)
    assert any("precision bfloat16 (auto: the CPU does bfloat16 natively (avx512_bf16))" in m for m in messages)
    assert not states_equal(native.state, plain.state)
    assert runtime.choose_precision("auto", torch.device("cuda"))[0].name == "float32"


def test_prediction_runs_in_the_training_precision(data, tmp_path, monkeypatch):
    """A U-Net trained in bfloat16 predicts in bfloat16: the probabilities differ from a
    float32 prediction by bfloat16 rounding only, and are still float32 in [0, 1]."""
    from cyclesynth import runtime
    from cyclesynth.segmentation.saved import prediction_precision

    images, labels = data
    monkeypatch.delenv(runtime.NATIVE_BF16_SWITCH, raising=False)  # the CPU as it is, also in a float32 suite
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: ["amx_bf16"])
    settings = tiny_settings(epochs=2, precision="auto")
    result = train_unet(images, labels, None, settings, device="cpu", seed=7, log=quiet)
    save_model(tmp_path / "m.pt", result.state, settings)
    model, loaded = load_model(tmp_path / "m.pt", "cpu")
    precision, reason = prediction_precision(loaded, "cpu")
    assert precision.name == "bfloat16" and "natively" in reason
    image = images[0]
    in_bf16 = predict_probabilities(model, image, patch_size=16, stride=16, device="cpu", precision=precision)
    in_fp32 = predict_probabilities(model, image, patch_size=16, stride=16, device="cpu")
    assert in_bf16.dtype == np.float32 and 0.0 <= in_bf16.min() and in_bf16.max() <= 1.0
    difference = np.abs(in_bf16 - in_fp32)
    assert 0.0 < difference.max() < 0.05 and difference.mean() < 5e-3
    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: [])
    assert prediction_precision(loaded, "cpu")[0].name == "float32"


def unet_step(data, device, precision: str, scale=None, compile=None, steps=1):
    """Losses of ``steps`` steps from the seed-3 initialisation (flips on; one batch of the
    data's patches), the gradients of the last one and whether the scaler skipped it.
    ``compile``: ``reduce-overhead`` (CUDA), or a torch.compile backend such as ``aot_eager``."""
    from cyclesynth import runtime
    from cyclesynth.segmentation.training import _cut_training_patches, training_step

    images, labels = data
    settings = tiny_settings(augment="flips")
    x, y = _cut_training_patches(images, labels, None, settings)
    x, y = torch.from_numpy(x[:8]).to(device), torch.from_numpy(y[:8]).to(device)
    torch.manual_seed(3)
    model = build_model(settings).to(device)
    compiled = compile is not None and runtime.compile_for_training(
        model, "reduce-overhead", device, backend=None if compile == "reduce-overhead" else compile
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    scaler = torch.amp.GradScaler(device.type, init_scale=scale) if scale is not None else None
    generator = torch.Generator(device=device).manual_seed(0)
    losses = []
    for _ in range(steps):
        losses.append(float(training_step(
            model, optimizer, x, y, settings, generator,
            precision=runtime.Precision(precision, device.type), scaler=scaler, compiled=compiled,
        )))
    skipped = scaler is not None and scaler.get_scale() < scale
    grads = torch.cat([p.grad.float().flatten().cpu() for p in model.parameters()])
    return losses, grads, skipped, model


# (loss relative, gradient relative L2). Measured on the CPU (torch 2.13, this tiny U-Net, one
# step): bfloat16 moves the loss by 8.5e-5 and the gradients by 0.057, float16 by 1.2e-4 and
# 0.015. The bounds leave room above those for a card's kernels.
UNET_MODE_TOLERANCES = {"tf32": (5e-3, 0.1), "float16": (5e-3, 0.1), "bfloat16": (1e-2, 0.2)}


def compare_unet_with_float32(data, device, mode):
    """One U-Net step in ``mode`` against true float32 from the same weights and batch; float16
    steps the scaler skips are taken again at the halved scale, not compared."""
    reference_losses, reference_grads, _, _ = unet_step(data, device, "float32")
    scale = 2.0**16 if mode == "float16" else None
    for skipped_steps in range(24):
        losses, grads, skipped, _ = unet_step(data, device, mode, scale)
        if not skipped:
            break
        scale /= 2
    else:
        raise AssertionError("the float16 scaler skipped 24 steps in a row")
    loss_tolerance, grad_tolerance = UNET_MODE_TOLERANCES[mode]
    assert losses[0] == pytest.approx(reference_losses[0], rel=loss_tolerance)
    assert torch.isfinite(grads).all()
    error = float((grads - reference_grads).norm() / reference_grads.norm())
    assert error < grad_tolerance, (mode, error)
    return skipped_steps


@pytest.mark.parametrize("mode", ["bfloat16", "float16"])
def test_unet_autocast_step_on_cpu_is_close_to_float32(data, mode):
    compare_unet_with_float32(data, torch.device("cpu"), mode)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_unet_channels_last_step_on_cpu_is_close_to_the_default_layout(data, precision):
    """The U-Net in channels_last on the CPU against the default layout, one step from the
    same weights and batch in the same precision: the loss agrees to 1e-5 (float32) / 1e-2
    (bfloat16) relative and the gradients to 1e-2 / 0.1 relative L2. Measured (torch 2.13,
    AMD EPYC with AVX512-BF16): float32 2e-3 (batch-norm's backward in float32 differs by
    about that between the layouts, against float64 either is ~1e-3 off), bfloat16 ~1e-2."""
    from cyclesynth import runtime
    from cyclesynth.segmentation.training import _cut_training_patches, training_step

    images, labels = data
    settings = tiny_settings(augment="flips")
    x, y = _cut_training_patches(images, labels, None, settings)
    x, y = torch.from_numpy(x[:8]), torch.from_numpy(y[:8])
    outcomes = []
    for channels_last in (False, True):
        torch.manual_seed(3)
        model = build_model(settings)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        loss = training_step(model, optimizer, x, y, settings, torch.Generator().manual_seed(0),
                             precision=runtime.Precision(precision, "cpu"), channels_last=channels_last)
        outcomes.append((float(loss), torch.cat([p.grad.float().flatten() for p in model.parameters()])))
    (loss_a, grads_a), (loss_b, grads_b) = outcomes
    loss_tolerance, grad_tolerance = {"float32": (1e-5, 1e-2), "bfloat16": (1e-2, 0.1)}[precision]
    assert loss_b == pytest.approx(loss_a, rel=loss_tolerance)
    assert float((grads_b - grads_a).norm() / grads_a.norm()) < grad_tolerance


def test_channels_last_is_used_only_where_the_layout_check_passes(data):
    """``choose_channels_last``: false never; auto on the CPU checks the kernels and takes the
    layout when the gradients agree (the U-Net on this CPU), keeps the default layout when
    they do not (a network that computes something else in channels_last), and skips the
    check when the layout is not faster (``cpu_default`` false)."""
    from cyclesynth import runtime

    class LayoutDependent(torch.nn.Module):  # a stand-in for a wrong channels-last kernel
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y * 3.0 if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 else y

    sample = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    fp32 = runtime.Precision("float32", "cpu")
    unet = build_model(tiny_settings())
    used, reason = runtime.choose_channels_last("auto", unet, sample, fp32, cpu_default=True)
    assert used and "checked on this CPU" in reason
    assert runtime.layout_error(unet, sample, fp32) < 1e-2
    used, reason = runtime.choose_channels_last(True, LayoutDependent(), sample, fp32, cpu_default=True)
    assert not used and "wrong gradients on this CPU" in reason
    assert runtime.choose_channels_last("auto", unet, sample, fp32, cpu_default=False)[0] is False
    assert runtime.choose_channels_last(False, unet, sample, fp32, cpu_default=True) == (
        False, "default layout (channels_last false)")
    images, labels = data
    messages = []
    train_unet(images, labels, None, tiny_settings(epochs=1, channels_last="auto"), device="cpu", seed=7,
               log=messages.append)
    assert any("channels_last (checked on this CPU" in m for m in messages)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("mode", ["tf32", "bfloat16", "float16"])
def test_unet_cuda_precisions_give_the_float32_step(data, mode):
    """One U-Net step per precision on CUDA against true float32 (TF32 off), at the mode's
    tolerance (UNET_MODE_TOLERANCES); float16 steps the scaler skips are not compared.
    Not yet run on a card: written without a GPU; the first GPU session runs it."""
    compare_unet_with_float32(data, torch.device("cuda"), mode)


def test_unet_compiled_step_gives_the_eager_losses_on_cpu(data):
    """torch.compile of the U-Net (backend aot_eager: the traced graphs run eagerly; this
    checks the capture, batch-norm statistics included, not CUDA-graph code generation)."""
    eager, _, _, eager_model = unet_step(data, torch.device("cpu"), "float32", steps=3)
    compiled, _, _, model = unet_step(data, torch.device("cpu"), "float32", compile="aot_eager", steps=3)
    assert compiled == pytest.approx(eager, rel=1e-5)
    assert model.state_dict().keys() == eager_model.state_dict().keys()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, eager_model.state_dict()[key], rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_unet_reduce_overhead_on_cuda_matches_eager(data):
    """compile reduce-overhead (inductor + CUDA graphs) against eager float32 over three steps,
    to rounding. Not yet run on a card (written without a GPU)."""
    device = torch.device("cuda")
    eager, _, _, _ = unet_step(data, device, "float32", steps=3)
    compiled, _, _, _ = unet_step(data, device, "float32", compile="reduce-overhead", steps=3)
    assert compiled == pytest.approx(eager, rel=1e-3)


def test_prediction_uses_the_layout_of_training(data, tmp_path):
    """A saved U-Net predicts in channels_last where its setting (auto here) and this CPU's
    layout check allow it, as in training, and in the default layout with channels_last false;
    the log sentence says which and why."""
    import dataclasses

    from cyclesynth.segmentation.saved import prediction_precision, prediction_setup

    images, labels = data
    settings = tiny_settings(epochs=1, channels_last="auto")
    result = train_unet(images, labels, None, settings, device="cpu", seed=7, log=quiet)
    save_model(tmp_path / "m.pt", result.state, settings)
    model, loaded = load_model(tmp_path / "m.pt", "cpu")
    precision, channels_last, reason = prediction_setup(model, loaded, "cpu")
    assert channels_last and "channels_last (checked on this CPU" in reason
    assert (precision, reason.split("; ")[0]) == prediction_precision(loaded, "cpu")
    _, channels_last, reason = prediction_setup(model, dataclasses.replace(loaded, channels_last=False), "cpu")
    assert channels_last is False and reason.endswith("default layout (channels_last false)")
