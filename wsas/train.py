"""The training loop, one for every regime (``wsas.regimes``), readable top to bottom.

The trainer owns the data, the separator, the frozen CLAP and the optimizer; each step asks the
regime for its loss. Training data is an in-memory :class:`ClipSet` (the embedded corpus or a
labelled layout: mixtures are drawn on the fly) or, for the regimes that need no clean sources,
real captioned recordings (each one a mixture of unknown sources described by its caption).
Validation uses fixed 2-source pairs of clean clips, each source queried by its label.

Checkpoints (``wsas.bundle``) hold the model, the optimizer, the step and the RNG states, so
``resume`` continues exactly (a ``TrainConfig.minutes`` budget follows the clock instead: its
schedule and last step depend on the machine's speed); SIGINT/SIGTERM save one before stopping.
The learning rate follows ``TrainConfig.learning_rate`` (warm-up, cosine decay); every loss term
is averaged over each validation interval and logged; the model with the best validation SI-SDR
is kept beside the last one (``best.safetensors``: evaluation uses it), and the record says how
much validation SI-SDR the last quarter of training still gained (the plateau check).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wsas import losses
from wsas.allocator import keep_freed_memory
from wsas.bundle import BEST, FILENAME, restore_training, save_run
from wsas.captions import parse
from wsas.checkpoint import read_config
from wsas.clap import Clap, cached_text_embedder, query_dim, query_embedder
from wsas.data.datasets import AudioCaptionDataset, ClipSet, clean_subset
from wsas.data.mixing import (
    CaptionedBatch,
    MixtureBatch,
    fixed_pairs,
    sample_batch,
    sample_captioned,
)
from wsas.errors import CheckpointError, WsasError
from wsas.info import native_bf16
from wsas.models.queries import separate_pairs, slot_queries
from wsas.models.separator import MaskSeparator
from wsas.models.unet import UNetConfig
from wsas.parallel import average_gradients, init_distributed
from wsas.presets import CRITIC_MODES, TrainConfig
from wsas.regimes import REGIMES, get_regime
from wsas.results import write_text

__all__ = ["REGIMES", "TrainConfig", "Trainer", "TrainingInterrupted", "clean_subset"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGINT/SIGTERM after saving a checkpoint (the message says where)."""


