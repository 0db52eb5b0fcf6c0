import numpy as np
import pytest
import torch

from cyclesynth.runtime import (
    TrainingDiverged,
    check_finite,
    load_checkpoint,
    random_state,
    restore_random_state,
    save_checkpoint,
    seed_everything,
    select_device,
    set_threads,
)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            select_device("cuda")


def test_threads_follow_the_setting():
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1  # not the count already set: a no-op must fail
    try:
        set_threads(wanted)
        assert torch.get_num_threads() == wanted
    finally:
        set_threads(before)


def test_seeding_and_random_state_round_trip():
    seed_everything(5)
    state = random_state()
    a = (np.random.rand(), torch.rand(1).item())
    restore_random_state(state)
    assert (np.random.rand(), torch.rand(1).item()) == a
    assert seed_everything(5).random() == np.random.default_rng(5).random()


def test_checkpoint_round_trip_and_fingerprint(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"fingerprint": "abc", "epoch": 3, "w": torch.ones(2)})
    assert load_checkpoint(path, "abc")["epoch"] == 3
    assert load_checkpoint(path, "other") is None
    assert load_checkpoint(tmp_path / "missing.pt") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_non_finite_losses_name_epoch_and_loss():
    check_finite({"a": 1.0}, 1, "x")
    with pytest.raises(TrainingDiverged, match=r"U-Net: loss 'weighted_ce' became nan at epoch 7"):
        check_finite({"ok": 0.5, "weighted_ce": float("nan")}, 7, "U-Net")


@pytest.mark.parametrize("value", ["0", "off", "False", " no "])
def test_native_bf16_can_be_switched_off(monkeypatch, value):
    """CYCLESYNTH_NATIVE_BF16=0 makes ``auto`` train in float32 on a CPU that does bfloat16
    natively, and says why; an explicit bfloat16 is not affected, nor is CUDA's ``auto``."""
    from cyclesynth import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_features", lambda: ["avx512_bf16"])
    monkeypatch.delenv(runtime.NATIVE_BF16_SWITCH, raising=False)
    assert runtime.choose_precision("auto", torch.device("cpu"))[0].name == "bfloat16"
    monkeypatch.setenv(runtime.NATIVE_BF16_SWITCH, value)
    precision, reason = runtime.choose_precision("auto", torch.device("cpu"))
    assert precision.name == "float32" and "switched off (CYCLESYNTH_NATIVE_BF16=0)" in reason
    assert runtime.choose_precision("bfloat16", torch.device("cpu")) == (runtime.Precision("bfloat16", "cpu"), "bfloat16 as set")
    assert runtime.choose_precision("auto", torch.device("cuda"))[0].name == "float32"
    monkeypatch.setenv(runtime.NATIVE_BF16_SWITCH, "1")
    assert runtime.choose_precision("auto", torch.device("cpu"))[0].name == "bfloat16"
