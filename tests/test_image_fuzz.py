"""The image readers fed a few hundred corrupted or truncated files (seeded).

Every file either reads as a well-formed array or raises ImageReadError whose message starts
with the file's path; no other exception escapes, no read hangs (a per-file alarm) and the
interpreter survives (the loop runs in a child process, so a crash fails the test instead
of killing pytest).
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 300

WORKER = textwrap.dedent(
    """
    import json, signal, sys
    from pathlib import Path
    import numpy as np
    from cyclesynth.data.images import ImageReadError, read_binary, read_rgb

    class Hang(Exception):
        pass

    def alarm(signum, frame):
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    counts = {"read": 0, "error": 0}
    problems = []
    for path in sorted(Path(sys.argv[1]).iterdir()):
        reader = read_binary if "mask" in path.name else read_rgb
        signal.alarm(10)
        try:
            array = reader(path)
            signal.alarm(0)
            expected_ndim = 2 if reader is read_binary else 3
            if array.ndim != expected_ndim or array.size == 0:
                problems.append(f"{path.name}: returned shape {array.shape}")
            elif reader is read_rgb and not (np.isfinite(array).all() and 0 <= array.min() and array.max() <= 1):
                problems.append(f"{path.name}: values outside [0, 1]")
            counts["read"] += 1
        except ImageReadError as err:
            signal.alarm(0)
            counts["error"] += 1
            if not str(err).startswith(str(path)):
                problems.append(f"{path.name}: message does not name the file: {err}")
        except Hang:
            problems.append(f"{path.name}: read did not finish within 10 s")
        except Exception as err:
            signal.alarm(0)
            problems.append(f"{path.name}: {type(err).__name__} escaped: {err}")
    print(json.dumps({"counts": counts, "problems": problems}))
    """
)


def _originals(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :40]
    rgb = np.stack([(xx * 6) % 256, (yy * 5) % 256, rng.integers(0, 256, (48, 40))], axis=2).astype(np.uint8)
    mask = (((xx - 20) ** 2 + (yy - 24) ** 2) < 300).astype(np.uint8) * 255
    files = {
        "image.tif": (rgb, {"compression": "tiff_lzw"}),
        "image.png": (rgb, {}),
        "image_grey.png": (rgb[:, :, 1], {}),
        "mask.gif": (mask, {}),
        "mask.png": (mask, {}),
    }
    out = {}
    for name, (array, kwargs) in files.items():
        path = folder / name
        iio.imwrite(path, array, plugin="pillow", extension=path.suffix, **kwargs)
        out[name] = path.read_bytes()
    return out


def _corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.integers(0, 5)
    n = len(data)
    if kind == 0:  # truncated anywhere, including inside the header
        return data[: int(rng.integers(0, n))]
    buffer = bytearray(data)
    if kind == 1:  # random bytes flipped
        for position in rng.integers(0, n, size=int(rng.integers(1, 20))):
            buffer[position] ^= int(rng.integers(1, 256))
        return bytes(buffer)
    if kind == 2:  # a span overwritten with noise
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, max(2, n // 4)))
        buffer[start : start + length] = rng.integers(0, 256, size=len(buffer[start : start + length]), dtype=np.uint8).tobytes()
        return bytes(buffer)
    if kind == 3:  # header bytes only (dimensions, offsets) changed
        for position in rng.integers(0, min(n, 64), size=int(rng.integers(1, 6))):
            buffer[position] = int(rng.integers(0, 256))
        return bytes(buffer)
    return rng.integers(0, 256, size=int(rng.integers(0, 2048)), dtype=np.uint8).tobytes()  # not an image


def test_readers_survive_corrupted_files(tmp_path):
    originals = _originals(tmp_path)
    fuzz = tmp_path / "fuzz"
    fuzz.mkdir()
    rng = np.random.default_rng(2026)
    names = sorted(originals)
    for i in range(N_FILES):
        name = names[i % len(names)]
        stem, suffix = name.rsplit(".", 1)
        (fuzz / f"{i:03d}_{stem}.{suffix}").write_bytes(_corrupt(originals[name], rng))
    (fuzz / "999_empty_image.png").write_bytes(b"")

    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(fuzz)],
        capture_output=True, text=True, timeout=600,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, f"the reader process died (exit {done.returncode}):\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    counts = report["counts"]
    assert counts["read"] + counts["error"] == N_FILES + 1
    # most corruptions are detected; some (flipped pixel bytes) still decode to an image
    assert counts["error"] > N_FILES // 3