def _differing(old: dict, new: dict, prefix: str = "") -> list[str]:
    """The keys (sorted, with ``prefix``) whose values differ between two configurations."""
    return [f"{prefix}{k}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]


def compile_unet(model: MaskSeparator) -> None:
    """Run ``model``'s U-Net through ``torch.compile`` (TorchInductor fuses its elementwise work;
    its weights keep their names); one graph per input shape, compiled at its first call. On CPU
    TorchInductor builds C++ kernels: without a compiler this is a one-line error, not a
    traceback at the first step."""
    import shutil

    on_cpu = next(model.parameters()).device.type == "cpu"
    if on_cpu and not shutil.which(os.environ.get("CXX", "g++")):
        raise WsasError("--compile on CPU needs a C++ compiler (g++, or $CXX); none found")
    model.unet.compile(dynamic=False)


class Trainer:
    """Builds the model and optimizer from a config; ``run()`` trains with checkpoints and logs.

    ``train`` is a :class:`ClipSet` (mixtures drawn on the fly) or captioned recordings;
    ``val`` the clean clips whose fixed pairs validate the model (None: no validation).
    ``compile``: run the U-Net through ``torch.compile`` (the first step compiles it; on CPU it
    needs a C++ compiler); the function trained is the same, and whether it is faster depends on
    the device (``wsas bench`` measures it).
    ``config.bf16`` decides bf16 autocast of the forward passes (:meth:`autocast`). On CPU the
    process's allocator keeps freed memory for reuse from then on, the Trainer gone or not
    (:func:`wsas.allocator.keep_freed_memory`).
    """

    def __init__(
        self,
        config: TrainConfig,
        clap: Clap,
        out: str | os.PathLike,
        train: ClipSet | AudioCaptionDataset,
        val: ClipSet | None = None,
        device: str | None = None,
        compile: bool = False,
    ):
        self.cfg, self.out, self.regime = config, Path(out), get_regime(config.mode)
        if config.minutes and int(os.environ.get("WORLD_SIZE", "1")) > 1:  # would stop apart
            raise WsasError("--minutes under torchrun: give --steps (every process the same)")
        self.rank, self.world = init_distributed()
        local = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if self.world > 1 else "cuda"
        self.device = torch.device(device or (local if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cpu":
            keep_freed_memory()  # a step's large tensors are reused, not faulted in anew
        self.clap = clap.to(self.device).freeze()
        self.recordings = train if isinstance(train, AudioCaptionDataset) else None
        if self.recordings is not None and self.regime.needs_clean:
            trainable = ", ".join(r.name for r in REGIMES.values() if not r.needs_clean)
            raise WsasError(
                f"--mode {config.mode} needs clean sources; captioned recordings train {trainable}"
            )
        if config.recon_loss not in self.regime.recon_losses:
            raise WsasError(
                f"--recon-loss {config.recon_loss}: --mode {config.mode} trains with "
                f"{' or '.join(self.regime.recon_losses)} only"
            )
        config.clap_window(train.sr)  # a too-short critic window fails here, not at a step
        self.train_clips = None if self.recordings is not None else train
        self.clean = self.pool = None  # clean clips of supervision; clips that mixtures draw on
        if self.train_clips is not None:
            self.clean, rest = clean_subset(self.train_clips, config.clean_fraction)
            self.pool = rest if self.regime.mixes_rest else self.train_clips
        self.val = fixed_pairs(val, config.val_mixtures, seed=99) if val is not None else None
        self.val_prompts = val.prompts if val is not None else ()
        torch.manual_seed(config.seed)  # before any weight exists: the seed decides the init
        cond_dim = query_dim(clap, config.conditioning)
        unet = replace(config.unet, cond_dim=cond_dim, conditioning=config.conditioning)
        self.model = MaskSeparator(unet, train.sr).to(self.device)
        if compile:
            compile_unet(self.model)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(config.seed + 1000 * self.rank)  # own batches per process
        self.step, self.history = 0, []
        self.seconds = 0.0  # wall time trained so far, over every sitting (resume carries it)
        self.ahead = 0.0  # seconds the last step and validation took: what cfg.minutes must fit
        self.n_slots = self.regime.n_slots(config.sources)
        self.embed = cached_text_embedder(self.clap)  # frozen text embeddings, cached per string
        self.query = (  # the separator's queries: the embeddings above, or cross's token states
            self.embed
            if unet.conditioning != "cross"
            else query_embedder(self.clap, unet.conditioning, unet.max_tokens)
        )
        self._clause_cache: dict[str, list[str]] = {}
        self._stop = False

    def autocast(self) -> torch.autocast:
        """The context of a training forward pass: bf16 autocast where ``TrainConfig.bf16`` asks
        for it (None: on CUDA only)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._bf16())

    def _bf16(self) -> bool:
        """Whether the forward passes run in bf16 (``TrainConfig.bf16``; None: on CUDA)."""
        return self.device.type == "cuda" if self.cfg.bf16 is None else self.cfg.bf16

    @property
    def critic_in_bf16(self) -> bool:
        """Whether the frozen critic hears clause estimates in bf16 (weak, semi; False for the
        other regimes): ``TrainConfig.critic_bf16``, or where None, where the forward passes run
        in bf16 or, for a critic whose front end stays float32 (``Clap.bf16_audio``: TinyCLAP),
        the device computes bf16 natively (``train.json`` and checkpoints record it)."""
        if self.cfg.mode not in CRITIC_MODES:
            return False
        if self.cfg.critic_bf16 is not None:
            return self.cfg.critic_bf16
        return self._bf16() or (self.clap.bf16_audio and native_bf16(self.device))

    def critic_autocast(self) -> torch.autocast:
        """The context in which the frozen critic hears clause estimates."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.critic_in_bf16)

    # ---- what the regimes read (wsas.regimes.Context) -------------------------------------------
    def slots(self, batch: int) -> torch.Tensor:
        """The slot queries ``(batch, n_slots, D)`` of an unconditional model."""
        queries = slot_queries(self.n_slots, self.model.config.cond_dim).to(self.device)
        return queries.expand(batch, -1, -1)

    def mixture_batch(self, groups: int, batch: int | None = None) -> MixtureBatch | CaptionedBatch:
        """Training mixtures ``(B, groups, S)`` with captions: recordings, else clips of the
        mixture pool mixed now (``batch`` examples, default the configured batch size)."""
        batch = batch or self.cfg.batch_size
        if self.recordings is not None:
            return self._grid_crop(sample_captioned(self.recordings, batch, self.rng, groups))
        return self._grid_crop(
            sample_batch(
                self.pool,
                batch,
                self.cfg.sources,
                self.rng,
                groups=groups,
                repeat_classes=self.cfg.repeat_classes,
            )
        )

    def clean_batch(self, batch: int | None = None) -> MixtureBatch:
        """Mixtures ``(B, 1, S)`` of the clean subset's clips with their sources and labels."""
        return self._grid_crop(
            sample_batch(self.clean, batch or self.cfg.batch_size, self.cfg.sources, self.rng)
        )

    def _grid_crop(self, batch: MixtureBatch | CaptionedBatch) -> MixtureBatch | CaptionedBatch:
        """With ``TrainConfig.grid_crop``, one random window of the batch (the same for all its
        examples) whose frames fill the U-Net's grid; otherwise the batch itself."""
        if not self.cfg.grid_crop:
            return batch
        captioned = isinstance(batch, CaptionedBatch)
        waves = batch.mixtures if captioned else batch.sources  # (B, G, S) or (B, G, N, S)
        length = waves.shape[-1]
        crop = self.model.config.grid_samples(length)
        if crop == length:
            return batch
        start = int(self.rng.integers(0, length - crop + 1))
        window = waves[..., start : start + crop].contiguous()
        return replace(batch, **{"mixtures" if captioned else "sources": window})

    def clauses(self, caption: str) -> list[str]:
        """The parsed clauses of a caption (cached: captions repeat across steps)."""
        if caption not in self._clause_cache:
            self._clause_cache[caption] = parse(caption)
        return self._clause_cache[caption]

    def losses(self) -> dict[str, torch.Tensor]:
        return self.regime.loss(self)

    # ---- validation -------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean SI-SDR (dB) on the fixed 2-source validation pairs, each source queried by its
        label (None without validation clips)."""
        if self.val is None:
            return None
        self.model.eval()
        n_slots = self.n_slots if self.regime.unconditional else 0
        estimates = separate_pairs(self.model, self.query, self.val, self.val_prompts, n_slots)
        self.model.train()
        return float(losses.si_sdr(estimates, self.val.sources[:, 0]).mean())

    # ---- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / FILENAME

    def save(self, best: bool = False) -> Path:
        """Write the resumable checkpoint (with ``best``: the model alone, ``best.safetensors``)."""
        progress = {
            "train": asdict(self.cfg),
            "n_slots": self.n_slots,
            "step": self.step,
            "history": self.history,
            "seconds": self.seconds,
            "ahead": self.ahead,
            "critic_bf16": self.critic_in_bf16,  # resolved: resume keeps the critic's precision
            "numpy_rng": self.rng.bit_generator.state,
        }
        if best:
            return save_run(self.out / BEST, self.model, self.clap, progress)
        return save_run(self.checkpoint_path, self.model, self.clap, progress, self.opt)

    def summary(self) -> dict:
        """Best validation step and SI-SDR, and the plateau check: the validation SI-SDR gained
        over the last quarter of training (a model still gaining much was stopped too early)."""
        vals = [(h["step"], h["val_si_sdr"]) for h in self.history if h["val_si_sdr"] is not None]
        if not vals:
            return {"best_step": None, "best_val_si_sdr": None, "last_quarter_gain_db": None}
        best_step, best_val = max(vals, key=lambda sv: sv[1])
        start = [v for s, v in vals if s <= 0.75 * self.step]
        gain = vals[-1][1] - start[-1] if start else None
        return {
            "best_step": best_step,
            "best_val_si_sdr": round(best_val, 3),
            "last_quarter_gain_db": None if gain is None else round(gain, 3),
        }

    def resume(self) -> None:
        config = read_config(self.checkpoint_path)
        ours = {**asdict(self.cfg), "unet": self.model.config.to_dict()}
        # a field added since the checkpoint was written counts as its default
        defaults = {k: v for k, v in asdict(TrainConfig(self.cfg.mode)).items() if k != "unet"}
        unet = config.get("unet") and {**UNetConfig().to_dict(), **config["unet"]}  # likewise
        theirs = {**defaults, **(config.get("train") or {}), "unet": unet}
        for fields in (ours, theirs):  # compared below as resolved, not as asked (None: auto)
            fields.pop("critic_bf16")
        changed = _differing(theirs, ours)
        if "unet" in changed:  # name the network's fields, not the whole dict
            changed.remove("unet")
            changed += _differing(theirs["unet"] or {}, ours["unet"], "unet.")
        saved_clap = (config.get("clap") or {}).get("config")
        ours_clap = getattr(self.clap, "config", None)
        if saved_clap is not None and ours_clap is not None:  # e.g. another TinyCLAP size
            changed += _differing(saved_clap, json.loads(json.dumps(ours_clap)), "clap.")
        # the precision the critic heard in (checkpoints from before critic_bf16: that of the
        # forward passes, whose setting must match anyway)
        heard_bf16 = self._bf16() and self.cfg.mode in CRITIC_MODES
        if config.get("critic_bf16", heard_bf16) != self.critic_in_bf16:
            changed.append("the critic's precision (--fp32-critic)")
        if changed:
            raise CheckpointError(
                f"{self.checkpoint_path}: made with a different configuration "
                f"({', '.join(changed)} differ); use another --out"
            )
        restore_training(self.checkpoint_path, self.model, self.opt)
        self.rng.bit_generator.state = config["numpy_rng"]  # rank 0's; one process resumes exactly
        self.step, self.history = config["step"], config["history"]
        # checkpoints written before "seconds" existed: the last record's sitting
        self.seconds = config.get("seconds", self.history[-1]["seconds"] if self.history else 0.0)
        self.ahead = config.get("ahead", 0.0)
        if self.world > 1:  # only rank 0's generator was saved: give each rank its own again
            self.rng = np.random.default_rng([self.cfg.seed, self.rank, self.step])

    # ---- the loop --------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop = True

    def _finished(self, seconds: float) -> bool:
        """Whether training is over: ``cfg.steps`` taken, or with ``cfg.minutes``, no time left
        after the ``seconds`` trained for another step and validation (``self.ahead``)."""
        if self.cfg.minutes:
            return seconds + self.ahead >= 60 * self.cfg.minutes
        return self.step >= self.cfg.steps

    def run(self, resume: bool = False, progress: bool = True) -> dict:
        """Train to ``cfg.steps`` (or for ``cfg.minutes``); returns the final record (step, loss,
        val SI-SDR, wall time).

        Under ``torchrun`` every process trains on its own batches with averaged gradients; only
        rank 0 validates, logs and writes checkpoints.
        """
        self._begin(resume)
        handlers = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        log = ValidationLog(self.out / "log.csv" if self.rank == 0 else None)
        now = time.time()
        clock = _Interval(started=now - self.seconds, step=self.step, last=now)  # every sitting
        clock.best = max((h["val_si_sdr"] or -math.inf for h in self.history), default=-math.inf)
        bar = tqdm(
            total=None if self.cfg.minutes else self.cfg.steps,
            initial=self.step,
            desc=f"{self.cfg.mode} x{self.cfg.sources}",
            disable=not (progress and self.rank == 0),
        )
        self.model.train()
        finished = self._finished(self.seconds)
        try:
            while not finished and not self._stop:
                values, lr, ended = self._train_step(clock)
                finished = self._finished(ended - clock.started)
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})
                if self._validation_due(clock, ended, finished):
                    self._validate_and_save(values["total"], lr, clock, log)
                    finished = finished or self._finished(clock.last - clock.started)
            self.seconds = time.time() - clock.started
            if self._stop:
                if self.rank == 0:
                    self.save()
                raise TrainingInterrupted(
                    f"stopped at step {self.step}; checkpoint saved to {self.checkpoint_path} "
                    "(continue with --resume)"
                )
        finally:
            bar.close()
            log.close()
            for s, h in handlers.items():
                signal.signal(s, h)
        return self._end()

    def _begin(self, resume: bool) -> None:
        """Continue the checkpoint in ``out`` (``resume``) or start afresh: a fresh run owns its
        folder, so no earlier run's log or best model survives."""
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint_path.is_file():
            self.resume()
        elif self.rank == 0:
            (self.out / BEST).unlink(missing_ok=True)
            (self.out / "log.csv").unlink(missing_ok=True)

    def _train_step(self, clock: _Interval) -> tuple[dict[str, float], float, float]:
        """One optimizer step; returns the loss terms, the learning rate and when it ended."""
        step_started = time.time()
        with self.autocast():
            parts = self.losses()
        loss = parts["total"]
        if not torch.isfinite(loss):
            raise WsasError(
                f"loss became {loss.item()} at step {self.step + 1}; stopped, the last "
                f"good checkpoint is {self.checkpoint_path} (try a lower --lr)"
            )
        lr = self.cfg.learning_rate(self.step, step_started - clock.started)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1:
            average_gradients(self.model.parameters())
        self.opt.step()
        self.step += 1
        values = {k: v.item() for k, v in parts.items()}  # waits for the device
        ended = time.time()
        clock.step_seconds = ended - step_started
        self.ahead = clock.step_seconds + clock.val_seconds
        clock.sums = {k: clock.sums.get(k, 0.0) + v for k, v in values.items()}
        return values, lr, ended

    def _validation_due(self, clock: _Interval, now: float, finished: bool) -> bool:
        """Rank 0 validates every ``val_every`` steps, at the end and, with ``cfg.minutes``, at
        least every quarter of the budget."""
        quarter = self.cfg.minutes and now - clock.last >= 15 * self.cfg.minutes
        return self.rank == 0 and (self.step % self.cfg.val_every == 0 or finished or quarter)

    def _validate_and_save(self, loss: float, lr: float, clock: _Interval, log) -> None:
        """Validate, record the interval (history and log), save the checkpoint and, when
        validation improved, the best model."""
        now = time.time()
        val = self.validate()
        steps = self.step - clock.step
        means = {k: round(v / steps, 5) for k, v in clock.sums.items()}
        entry = {
            "step": self.step,
            "loss": loss,
            "val_si_sdr": val,
            "lr": lr,
            "seconds": round(now - clock.started, 1),
            "terms": means,  # each loss term averaged over the interval
            "logit_scale": round(float(self.clap.logit_scale), 3),  # frozen: the same each step
        }
        self.history.append(entry)
        log.write(entry, steps * self.cfg.batch_size / max(now - clock.last, 1e-9))
        self.seconds = time.time() - clock.started
        if val is not None and val > clock.best:
            clock.best = val
            self.save(best=True)
        self.save()
        clock.last, clock.step, clock.sums = time.time(), self.step, {}
        clock.val_seconds = clock.last - now
        self.ahead = clock.step_seconds + clock.val_seconds

    def _end(self) -> dict:
        """The final record; rank 0 also writes ``train.json`` (config, record, history)."""
        record = {
            **(self.history[-1] if self.history else {}),
            **self.summary(),
            "seconds": round(self.seconds, 1),
            "world_size": self.world,
        }
        if self.rank == 0:
            summary = {
                "config": asdict(self.cfg),
                "critic_bf16": self.critic_in_bf16,
                "final": record,
                "history": self.history,
            }
            write_text(self.out / "train.json", json.dumps(summary, indent=2))
        return record


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # each saves a checkpoint first


@dataclass
class _Interval:
    """The clock and sums of one validation interval of :meth:`Trainer.run`."""

    started: float  # when the run started, earlier sittings included
    step: int  # the step of the last validation
    last: float  # when the last validation ended
    sums: dict = field(default_factory=dict)  # each loss term summed since then
    best: float = -math.inf  # the best validation SI-SDR so far
    step_seconds: float = 0.0  # the last step's
    val_seconds: float = 0.0  # the last validation's, with its log and checkpoints


class ValidationLog:
    """``log.csv``: one row per validation (nothing is written for ``path`` None)."""

    def __init__(self, path: Path | None):
        self.file = open(path or os.devnull, "a", newline="")
        self.writer = csv.writer(self.file)

    def write(self, entry: dict, examples_per_s: float) -> None:
        if self.file.tell() == 0:
            head = ["step", "loss", "val_si_sdr", "lr", "seconds", "examples_per_s"]
            self.writer.writerow([*head, *entry["terms"], "logit_scale"])
        val = "" if entry["val_si_sdr"] is None else f"{entry['val_si_sdr']:.3f}"
        row = [entry["step"], f"{entry['loss']:.5f}", val, f"{entry['lr']:.3g}"]
        row += [f"{entry['seconds']:.1f}", f"{examples_per_s:.1f}", *entry["terms"].values()]
        self.writer.writerow([*row, entry["logit_scale"]])
        self.file.flush()

    def close(self) -> None:
        self.file.close()
