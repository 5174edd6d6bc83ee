"""Rebuild data/digits/digits.npz from scikit-learn's bundled copy of the UCI digits (maintainers only).

    pip install scikit-learn          # not a TinyTorch dependency
    python data/digits/build.py       # writes data/digits/digits.npz and prints its SHA-256

The split is stratified by class with a fixed seed, so the file is the same on every run
(np.savez_compressed stores no timestamps that change its arrays).
"""
import hashlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 1958
TEST_SIZE = 360
OUT = Path(__file__).resolve().parent / "digits.npz"


def main():
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)       # (1797, 8, 8), integers 0..16
    labels = bunch.target.astype(np.uint8)       # (1797,), 0..9
    assert images.shape == (1797, 8, 8) and images.max() == 16 and images.min() == 0
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=TEST_SIZE,
                                           stratify=labels, random_state=SEED)
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
    np.savez_compressed(OUT, x_train=images[idx_train], y_train=labels[idx_train],
                        x_test=images[idx_test], y_test=labels[idx_test])
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes): train {len(idx_train)}, test {len(idx_test)}; sha256 {digest}")
    print("train per class:", np.bincount(labels[idx_train]).tolist())
    print("test per class: ", np.bincount(labels[idx_test]).tolist())


if __name__ == "__main__":
    main()
