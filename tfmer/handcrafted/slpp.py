"""Supervised locality preserving projection (SLPP): locality preserving projections (He &
Niyogi 2003, "Locality Preserving Projections", NIPS; the PCA step of He, Yan, Hu, Niyogi
& Zhang 2005, "Face recognition using Laplacianfaces", TPAMI 27(3)) with an affinity
graph that joins only samples of the same class. STCLQP (Huang et al. 2016; TLCNN's
baseline, Wang et al. 2018, Section 4.3) reduces each of its sign, magnitude and
orientation features with it before a linear SVM. Plain numpy and scipy, no TensorFlow.

The projection: with the training samples x_i centred by their mean and projected by
PCA onto Z (`[n, r]`), affinities W_ij between samples i != j of the same class (0
otherwise), D the diagonal of W's row sums and L = D - W, the directions a minimise
sum_ij W_ij (a . z_i - a . z_j)^2 subject to a^T Z^T D Z a = 1: the generalised
eigenvectors of Z^T L Z a = lambda Z^T D Z a of the smallest eigenvalues (He & Niyogi
2003). A test sample x maps to (x - mean) V A, V the PCA basis and A those vectors.

Choices (the STCLQP paper cites SLPP without its settings):

- affinity: the heat kernel W_ij = exp(-||x_i - x_j||^2 / t) (He & Niyogi's first
  choice) on the input features, t the mean squared distance between samples of the same
  class, so that the kernel adapts to the features' scale; `kernel="binary"` gives W_ij
  = 1 (their "simple-minded" choice);
- PCA first (as Laplacianfaces), onto r = min(rank, n - classes) dimensions, the number
  Fisherfaces (Belhumeur, Hespanha & Kriegman 1997) keeps, so that Z^T D Z is not
  singular when features >> samples (80 samples of 11520 features); a ridge of 1e-10
  times its mean diagonal guards its round-off;
- `n_components`: classes - 1 by default (the supervised graph has one connected part a
  class; like LDA, at most classes - 1 directions carry its class structure);
- each projection vector scaled to unit length in the input space and its sign fixed so
  that its largest entry (in magnitude) is positive, so that the result does not depend
  on the order of the samples or on the solver's sign.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

KERNELS = ("heat", "binary")


class SupervisedLPP(TransformerMixin, BaseEstimator):
    """Supervised locality preserving projection (module docstring).

    Args:
        n_components: directions kept; None: classes - 1.
        kernel: "heat" (exp(-d^2 / t)) or "binary" (1) between samples of a class.
        t: the heat kernel's width; None: the mean squared distance between samples of
            the same class.
        pca_components: PCA dimensions before LPP; None: min(rank, samples - classes).

    Attributes (after `fit`):
        mean_: float64 `[features]`.
        components_: float64 `[n_components, features]`, unit rows.
        eigenvalues_: float64 `[n_components]`, increasing.
        classes_: the classes.
        t_: the heat kernel width used (None for "binary").
    """

    def __init__(self, n_components: int | None = None, kernel: str = "heat",
                 t: float | None = None, pca_components: int | None = None):
        self.n_components = n_components
        self.kernel = kernel
        self.t = t
        self.pca_components = pca_components

    def fit(self, X, y):
        """Learns the projection from `X` `[samples, features]` and labels `y`
        `[samples]`.

        Raises:
            ValueError: shapes that do not match, fewer than 2 classes, a bad kernel or
                width, or more components than the PCA leaves.
        """
        X = check_array(X, dtype=np.float64)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"SupervisedLPP needs one label per sample: X has "
                             f"{X.shape[0]} samples, y has shape {y.shape}")
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {self.kernel!r}")
        classes, labels = np.unique(y, return_inverse=True)
        samples = X.shape[0]
        if len(classes) < 2:
            raise ValueError(f"SupervisedLPP needs at least 2 classes, got {len(classes)}")
        self.mean_ = X.mean(axis=0)
        centred = X - self.mean_
        _, singular, right = np.linalg.svd(centred, full_matrices=False)
        rank = int(np.sum(singular > singular[0] * max(X.shape) * np.finfo(float).eps))
        if self.pca_components is None:
            dims = min(rank, samples - len(classes))
        else:
            dims = min(int(self.pca_components), rank)
        if dims < 1:
            raise ValueError(f"{samples} samples of rank {rank} in {len(classes)} classes "
                             f"leave no PCA dimension (pca_components "
                             f"{self.pca_components})")
        n_components = len(classes) - 1 if self.n_components is None else \
            int(self.n_components)
        if not 1 <= n_components <= dims:
            raise ValueError(f"n_components must be in 1..{dims} (the PCA dimensions), got "
                             f"{n_components}")
        basis = right[:dims].T
        scores = centred @ basis
        same = labels[:, None] == labels[None, :]
        np.fill_diagonal(same, False)
        if self.kernel == "heat":
            gram = centred @ centred.T
            norms = np.diag(gram)
            distances = np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0)
            width = float(np.mean(distances[same])) if self.t is None else float(self.t)
            if not width > 0:
                raise ValueError(f"the heat kernel width t must be > 0, got {width} (t "
                                 f"{self.t}; None takes the mean squared distance within "
                                 f"the classes)")
            affinity = np.where(same, np.exp(-distances / width), 0.0)
            self.t_ = width
        else:
            affinity = same.astype(np.float64)
            self.t_ = None
        degree = affinity.sum(axis=1)
        laplacian = np.diag(degree) - affinity
        lhs = scores.T @ laplacian @ scores
        rhs = scores.T @ (degree[:, None] * scores)
        rhs += 1e-10 * np.trace(rhs) / dims * np.eye(dims)
        values, vectors = linalg.eigh((lhs + lhs.T) / 2, (rhs + rhs.T) / 2)
        projection = basis @ vectors[:, :n_components]
        projection /= np.linalg.norm(projection, axis=0)
        largest = projection[np.argmax(np.abs(projection), axis=0),
                             np.arange(n_components)]
        projection *= np.where(largest < 0, -1.0, 1.0)
        self.components_ = projection.T
        self.eigenvalues_ = values[:n_components]
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """float64 `[samples, n_components]`: `X` `[samples, features]` projected."""
        check_is_fitted(self, "components_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, the projection was fitted on "
                             f"{self.n_features_in_}")
        return (X - self.mean_) @ self.components_.T
