"""LBP-TOP + linear SVM per AU: the hand-crafted baseline row ("LBPTOP") of the paper's Tables 1–2.

LBP-TOP (Zhao & Pietikäinen, TPAMI 2007) describes a clip by local binary patterns on Three Orthogonal Planes
through every voxel: XY (appearance), XT and YT (horizontal / vertical motion over time). Here: uniform LBP with
P=8, R=1 on each plane from scikit-image (`nri_uniform`: 58 uniform patterns + 1 bin for all others = 59 bins),
histograms over the voxels whose whole neighbourhood lies inside the clip (the same voxels for all three planes,
as in the original Matlab code), optionally per cell of a `grid`×`grid` spatial block grid, each histogram
normalised to sum 1 (so cells of unequal size weigh the same), concatenated cell by cell as [XY, XT, YT].

Plane conventions (the scikit-image image each plane is read from): XY = frame [y, x]; XT = image [t, x] at fixed
y; YT = image [t, y] at fixed x. scikit-image samples the circle with bilinear interpolation; the diagonal
neighbours of an R=1 circle fall between pixels.

Classifier: one `LinearSVC(class_weight="balanced")` per AU on features standardised with the training fold's
mean and std: the SVM's L2 penalty is scale-dependent and bin frequencies differ by orders of magnitude, so raw
histograms would penalise the rare patterns (where motion shows) most. Probabilities are
σ(decision function), not CalibratedClassifierCV: (1) σ(0)=0.5, so the 0.5 threshold of every F1 in the report
reproduces the SVM's own decisions — what the LBPTOP rows of the paper report; a calibrator would pull rare AUs
(AU15, AU2: a handful of positives per fold) toward their prior and below 0.5, silently turning the row into "never
fires". (2) Calibration needs internal CV folds with positives in each, which LOSO folds of rare AUs do not have.
AUC needs only the ranking, which σ preserves. The learned linear maps (and the standardisation) are the model's
trainable state, saved as safetensors like every other model's weights.
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import torch
from skimage.feature import local_binary_pattern
from torch import Tensor

from aullm.models.base import ClassicalModel

LBP_POINTS = 8
LBP_RADIUS = 1
LBP_BINS = LBP_POINTS * (LBP_POINTS - 1) + 3  # 59 for P=8 ('nri_uniform')
PLANES = ("xy", "xt", "yt")


def _as_uint8(clips: np.ndarray) -> np.ndarray:
    """uint8 clips [N, T, H, W]: float input in [0, 1] (the trainer's batches) is scaled back to 0..255.

    LBP compares neighbours with the centre; on integer images ties are exact, so the codes do not depend on
    float rounding (scikit-image warns about float images for this reason).
    """
    clips = np.asarray(clips)
    if clips.ndim == 3:
        clips = clips[None]
    if clips.ndim != 4:
        raise ValueError(f"LBP-TOP expects clips [N, T, H, W] (or one clip [T, H, W]), got shape {clips.shape}")
    if clips.dtype == np.uint8:
        return clips
    if np.issubdtype(clips.dtype, np.floating):
        return np.clip(np.rint(clips * 255.0), 0, 255).astype(np.uint8)
    return np.clip(clips, 0, 255).astype(np.uint8)


def _lbp_each(images: np.ndarray) -> np.ndarray:
    """LBP codes of many same-sized 2D images [M, rows, cols], one scikit-image call per image.

    Not one call on the images stacked into a tall image: that would give the same codes in exact arithmetic, but
    scikit-image samples the diagonal neighbours at row r ± 0.70711, and the float rounding of that position
    depends on the magnitude of r, which flips ties (neighbour == centre) in flat regions.
    """
    codes = np.empty(images.shape, dtype=np.int64)
    for i, image in enumerate(images):
        codes[i] = local_binary_pattern(image, LBP_POINTS, LBP_RADIUS, method="nri_uniform")
    return codes


def _block_ids(length: int, grid: int) -> np.ndarray:
    """Cell index of each of `length` interior positions when split into `grid` near-equal parts."""
    return np.concatenate([np.full(len(part), k) for k, part in enumerate(np.array_split(np.arange(length), grid))])


def lbptop_codes(clips: np.ndarray) -> dict[str, np.ndarray]:
    """Per-plane LBP codes [N, T−2, H−2, W−2] for the interior voxels of uint8 clips [N, T, H, W]."""
    v = _as_uint8(clips)
    n, t, h, w = v.shape
    if t < 3 or h < 3 or w < 3:
        raise ValueError(f"LBP-TOP with R=1 needs at least 3 frames and 3×3 pixels, got T={t}, H={h}, W={w}")
    r = LBP_RADIUS
    xy = _lbp_each(v.reshape(n * t, h, w)).reshape(n, t, h, w)[:, r : t - r, r : h - r, r : w - r]
    xt_src = np.ascontiguousarray(v.transpose(0, 2, 1, 3))  # [N, H, T, W]: for each y, an image [t, x]
    xt = _lbp_each(xt_src.reshape(n * h, t, w)).reshape(n, h, t, w)[:, r : h - r, r : t - r, r : w - r]
    yt_src = np.ascontiguousarray(v.transpose(0, 3, 1, 2))  # [N, W, T, H]: for each x, an image [t, y]
    yt = _lbp_each(yt_src.reshape(n * w, t, h)).reshape(n, w, t, h)[:, r : w - r, r : t - r, r : h - r]
    return {"xy": xy, "xt": xt.transpose(0, 2, 1, 3), "yt": yt.transpose(0, 2, 3, 1)}


def lbptop_features(clips: np.ndarray, grid: int = 1, chunk: int = 64) -> np.ndarray:
    """LBP-TOP descriptor [N, grid·grid·3·59] (float32): per spatial cell (row-major), XY | XT | YT histograms.

    Clips are processed `chunk` at a time to bound memory (scikit-image returns float64 codes).
    """
    v = _as_uint8(clips)
    if grid < 1:
        raise ValueError(f"the LBP-TOP block grid must be at least 1×1, got {grid}")
    n, _, h, w = v.shape
    hi, wi = h - 2 * LBP_RADIUS, w - 2 * LBP_RADIUS
    if grid > min(hi, wi):
        raise ValueError(f"a {grid}×{grid} block grid does not fit the {hi}×{wi} interior of {h}×{w} frames")
    cell = (_block_ids(hi, grid)[:, None] * grid + _block_ids(wi, grid)[None, :]).ravel()  # [hi*wi]
    cells = grid * grid
    out = np.empty((n, cells, len(PLANES), LBP_BINS), dtype=np.float64)
    for start in range(0, n, chunk):
        codes = lbptop_codes(v[start : start + chunk])
        m = codes["xy"].shape[0]
        for p, plane in enumerate(PLANES):
            c = codes[plane].reshape(m, -1, hi * wi)  # [m, T', hi*wi]
            flat = (np.arange(m)[:, None, None] * cells + cell[None, None, :]) * LBP_BINS + c
            counts = np.bincount(flat.ravel(), minlength=m * cells * LBP_BINS).reshape(m, cells, LBP_BINS)
            out[start : start + m, :, p] = counts / np.maximum(counts.sum(axis=2, keepdims=True), 1)
    return out.reshape(n, -1).astype(np.float32)


class LBPTOPClassifier(ClassicalModel):
    """LBP-TOP features + one class-balanced linear SVM per AU; fits and predicts through the trainer.

    A ClassicalModel: the trainer calls `fit(clips, labels)` and `predict_proba(clips)` with the same clip sampling
    as every other model, so the LBPTOP row shares data, folds and metrics with AU-LLM.
    """

    def __init__(
        self,
        num_aus: int,
        grid: int = 5,
        c: float = 1.0,
        seed: int = 0,
        aus: Optional[list[str]] = None,
        max_iter: int = 20000,
    ) -> None:
        if num_aus < 1:
            raise ValueError("LBP-TOP needs at least one AU")
        if c <= 0:
            raise ValueError(f"the SVM's C must be > 0, got {c}")
        self.num_aus = num_aus
        self.grid = grid
        self.c = float(c)
        self.max_iter = max_iter
        self.aus = list(aus) if aus is not None else [f"AU{k}" for k in range(num_aus)]
        self.reset(seed)

    @property
    def feature_dim(self) -> int:
        return self.grid * self.grid * len(PLANES) * LBP_BINS

    def reset(self, seed: int) -> None:
        """Forget the fitted SVMs; `seed` drives liblinear's coordinate order in the next `fit`."""
        self.seed = int(seed)
        self.mean: Optional[np.ndarray] = None
        self.scale: Optional[np.ndarray] = None
        self.coef: Optional[np.ndarray] = None  # [K, D]
        self.intercept: Optional[np.ndarray] = None  # [K]

    def features(self, clips: np.ndarray) -> np.ndarray:
        return lbptop_features(clips, self.grid)

    def fit(self, x: np.ndarray, y: np.ndarray) -> LBPTOPClassifier:
        """Fit one LinearSVC per AU. An AU with one class only in this fold gets a constant decision of ±1
        (the margin a hinge-loss SVM gives a constant predictor), since an SVM cannot be fitted to it."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.svm import LinearSVC

        feats = self.features(x).astype(np.float64)
        y = np.asarray(y)
        if y.shape != (len(feats), self.num_aus):
            raise ValueError(f"labels must be [{len(feats)}, {self.num_aus}], got {y.shape}")
        self.mean = feats.mean(axis=0)
        std = feats.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        z = (feats - self.mean) / self.scale
        coef = np.zeros((self.num_aus, feats.shape[1]))
        intercept = np.zeros(self.num_aus)
        for k in range(self.num_aus):
            target = (y[:, k] > 0.5).astype(int)
            if target.min() == target.max():
                intercept[k] = 1.0 if target[0] == 1 else -1.0
                continue
            svm = LinearSVC(
                C=self.c, class_weight="balanced", dual=True, max_iter=self.max_iter, random_state=self.seed
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                svm.fit(z, target)
            coef[k] = svm.coef_[0]
            intercept[k] = svm.intercept_[0]
        self.coef, self.intercept = coef, intercept
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        if self.coef is None or self.mean is None or self.scale is None or self.intercept is None:
            raise RuntimeError("LBPTOPClassifier.predict_proba called before fit")
        z = (self.features(x).astype(np.float64) - self.mean) / self.scale
        return z @ self.coef.T + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """σ(SVM decision) [N, K]: > 0.5 exactly where the SVM says "active" (see the module docstring)."""
        return (1.0 / (1.0 + np.exp(-self.decision_function(x)))).astype(np.float32)

    def trainable_state_dict(self) -> dict[str, Tensor]:
        """The fitted linear maps and standardisation (empty before `fit`), saved per fold like torch weights."""
        if self.coef is None:
            return {}
        return {
            name: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float64))
            for name, value in (
                ("mean", self.mean),
                ("scale", self.scale),
                ("coef", self.coef),
                ("intercept", self.intercept),
            )
        }

    def load_trainable_state_dict(self, state: dict[str, Tensor]) -> None:
        expected = {
            "mean": (self.feature_dim,),
            "scale": (self.feature_dim,),
            "coef": (self.num_aus, self.feature_dim),
            "intercept": (self.num_aus,),
        }
        if set(state) != set(expected):
            raise ValueError(f"LBP-TOP state must have keys {sorted(expected)}, got {sorted(state)}")
        for key, shape in expected.items():
            if tuple(state[key].shape) != shape:
                raise ValueError(f"{key}: saved shape {tuple(state[key].shape)} != model shape {shape}")
        self.mean, self.scale, self.coef, self.intercept = (
            state[k].detach().cpu().double().numpy() for k in ("mean", "scale", "coef", "intercept")
        )
