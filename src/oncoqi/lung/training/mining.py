"""Mine a trained network's mistakes on the training slices, so that the next run sees them more often.

Hard cases drawn on purpose (tumours against the mediastinum, dense tissue at the lungs' edge:
:class:`~oncoqi.lung.training.data.HardNegatives`) are a guess at what a network gets wrong;
mining asks the network. :func:`mine_mistakes` runs an ONNX model (the shipped one, or a run's
``lung_unet.onnx``) on every training slice, inside the slice's search region as inference sees
it, and keeps the pixels where it is wrong: false positives (probability at or above the model's
threshold outside the tumour: a vessel, the hilum, the heart border called tumour) and false
negatives (tumour below the threshold: the missed part of a tumour against the chest wall). A
share of the next run's crops (``--mined``) is then centred on these pixels
(:meth:`Mistakes.draw`), the rest drawn as before.

Mining is done once, before the first epoch, from a fixed model, not from the network being
trained: the mistakes a run is fed back are those of the model it starts from (``--init-from``
the same model: a fine-tuning round), and a resumed piece mines the same pixels again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oncoqi.lung.onnx_model import ModelError, OnnxSegmenter
from oncoqi.lung.segment import network_window
from oncoqi.lung.training.data import SliceSet

#: At most this many mistake pixels are kept per slice (evenly spaced over its list): a crop is
#: centred on one of them, and a large false lesion needs no more points to be drawn often.
MAX_POINTS_PER_SLICE = 512


@dataclass(frozen=True)
class Mistakes:
    """Where a model is wrong on a set of slices.

    Attributes
    ----------
    slices
        Indices (into the mined :class:`~oncoqi.lung.training.data.SliceSet`) of the slices with
        at least one mistake.
    points
        Per entry of ``slices``, int ``(k, 2)`` row and column of mistake pixels (at most
        :data:`MAX_POINTS_PER_SLICE`).
    false_positive, false_negative
        Mistake pixels found (before thinning out), over all slices.
    """

    slices: np.ndarray
    points: tuple[np.ndarray, ...]
    false_positive: int
    false_negative: int

    def __len__(self) -> int:
        return len(self.slices)

    def draw(self, rng: np.random.Generator) -> tuple[int, tuple[int, int]]:
        """A random slice with mistakes and a random mistake pixel on it: ``(slice index, (row, column))``."""
        k = int(rng.integers(len(self.slices)))
        row, column = self.points[k][int(rng.integers(len(self.points[k])))]
        return int(self.slices[k]), (int(row), int(column))

    def summary(self) -> str:
        """One line for the training log."""
        return (
            f"{len(self)} slices with mistakes: {self.false_positive:,} false-positive and "
            f"{self.false_negative:,} false-negative pixels"
        )


def mine_mistakes(
    model: str | Path,
    slices: SliceSet,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Mistakes:
    """Run ``model`` on every slice of ``slices`` (inside its search region) and keep where it is wrong.

    Parameters
    ----------
    model
        An ONNX model of :mod:`oncoqi.lung.onnx_model` on the same grid and channels as ``slices``.
    slices
        The training slices (:func:`oncoqi.lung.training.data.prepare_slices`).
    progress
        Called as ``progress(done, total)`` every 100 slices and at the end.

    Returns
    -------
    Mistakes
        The slices with mistakes and their pixels.

    Raises
    ------
    oncoqi.lung.onnx_model.ModelError
        When the model is missing, unloadable, or takes another number of channels than ``slices``.
    """
    channels = slices.images.shape[-1]
    kept, points = [], []
    false_positive = false_negative = 0
    with OnnxSegmenter(model) as segmenter:
        if segmenter.channels != channels:
            raise ModelError(
                f"{model}: the model takes {segmenter.channels} slice(s) per input, the training slices have {channels}"
            )
        threshold, divisor = segmenter.threshold, segmenter.divisor
        stack = np.arange(channels)[None, :]
        for i in range(len(slices)):
            if slices.search[i].any():
                window = network_window(slices.search[i][None], divisor)  # the window inference runs on
                image = np.moveaxis(slices.images[i][window], -1, 0)
                found = segmenter.predict(image, batch_size=1, indices=stack)[0] >= threshold
                search = slices.search[i][window].astype(bool)
                tumour = slices.masks[i][window].astype(bool)
                fp, fn = found & search & ~tumour, ~found & tumour
                false_positive, false_negative = false_positive + int(fp.sum()), false_negative + int(fn.sum())
                wrong = np.argwhere(fp | fn)
                if len(wrong):
                    keep = np.linspace(0, len(wrong) - 1, min(len(wrong), MAX_POINTS_PER_SLICE)).round().astype(int)
                    kept.append(i)
                    points.append(wrong[keep] + [window[0].start, window[1].start])
            if progress is not None and ((i + 1) % 100 == 0 or i + 1 == len(slices)):
                progress(i + 1, len(slices))
    return Mistakes(np.asarray(kept, dtype=int), tuple(points), false_positive, false_negative)
