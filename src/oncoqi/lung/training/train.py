"""Train the lung tumour U-Net (``oncoqi lung train``) and export it to ONNX.

Data
    Cases, their slices, the scanner randomisation and the crops are in
    :mod:`oncoqi.lung.training.data`. Whole cases, not slices, are held out for validation, so
    neighbouring slices of one tumour never sit on both sides.
Steps
    Each step draws ``batch_size`` random training slices and takes one augmented crop of each
    (:func:`oncoqi.lung.training.data.sample_crop`); an "epoch" is ``steps_per_epoch`` steps,
    after which the validation Dice is measured on whole held-out slices, as inference sees them:
    the thresholded probability inside the tumour search region, over all validation slices.
Loss
    ``w(epoch) * soft Dice loss + (1 - w(epoch)) * binary cross-entropy`` with ``w`` falling
    linearly from ``dice_start`` to ``dice_end`` over ``dice_epochs`` (:func:`dice_weight`):
    Dice dominates first because with few tumour pixels BCE alone learns "all background";
    BCE later calibrates the probabilities the threshold and the confidence score rely on.
Optimiser
    Adam with a cosine-annealed learning rate (:func:`cosine_learning_rate`) over all steps, and
    the gradient norm clipped to ``clip_norm``. The network has no normalisation layers, so it
    needs a modest rate: at 1e-3 the soft Dice loss drives it into saturated sigmoids (all
    foreground, then all background with zero gradient) within a few dozen steps; 2e-4 with
    clipping trains steadily.
Outputs (in ``--out``)
    ``best.weights.h5`` (checkpoint of the best validation Dice), ``training_log.csv``,
    ``learning_curves.png`` and ``lung_unet.onnx`` (the best weights, with the preprocessing,
    threshold and U-Net options in its metadata; rewritten at every improvement, so an
    interrupted run leaves its best model), and ``resume.npz``.
Training in pieces
    A 2-core session holds about 2 hours of training; a run of 6-10 hours is done in pieces.
    After every epoch ``resume.npz`` is replaced (:class:`ResumeState`): all the network's
    variables (weights and dropout seeds), the optimiser's state (step, moments), the crop
    sampler's random state, the log so far and the *recipe*, the command line's training settings
    (which cases, how they are drawn, every option). ``oncoqi lung train --resume resume.npz``
    rebuilds the same cases and options from the recipe, restores that state and goes on with the
    next epoch, exactly as if the run had not stopped; ``--stop-after MINUTES`` ends a piece
    cleanly after the epoch that crosses the limit. The log's ``piece`` column says which piece
    trained each epoch.

TensorFlow is imported only when training runs, so ``oncoqi lung --help`` and the core work
without it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from oncoqi.atomic import atomic_path, write_text
from oncoqi.lung.postprocess import DEFAULT_THRESHOLD, DENSE_HU
from oncoqi.lung.preprocess import AIR_HU, PreprocessOptions, lung_window
from oncoqi.lung.training.data import (
    AugmentOptions,
    HardNegatives,
    SliceOptions,
    SliceSet,
    TrainingError,
    sample_crop,
)
from oncoqi.lung.training.mining import Mistakes, mine_mistakes
from oncoqi.lung.training.unet import UNetOptions

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras
    import tensorflow as tf

#: File names written to the output folder.
MODEL_NAME = "lung_unet.onnx"
LOG_NAME = "training_log.csv"
PLOT_NAME = "learning_curves.png"
CHECKPOINT_NAME = "best.weights.h5"
RESUME_NAME = "resume.npz"
#: Version of :class:`ResumeState`'s file layout.
RESUME_FORMAT = 1
#: Neighbouring-slice distance (mm) of ``oncoqi lung train`` (``PreprocessOptions.context_mm``): 0,
#: the single-slice network the shipped model is. With 4 mm, on the same phantoms, the median Dice and
#: the sensitivity rose but so did the false lesions (``Docs/model-card.md``, *Neighbouring slices*).
CONTEXT_MM = 0.0
#: Columns of the training log.
LOG_COLUMNS = ("epoch", "learning_rate", "dice_weight", "loss", "train_dice", "val_dice", "best", "seconds", "piece")


@dataclass(frozen=True)
class TrainOptions:
    """Everything that defines a training run.

    Parameters
    ----------
    epochs, steps_per_epoch, batch_size
        Validation rounds, steps between them, and crops per step.
    crop
        Side of the square training crops in network pixels (a multiple of ``2 ** depth``, at most
        the grid).
    tumour_fraction
        Share of crops centred near a tumour pixel (on slices that have one).
    hard_negatives
        Share of the other crops centred on dense tissue of the search region (hila, vessels,
        borders, domes: :class:`~oncoqi.lung.training.data.HardNegatives`); 0 keeps the random stream.
    mine_from, mined
        An ONNX model whose mistakes on the training slices are mined before the first epoch
        (:mod:`oncoqi.lung.training.mining`), and the share of crops centred on one of them
        (0 keeps the random stream).
    learning_rate, min_learning_rate, clip_norm
        Start and end of the cosine-annealed Adam learning rate; global gradient-norm clip.
    dice_start, dice_end, dice_epochs
        Weight of the Dice term at epoch 0, and from epoch ``dice_epochs`` on (linear between).
    slices
        The network grid and coding, and how slices are drawn from the cases
        (:class:`~oncoqi.lung.training.data.SliceOptions`).
    validation_fraction, max_validation_slices
        Fraction of the cases (at least one) held out for validation and checkpointing, and at
        most this many of their slices (evenly spaced) scored each epoch.
    threshold
        Probability threshold of the validation Dice, stored in the model for inference.
    seed
        Seed of the case split, slice draws, augmentation, shuffling and initial weights.
    init_from
        An ONNX model whose network gives the initial weights instead of random ones (fine-tuning;
        :func:`oncoqi.lung.training.warm_start.load_onnx_weights`), or None.
    data
        What the cases were (e.g. ``"120 synthetic phantoms of set seed 0"``), recorded in the
        model's ``oncoqi.training`` note so that the ONNX file says what trained it.
    """

    epochs: int = 40
    steps_per_epoch: int = 100
    batch_size: int = 8
    crop: int = 160
    tumour_fraction: float = 0.5
    hard_negatives: float = 0.0
    mine_from: str | None = None
    mined: float = 0.0
    learning_rate: float = 2e-4
    min_learning_rate: float = 1e-5
    clip_norm: float = 1.0
    dice_start: float = 1.0
    dice_end: float = 0.5
    dice_epochs: int = 10
    validation_fraction: float = 0.2
    max_validation_slices: int = 64
    threshold: float = DEFAULT_THRESHOLD
    seed: int = 0
    unet: UNetOptions = field(default_factory=UNetOptions)
    slices: SliceOptions = field(default_factory=SliceOptions)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    init_from: str | None = None
    data: str = ""

    def __post_init__(self) -> None:
        if min(self.epochs, self.steps_per_epoch, self.batch_size, self.max_validation_slices) < 1:
            raise TrainingError("epochs, steps_per_epoch, batch_size and max_validation_slices must be >= 1")
        if not 0.0 <= self.dice_end <= 1.0 or not 0.0 <= self.dice_start <= 1.0 or self.dice_epochs < 0:
            raise TrainingError("dice_start and dice_end must be in [0, 1] and dice_epochs >= 0")
        if not 0.0 < self.validation_fraction < 1.0:
            raise TrainingError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        for name in ("tumour_fraction", "hard_negatives", "mined"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise TrainingError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.mined and not self.mine_from:
            raise TrainingError("mined > 0 needs mine_from, the model whose mistakes are mined")
        divisor = self.unet.divisor
        grid = (self.preprocess.rows, self.preprocess.columns)
        if grid[0] % divisor or grid[1] % divisor:
            raise TrainingError(f"the network grid {grid[1]} x {grid[0]} is not a multiple of 2**depth = {divisor}")
        if self.crop % divisor or not divisor <= self.crop <= min(grid):
            raise TrainingError(f"crop={self.crop} must be a multiple of {divisor} between {divisor} and {min(grid)}")

    @property
    def preprocess(self) -> PreprocessOptions:
        """The network grid and coding the model is trained on (and carries in its metadata)."""
        return self.slices.preprocess


@dataclass
class TrainResult:
    """What :func:`train` wrote and how the best epoch did; ``epochs_done < epochs`` when a piece stopped early."""

    model_path: Path
    log_path: Path
    plot_path: Path
    checkpoint_path: Path
    best_epoch: int
    best_val_dice: float
    epochs_done: int
    resume_path: Path


@dataclass
class ResumeState:
    """Everything a stopped run needs to go on exactly where it stopped (``resume.npz``).

    Attributes
    ----------
    recipe
        The command line's training settings (argparse destination -> value): the cases and
        every option, from which the resumed run rebuilds its data and :class:`TrainOptions`.
    epoch
        Epochs done.
    history
        The training log's rows so far.
    best_dice, best_epoch
        The best validation Dice so far and its epoch (1-based; 0 before any).
    rng
        The crop sampler's NumPy bit-generator state.
    started_from
        The model note's fine-tuning clause (the ONNX model the first piece started from).
    variables, optimizer
        The values of ``model.variables`` (weights and dropout seed states) and of
        ``optimizer.variables`` (step count, learning rate, Adam moments), in their order.
    """

    recipe: dict[str, Any]
    epoch: int
    history: list[dict[str, float]]
    best_dice: float
    best_epoch: int
    rng: dict[str, Any]
    started_from: str
    variables: list[np.ndarray]
    optimizer: list[np.ndarray]

    def save(self, path: Path) -> Path:
        """Write the state to ``path`` atomically (the previous checkpoint is replaced, never kept)."""
        state = {
            "format": RESUME_FORMAT,
            "recipe": self.recipe,
            "epoch": self.epoch,
            "history": self.history,
            "best_dice": self.best_dice,
            "best_epoch": self.best_epoch,
            "rng": self.rng,
            "started_from": self.started_from,
        }
        arrays = {f"variable_{i}": a for i, a in enumerate(self.variables)}
        arrays.update({f"optimizer_{i}": a for i, a in enumerate(self.optimizer)})
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, state=np.array(json.dumps(state)), **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ResumeState:
        """Read a checkpoint written by :meth:`save`.

        Raises
        ------
        TrainingError
            When ``path`` is missing, not such a checkpoint, or of another format version.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                state = json.loads(str(data["state"]))
                variables = [data[f"variable_{i}"] for i in range(_count(data.files, "variable_"))]
                optimizer = [data[f"optimizer_{i}"] for i in range(_count(data.files, "optimizer_"))]
        except (OSError, ValueError, KeyError) as exc:
            raise TrainingError(f"{path}: not a training checkpoint written by 'oncoqi lung train' ({exc})") from exc
        if state.get("format") != RESUME_FORMAT:
            raise TrainingError(f"{path}: checkpoint format {state.get('format')}, this version reads {RESUME_FORMAT}")
        fields = ("recipe", "epoch", "history", "best_dice", "best_epoch", "rng", "started_from")
        return cls(**{name: state[name] for name in fields}, variables=variables, optimizer=optimizer)

    def check_folder(self, folder: Path) -> None:
        """Check that ``folder`` holds what the checkpoint does not: the best epoch's weights.

        Raises
        ------
        TrainingError
            When an epoch was best and its ``best.weights.h5`` is not in ``folder``.
        """
        best = Path(folder) / CHECKPOINT_NAME
        if self.best_epoch and not best.is_file():
            raise TrainingError(
                f"{best}: the best epoch's weights are missing beside {RESUME_NAME}; a checkpoint travels as both files"
            )


