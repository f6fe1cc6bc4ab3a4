"""Make digits.npz once from the 8x8 digits that scikit-learn ships (run from the repository root):

    uv run --with scikit-learn python examples/digits/make_digits.py

scikit-learn is not a bpcalc dependency: this script only writes the data file, which is
committed. The split is fixed (seed 0, 1497 training and 300 test images) so the file is the
same every time. Pixels stay as scikit-learn gives them, whole numbers 0..16 (the YAML scales
them by 16); labels are the class indices 0..9.

Data: UCI ML hand-written digits (Optical Recognition of Handwritten Digits, E. Alpaydin and
C. Kaynak, 1998), as shipped by scikit-learn (sklearn.datasets.load_digits); see ATTRIBUTION.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

N_TEST = 300
SEED = 0


def main() -> None:
    digits = load_digits()
    x = digits.images.astype(np.uint8)  # (1797, 8, 8), values 0..16
    y = digits.target.astype(np.uint8)  # (1797,), 0..9
    order = np.random.default_rng(SEED).permutation(len(y))
    test, train = order[:N_TEST], order[N_TEST:]
    out = Path(__file__).with_name("digits.npz")
    np.savez_compressed(
        out,
        train_images=x[train],
        train_labels=y[train],
        test_images=x[test],
        test_labels=y[test],
    )
    print(f"wrote {out}: {len(train)} training and {len(test)} test images of 8x8 pixels")


if __name__ == "__main__":
    main()