def _count(names: list[str], prefix: str) -> int:
    return sum(name.startswith(prefix) for name in names)


def dice_weight(epoch: int, start: float, end: float, epochs: int) -> float:
    """Weight of the Dice term at ``epoch`` (0-based): linear from ``start`` to ``end`` over ``epochs``."""
    if epochs <= 0 or epoch >= epochs:
        return end
    return start + (end - start) * epoch / epochs


def cosine_learning_rate(step: int, total: int, start: float, end: float) -> float:
    """Cosine annealing from ``start`` at step 0 to ``end`` at step ``total``."""
    t = min(max(step / max(total, 1), 0.0), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * t))


def _hard_dice(prob: np.ndarray, truth: np.ndarray, threshold: float) -> float:
    """Dice of the thresholded prediction over a whole set of slices (1 when both are empty)."""
    pred = prob >= threshold
    truth = truth.astype(bool)
    total = int(pred.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, truth).sum()) / total


def write_learning_curves(rows: list[dict[str, float]], path: Path) -> Path:
    """Plot loss and train/validation Dice per epoch to a PNG (matplotlib, ``train`` extra), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_dice) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=100)
    ax_loss.plot(epochs, [r["loss"] for r in rows], marker="o", label="training loss")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("loss (Dice + BCE)")
    ax_dice.plot(epochs, [r["train_dice"] for r in rows], marker="o", label="training (soft)")
    ax_dice.plot(epochs, [r["val_dice"] for r in rows], marker="o", label="validation (thresholded)")
    ax_dice.set_xlabel("epoch")
    ax_dice.set_ylim(0.0, 1.0)
    ax_dice.set_title("Dice")
    ax_dice.legend(loc="lower right")
    for ax in (ax_loss, ax_dice):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def _split(
    prepared: Iterable[tuple[str, SliceSet | None, str]], options: TrainOptions, log: Callable[[str], None]
) -> tuple[SliceSet, SliceSet]:
    """Training and validation slices from the prepared cases (whole cases held out)."""
    parts = []
    for name, part, reason in prepared:
        if part is None:
            log(f"{name}: skipped ({reason})")
            continue
        n_pos = len(part.positives)
        log(f"{name}: {n_pos} tumour and {len(part) - n_pos} tumour-free slices")
        parts.append(part)
    if len(parts) < 2:
        raise TrainingError(f"training needs at least 2 usable cases (one held out for validation), got {len(parts)}")
    rng = np.random.default_rng([options.seed, 2])
    n_val = max(1, round(options.validation_fraction * len(parts)))
    order = rng.permutation(len(parts))
    grid = (options.preprocess.rows, options.preprocess.columns, options.preprocess.channels)
    train_set = SliceSet.concat([parts[i] for i in order[n_val:]], *grid)
    val_set = SliceSet.concat([parts[i] for i in order[:n_val]], *grid)
    if not train_set.masks.any():
        raise TrainingError("no training slice holds tumour: add cases with tumour labels")
    if len(val_set) > options.max_validation_slices:
        keep = np.linspace(0, len(val_set) - 1, options.max_validation_slices).round().astype(int)
        val_set = SliceSet(val_set.images[keep], val_set.masks[keep], val_set.search[keep])
    return train_set, val_set


def train(
    prepared: Iterable[tuple[str, SliceSet | None, str]],
    out: str | Path,
    options: TrainOptions = TrainOptions(),
    log: Callable[[str], None] = print,
    *,
    recipe: dict[str, Any] | None = None,
    resume: ResumeState | None = None,
    stop_after_s: float | None = None,
) -> TrainResult:
    """Train the U-Net and write the checkpoints, log, plot and ONNX model to ``out``.

    Parameters
    ----------
    prepared
        ``(case name, slices or None, reason skipped)`` per case, as
        :func:`oncoqi.lung.training.data.prepare_slices` yields them (consumed once).
    out
        Output folder (created).
    options
        The run's options.
    log
        Called with one line per case prepared and per epoch.
    recipe
        The settings ``options`` and ``prepared`` came from, kept in ``resume.npz`` (:class:`ResumeState`).
    resume
        The state of a stopped run of the same recipe: training goes on from its next epoch.
    stop_after_s
        End this piece after the first epoch that finishes this many seconds after the start
        (None: train to the last epoch).

    Returns
    -------
    TrainResult
        Paths written and the best epoch.

    Raises
    ------
    TrainingError
        With fewer than two usable cases, when no training slice holds tumour, or when ``resume``
        does not fit the network.
    oncoqi.lung.training.unet.TensorFlowMissingError
        When TensorFlow is not installed.
    oncoqi.lung.onnx_model.ModelError
        When ``options.init_from`` is not a network of the same U-Net and channels.
    """
    from oncoqi.lung.training.unet import import_keras

    keras = import_keras()
    out = Path(out)
    started = time.perf_counter()
    keras.utils.set_random_seed(options.seed)
    if resume is None:
        model, started_from = _initial_model(options, log)
    else:  # the weights come from the checkpoint: the ONNX model it started from is not read again
        model, started_from = _initial_model(replace(options, init_from=None), log)[0], resume.started_from
    train_set, val_set = _split(prepared, options, log)
    run = _Run(model, options, out, started_from, (train_set, val_set), recipe or {}, _mined(options, train_set, log))
    if resume is not None:
        run.restore(resume)
        log(f"resumed after epoch {resume.epoch} of {options.epochs} (piece {run.piece})")
    out.mkdir(parents=True, exist_ok=True)
    log(
        f"{len(train_set)} training slices ({len(train_set.positives)} with tumour), {len(val_set)} validation "
        f"slices; {model.count_params():,} parameters; {options.epochs} x {options.steps_per_epoch} steps of "
        f"{options.batch_size} crops of {options.crop} px"
    )
    for epoch in range(run.epochs_done, options.epochs):
        row = run.epoch(epoch)
        log(
            f"epoch {epoch + 1}/{options.epochs}: loss {row['loss']:.4f}, train Dice {row['train_dice']:.3f}, "
            f"validation Dice {row['val_dice']:.3f}{' (best)' if row['best'] else ''}, {row['seconds']:.0f} s"
        )
        if stop_after_s is not None and time.perf_counter() - started >= stop_after_s and epoch + 1 < options.epochs:
            log(
                f"stopped after epoch {epoch + 1} of {options.epochs} (--stop-after); go on with: "
                f"oncoqi lung train --resume {out / RESUME_NAME}"
            )
            return run.result()
    return run.finish()


def _mined(options: TrainOptions, train_set: SliceSet, log: Callable[[str], None]) -> Mistakes | None:
    """The mistakes of ``options.mine_from`` on the training slices (None when the run mines none)."""
    if not (options.mine_from and options.mined):
        return None
    log(f"mining the mistakes of {options.mine_from} on {len(train_set)} training slices")

    def progress(done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            log(f"mined {done} of {total} slices")

    mistakes = mine_mistakes(options.mine_from, train_set, progress=progress)
    log(mistakes.summary())
    if not len(mistakes):
        raise TrainingError(f"{options.mine_from} makes no mistake on the training slices: nothing to mine")
    return mistakes


def _initial_model(options: TrainOptions, log: Callable[[str], None]) -> tuple[keras.Model, str]:
    """The U-Net with random or ``init_from`` weights, and the note's fine-tuning clause (what the run starts from)."""
    from oncoqi.lung.training.unet import build_unet
    from oncoqi.lung.training.warm_start import load_onnx_weights

    model = build_unet(
        options.unet, levels=options.preprocess.levels, seed=options.seed, channels=options.preprocess.channels
    )
    started_from = ""
    if options.init_from:  # before the cases are prepared, so a wrong model fails in seconds, not minutes
        sha256 = load_onnx_weights(model, options.init_from)
        started_from = f", fine-tuned from {Path(options.init_from).name} (SHA-256 {sha256[:12]})"
        log(f"initial weights from {options.init_from}")
    return model, started_from


def _step_function(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, w_dice: tf.Variable
) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """The compiled optimiser step: the Dice + BCE loss of a batch (weighted by ``w_dice``) and its gradients applied."""
    import keras
    import tensorflow as tf

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            soft_dice = (2.0 * tf.reduce_sum(p * y) + 1.0) / (tf.reduce_sum(p) + tf.reduce_sum(y) + 1.0)
            bce = tf.reduce_mean(keras.losses.binary_crossentropy(y, p))
            loss = w_dice * (1.0 - soft_dice) + (1.0 - w_dice) * bce
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss, soft_dice

    return step


class _Run:
    """What one training run carries from epoch to epoch: the network, its data and optimiser, the best epoch so far."""

    def __init__(
        self,
        model: keras.Model,
        options: TrainOptions,
        out: Path,
        started_from: str,
        data: tuple[SliceSet, SliceSet],
        recipe: dict[str, Any],
        mistakes: Mistakes | None = None,
    ) -> None:
        import keras
        import tensorflow as tf

        self.model, self.options, self.out, self.started_from = model, options, out, started_from
        self.train_set, self.val_set = data
        self.recipe, self.mistakes = recipe, mistakes
        self.rng = np.random.default_rng([options.seed, 3])
        self.fill = int(lung_window(np.array([AIR_HU]), options.preprocess)[0])
        dense = int(lung_window(np.array([DENSE_HU]), options.preprocess)[0])
        self.hard = HardNegatives(options.hard_negatives, dense) if options.hard_negatives else None
        self.optimizer = keras.optimizers.Adam(learning_rate=options.learning_rate, global_clipnorm=options.clip_norm)
        self.w_dice = tf.Variable(1.0, trainable=False, dtype=tf.float32)
        self.step = _step_function(model, self.optimizer, self.w_dice)
        self.checkpoint = out / CHECKPOINT_NAME
        self.history: list[dict[str, float]] = []
        self.best_dice, self.best_epoch = -1.0, 0
        self.piece = 1

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    def restore(self, state: ResumeState) -> None:
        """Take up a stopped run: its network and optimiser variables, sampler state, log and best epoch.

        Raises
        ------
        TrainingError
            When the checkpoint's variables do not fit this network and optimiser.
        """
        state.check_folder(self.out)
        self.optimizer.build(self.model.trainable_variables)
        for what, variables, values in (
            ("network", self.model.variables, state.variables),
            ("optimiser", self.optimizer.variables, state.optimizer),
        ):
            shapes = [tuple(v.shape) for v in variables]
            if shapes != [a.shape for a in values]:
                raise TrainingError(
                    f"the checkpoint's {what} state ({len(values)} variables) does not fit this {what} "
                    f"({len(variables)} variables): it was written by another version or recipe"
                )
            for variable, value in zip(variables, values):
                variable.assign(value)
        self.rng.bit_generator.state = state.rng
        self.history = [dict(row) for row in state.history]
        self.best_dice, self.best_epoch = state.best_dice, state.best_epoch
        self.piece = 1 + max((int(row.get("piece", 1)) for row in self.history), default=0)

    def _save_resume(self) -> None:
        """Replace ``resume.npz`` with the state after the epoch just done."""
        ResumeState(
            recipe=self.recipe,
            epoch=self.epochs_done,
            history=self.history,
            best_dice=self.best_dice,
            best_epoch=self.best_epoch,
            rng=self.rng.bit_generator.state,
            started_from=self.started_from,
            variables=[np.asarray(v.numpy()) for v in self.model.variables],
            optimizer=[np.asarray(v.numpy()) for v in self.optimizer.variables],
        ).save(self.out / RESUME_NAME)

    def epoch(self, epoch: int) -> dict[str, float]:
        """Train epoch ``epoch`` (0-based), keep it if its validation Dice is the best so far; its log row."""
        started = time.perf_counter()
        options = self.options
        w = dice_weight(epoch, options.dice_start, options.dice_end, options.dice_epochs)
        self.w_dice.assign(w)
        lr, losses, dices = self._steps(epoch)
        val_dice = self._validation_dice()
        improved = val_dice > self.best_dice
        if improved:
            self.best_dice, self.best_epoch = val_dice, epoch + 1
            with atomic_path(self.checkpoint) as tmp:
                self.model.save_weights(str(tmp))
            self._export(f"best epoch {self.best_epoch} so far, validation Dice {self.best_dice:.4f}")
        row = {
            "epoch": epoch + 1,
            "learning_rate": lr,
            "dice_weight": w,
            "loss": float(np.mean(losses)),
            "train_dice": float(np.mean(dices)),
            "val_dice": val_dice,
            "best": int(improved),
            "seconds": time.perf_counter() - started,
            "piece": self.piece,
        }
        self.history.append(row)
        _write_log(self.history, self.out / LOG_NAME)
        self._save_resume()
        return row

    def finish(self) -> TrainResult:
        """Plot the curves and export the best epoch's weights: the model the run leaves."""
        self.model.load_weights(str(self.checkpoint))
        note = f"best epoch {self.best_epoch} of {self.options.epochs}, validation Dice {self.best_dice:.4f}"
        self._export(note)
        return self.result()

    def result(self) -> TrainResult:
        """Plot the curves so far; what the run (or this piece of it) leaves."""
        write_learning_curves(self.history, self.out / PLOT_NAME)
        return TrainResult(
            self.out / MODEL_NAME,
            self.out / LOG_NAME,
            self.out / PLOT_NAME,
            self.checkpoint,
            self.best_epoch,
            self.best_dice,
            self.epochs_done,
            self.out / RESUME_NAME,
        )

    def _steps(self, epoch: int) -> tuple[float, list[float], list[float]]:
        """The epoch's optimiser steps on the annealed learning rate; the last rate, and each step's loss and soft Dice."""
        import tensorflow as tf

        options = self.options
        total_steps = options.epochs * options.steps_per_epoch
        losses, dices = [], []
        lr = options.learning_rate
        for i in range(options.steps_per_epoch):
            global_step = epoch * options.steps_per_epoch + i
            lr = cosine_learning_rate(global_step, total_steps, options.learning_rate, options.min_learning_rate)
            self.optimizer.learning_rate.assign(lr)
            x, y = self._batch()
            loss, soft = self.step(tf.constant(x), tf.constant(y))
            losses.append(float(loss))
            dices.append(float(soft))
        return lr, losses, dices

    def _batch(self) -> tuple[np.ndarray, np.ndarray]:
        """One augmented crop of each of ``batch_size`` random training slices, and their masks, as float32."""
        options = self.options
        index = self.rng.integers(len(self.train_set), size=options.batch_size)
        focus: list[tuple[int, int] | None] = [None] * options.batch_size
        if self.mistakes is not None:  # drawn only when mining, so runs without it keep their random stream
            for k in range(options.batch_size):
                if self.rng.random() < options.mined:
                    index[k], focus[k] = self.mistakes.draw(self.rng)
        pairs = [
            sample_crop(
                self.train_set,
                int(i),
                self.rng,
                options.augment,
                self.fill,
                options.crop,
                options.tumour_fraction,
                hard=self.hard,
                focus=f,
            )
            for i, f in zip(index, focus)
        ]
        x = np.stack([p[0] for p in pairs]).astype(np.float32)
        y = np.stack([p[1] for p in pairs])[..., None].astype(np.float32)
        return x, y

    def _validation_dice(self) -> float:
        """The thresholded Dice over the whole validation slices inside the search region, as inference sees them."""
        val_set = self.val_set
        parts = [
            self.model(val_set.images[s : s + 2].astype(np.float32), training=False).numpy()[..., 0]
            for s in range(0, len(val_set), 2)
        ]
        prob = np.concatenate(parts) * val_set.search
        return _hard_dice(prob, val_set.masks, self.options.threshold)

    def _export(self, note: str) -> Path:
        """Write the ONNX model with its metadata and training note (at every improvement, so a stopped run leaves one)."""
        from oncoqi.lung.onnx_model import model_metadata
        from oncoqi.lung.training.unet import export_onnx

        options = self.options
        metadata = model_metadata(options.preprocess, options.threshold, options.unet, options.unet.divisor)
        flips = f", crops mirrored left to right with p={options.augment.p_flip:g}" if options.augment.p_flip else ""
        if options.mined:
            flips += f", {options.mined:g} of the crops on the mined mistakes of {Path(str(options.mine_from)).name}"
        trained_on = f"; trained on {options.data}" if options.data else ""
        metadata["oncoqi.training"] = note + flips + self.started_from + trained_on
        return export_onnx(self.model, self.out / MODEL_NAME, metadata)


def _write_log(history: list[dict[str, float]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    write_text(buffer.getvalue(), path)
