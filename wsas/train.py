"""One trainer for every regime of the paper, readable top to bottom.

Regimes (what the learner sees -> loss):

* ``supervised``: clean sources + labels -> reconstruction of each source queried by its label.
* ``mix-and-separate``: two captioned mixtures -> each recovered from their sum by its whole caption.
* ``pit``: clean sources, unconditional output slots -> permutation-invariant SI-SDR.
* ``mixit``: two mixtures, 2N unconditional slots -> mixture-invariant reconstruction.
* ``weak``: two captioned mixtures + frozen CLAP -> the bi-modal objective (mixture +
  consistency reconstruction + CLAP similarity of clause-level estimates to their clauses).
* ``semi``: a clean fraction (supervised) + mixtures (weak), ``lambda_s * L_sup + lambda_u * L_weak``.

The weak regimes (``mix-and-separate``, ``mixit``, ``weak``) can also train on real captioned
recordings (AudioCaps, Clotho, ...: each recording is a mixture of unknown sources described by
its caption) instead of the embedded corpus's on-the-fly mixtures; validation then still uses
the embedded corpus's clean pairs when one is given.

Checkpoints (safetensors + JSON config) hold the model, the optimizer, the step and the RNG
states, so ``resume`` continues exactly; SIGINT/SIGTERM save one before stopping.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wsas import losses
from wsas.captions import parse, slots
from wsas.checkpoint import load_checkpoint, save_checkpoint
from wsas.clap.base import Clap, cached_text_embedder
from wsas.clap.tiny import TinyClap
from wsas.data.datasets import AudioCaptionDataset, ClipSet, load_embedded
from wsas.data.mixing import (
    CaptionedBatch,
    MixtureBatch,
    fixed_pairs,
    sample_batch,
    sample_captioned,
)
from wsas.errors import CheckpointError, WsasError
from wsas.evaluate import label_queries, separate_pairs
from wsas.models.separator import MaskSeparator
from wsas.models.unet import UNetConfig

REGIMES = ("supervised", "mix-and-separate", "pit", "mixit", "weak", "semi")
UNCONDITIONAL = ("pit", "mixit")
MIXTURE_ONLY = ("mix-and-separate", "mixit", "weak")  # the regimes that never need clean sources


@dataclass
class TrainConfig:
    mode: str
    sources: int = 2  # sources per training mixture
    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-3
    seed: int = 0
    conditioning: str = "deep"
    clean_fraction: float = 1.0  # supervised / semi: fraction of train clips available clean
    lambda_s: float = 1.0
    lambda_u: float = 1.0
    sim_weight: float = 0.5
    recon_weight: float = 5.0
    val_every: int = 250
    val_mixtures: int = 48
    unet: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in REGIMES:
            raise WsasError(f"unknown mode '{self.mode}'; choose one of {', '.join(REGIMES)}")
        if not 1 <= self.sources <= 6:
            raise WsasError(f"--sources must be between 1 and 6, got {self.sources}")
        if not 0 < self.clean_fraction <= 1:
            raise WsasError(f"--clean-fraction must be in (0, 1], got {self.clean_fraction}")


def init_distributed() -> tuple[int, int]:
    """``(rank, world size)``; under ``torchrun`` joins the process group (NCCL on GPUs, gloo on CPUs)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def average_gradients(params) -> None:
    """Data parallelism: average each gradient over the processes (the update DistributedDataParallel makes)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def slot_queries(n: int, dim: int) -> torch.Tensor:
    """Fixed orthonormal query vectors ``(n, dim)`` that name the output slots of unconditional models."""
    q, _ = torch.linalg.qr(torch.randn(dim, n, generator=torch.Generator().manual_seed(1234)))
    return q.T.contiguous()


def clean_subset(clips: ClipSet, fraction: float) -> ClipSet:
    """The first ``fraction`` of each class's clips (at least one per class)."""
    keep = []
    for c in clips.labels.unique():
        idx = (clips.labels == c).nonzero().flatten()
        keep.append(idx[: max(1, round(fraction * len(idx)))])
    keep = torch.cat(keep).sort().values
    return ClipSet(
        clips.waves[keep],
        clips.labels[keep],
        [clips.phrasings[i] for i in keep],
        clips.class_names,
        clips.sr,
    )


class Trainer:
    """Builds data, model, CLAP and optimizer from a config; ``run()`` trains with checkpoints and logs.

    ``corpus`` is an embedded corpus (training clips and the validation pairs); ``recordings``,
    when given, replaces its training mixtures by real captioned recordings (weak regimes only)
    and ``corpus`` may then be None (no validation).
    """

    def __init__(
        self,
        config: TrainConfig,
        corpus: str | os.PathLike | None,
        out: str | os.PathLike,
        clap: Clap,
        clap_checkpoint: str | None = None,
        device: str | None = None,
        recordings: AudioCaptionDataset | None = None,
    ):
        self.cfg, self.out = config, Path(out)
        self.rank, self.world = init_distributed()
        local = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if self.world > 1 else "cuda"
        self.device = torch.device(device or (local if torch.cuda.is_available() else "cpu"))
        self.clap, self.clap_checkpoint = clap.to(self.device).freeze(), clap_checkpoint
        if recordings is not None and config.mode not in MIXTURE_ONLY:
            raise WsasError(
                f"--mode {config.mode} needs clean sources; captioned recordings train "
                f"{', '.join(MIXTURE_ONLY)}"
            )
        if corpus is None and recordings is None:
            raise WsasError("nothing to train on: give an embedded corpus or captioned recordings")
        self.recordings = recordings
        self.train_clips = (
            load_embedded(corpus, "train") if corpus is not None and recordings is None else None
        )
        self.val = (
            fixed_pairs(load_embedded(corpus, "val"), config.val_mixtures, seed=99)
            if corpus is not None
            else None
        )
        self.clean = (
            clean_subset(self.train_clips, config.clean_fraction)
            if self.train_clips is not None
            else None
        )
        unet = UNetConfig(
            **{**config.unet, "cond_dim": clap.embed_dim, "conditioning": config.conditioning}
        )
        sr = recordings.sr if recordings is not None else self.train_clips.sr
        self.model = MaskSeparator(unet, sr).to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.rng = np.random.default_rng(
            config.seed + 1000 * self.rank
        )  # each process draws its own batches
        torch.manual_seed(config.seed)
        self.step, self.history = 0, []
        self.n_slots = config.sources * (2 if config.mode == "mixit" else 1)
        self.embed = cached_text_embedder(
            self.clap
        )  # frozen text embeddings (len(texts), D), cached
        self._clause_cache: dict[str, list[str]] = {}
        self._stop = False

    # ---- queries -------------------------------------------------------------------------
    def slots(self, batch: int) -> torch.Tensor:
        return slot_queries(self.n_slots, self.clap.embed_dim).to(self.device).expand(batch, -1, -1)

    def mixture_batch(self, groups: int) -> MixtureBatch | CaptionedBatch:
        """Training mixtures ``(B, groups, S)`` with captions: recordings if given, else corpus clips mixed now."""
        if self.recordings is not None:
            return sample_captioned(self.recordings, self.cfg.batch_size, self.rng, groups)
        return sample_batch(
            self.train_clips, self.cfg.batch_size, self.cfg.sources, self.rng, groups=groups
        )

    # ---- losses per regime ------------------------------------------------------------------
    def mag(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model.spectrogram(wave).abs()

    def loss_supervised(self, clips: ClipSet) -> dict[str, torch.Tensor]:
        batch = sample_batch(clips, self.cfg.batch_size, self.cfg.sources, self.rng)
        sources, mixture = batch.sources[:, 0].to(self.device), batch.mixtures[:, 0].to(self.device)
        masks, spec = self.model.masks(mixture, label_queries(self.embed, batch.labels[:, 0]))
        return {"total": losses.reconstruction_loss(masks, spec.abs(), self.mag(sources))}

    def loss_mix_and_separate(self) -> dict[str, torch.Tensor]:
        batch = self.mixture_batch(groups=2)
        mixtures = batch.mixtures.to(self.device)
        queries = self.embed([c for caps in batch.captions for c in caps]).reshape(
            len(mixtures), 2, -1
        )
        masks, spec = self.model.masks(mixtures.sum(1), queries)
        return {"total": losses.reconstruction_loss(masks, spec.abs(), self.mag(mixtures))}

    def loss_unconditional(self) -> dict[str, torch.Tensor]:
        batch = self.mixture_batch(groups=2 if self.cfg.mode == "mixit" else 1)
        mixtures = batch.mixtures.to(self.device)
        masks, spec = self.model.masks(mixtures.sum(1), self.slots(len(mixtures)))
        if (
            self.cfg.mode == "pit"
        ):  # on waveforms: magnitude-L1 PIT stays at the equal-split solution (measured)
            estimates = self.model.to_waves(masks, spec, mixtures.shape[-1])
            loss, _ = losses.pit(
                estimates, batch.sources[:, 0].to(self.device), losses.negative_si_sdr
            )
        else:
            mag_mix = spec.abs()
            pairwise = losses.magnitude_l1(losses.spectral_weight(mag_mix)[:, None, None])
            loss, _ = losses.mixit(masks * mag_mix.unsqueeze(1), self.mag(mixtures), pairwise)
        return {"total": loss}

    def clauses(self, caption: str) -> list[str]:
        """The parsed clauses of a caption (cached: captions repeat across steps)."""
        if caption not in self._clause_cache:
            self._clause_cache[caption] = parse(caption)
        return self._clause_cache[caption]

    def loss_weak(self) -> dict[str, torch.Tensor]:
        batch = self.mixture_batch(groups=2)
        mixtures = batch.mixtures.to(self.device)  # (B, 2, S)
        b, k = len(mixtures), self.cfg.sources
        clause_slots = [
            [slots(self.clauses(c), k, self.rng) for c in caps] for caps in batch.captions
        ]
        texts = [c for row in clause_slots for clauses, _ in row for c in clauses]  # (B * 2 * K)
        alpha = torch.tensor(
            [[a for _, a in row] for row in clause_slots], device=self.device
        )  # (B, 2, K)
        text_emb = self.embed(texts).reshape(
            b, 2 * k, -1
        )  # clause queries double as CLAP text targets
        queries = torch.cat(
            [self.embed([c for caps in batch.captions for c in caps]).reshape(b, 2, -1), text_emb],
            dim=1,
        )
        masks, spec = self.model.masks(mixtures.sum(1), queries)  # (B, 2 + 2K, F, T)
        clause_waves = self.model.to_waves(masks[:, 2:], spec, mixtures.shape[-1])  # (B, 2K, S)
        audio_emb = self.clap.embed_audio(
            clause_waves.flatten(0, 1), self.model.sample_rate
        ).reshape(b, 2 * k, -1)
        names = np.array(texts, dtype=object).reshape(b, 2 * k)
        same = torch.from_numpy(names[:, :, None] == names[:, None, :]).to(self.device)
        return losses.weak_loss(
            masks[:, :2],
            masks[:, 2:].reshape(b, 2, k, *masks.shape[-2:]),
            alpha,
            spec.abs(),
            self.mag(mixtures),
            audio_emb,
            text_emb,
            self.clap.logit_scale,
            same,
            self.cfg.sim_weight,
            self.cfg.recon_weight,
        )

    def losses(self) -> dict[str, torch.Tensor]:
        mode = self.cfg.mode
        if mode == "supervised":
            return self.loss_supervised(self.clean)
        if mode == "mix-and-separate":
            return self.loss_mix_and_separate()
        if mode in UNCONDITIONAL:
            return self.loss_unconditional()
        weak = self.loss_weak()
        if mode == "weak":
            return weak
        sup = self.loss_supervised(self.clean)["total"]
        return {
            "total": self.cfg.lambda_s * sup + self.cfg.lambda_u * weak["total"],
            "supervised": sup,
            "weak": weak["total"],
        }

    # ---- validation ---------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean SI-SDR (dB) on the fixed 2-source validation pairs, each source queried by its label
        (None without a corpus to validate on)."""
        if self.val is None:
            return None
        self.model.eval()
        estimates = separate_pairs(
            self.model, self.embed, self.val, self.n_slots if self.cfg.mode in UNCONDITIONAL else 0
        )
        self.model.train()
        refs = self.val.sources[:, 0]
        return float(losses.si_sdr(estimates, refs).mean())

    # ---- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.safetensors"

    def config_dict(self) -> dict:
        return {
            "kind": "separator",
            "unet": self.model.config.to_dict(),
            "sample_rate": self.model.sample_rate,
            "train": asdict(self.cfg),
            "n_slots": self.n_slots,
            "clap": {
                "backend": "tiny" if isinstance(self.clap, TinyClap) else "laion",
                "checkpoint": self.clap_checkpoint,
                "config": getattr(self.clap, "config", None),
            },
        }

    def save(self) -> Path:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if isinstance(self.clap, TinyClap):  # self-contained: queries can be embedded at inference
            tensors.update({f"clap.{k}": v for k, v in self.clap.state_dict().items()})
        for i, state in self.opt.state_dict()["state"].items():
            tensors.update({f"opt.{i}.{k}": torch.as_tensor(v) for k, v in state.items()})
        tensors["rng.torch"] = torch.get_rng_state()
        config = {
            **self.config_dict(),
            "step": self.step,
            "history": self.history,
            "numpy_rng": self.rng.bit_generator.state,
        }
        return save_checkpoint(self.checkpoint_path, tensors, config)

    def resume(self) -> None:
        tensors, config = load_checkpoint(self.checkpoint_path, kind="separator")
        if config["train"] != asdict(self.cfg) or config["unet"] != self.model.config.to_dict():
            raise CheckpointError(
                f"{self.checkpoint_path}: made with a different configuration; use another --out"
            )
        self.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt_state = self.opt.state_dict()
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                opt_state["state"].setdefault(int(i), {})[name] = value
        self.opt.load_state_dict(opt_state)
        torch.set_rng_state(tensors["rng.torch"])
        self.rng.bit_generator.state = config["numpy_rng"]
        self.step, self.history = config["step"], config["history"]

    # ---- the loop --------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop = True

    def run(self, resume: bool = False, progress: bool = True) -> dict:
        """Train to ``cfg.steps``; returns the final record (step, loss, val SI-SDR, wall time).

        Under ``torchrun`` every process trains on its own batches with averaged gradients; only
        rank 0 validates, logs and writes checkpoints.
        """
        main = self.rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        if resume and self.checkpoint_path.is_file():
            self.resume()
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        log = open(self.out / "log.csv" if main else os.devnull, "a", newline="")
        writer = csv.writer(log)
        if main and log.tell() == 0:
            writer.writerow(["step", "loss", "val_si_sdr", "seconds", "examples_per_s"])
        started, last = time.time(), time.time()
        bar = tqdm(
            total=self.cfg.steps,
            initial=self.step,
            desc=f"{self.cfg.mode} x{self.cfg.sources}",
            disable=not (progress and main),
        )
        self.model.train()
        try:
            while self.step < self.cfg.steps and not self._stop:
                with torch.autocast(
                    self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"
                ):
                    parts = self.losses()
                loss = parts["total"]
                if not torch.isfinite(loss):
                    raise WsasError(
                        f"loss became {loss.item()} at step {self.step + 1}; stopped, the last good "
                        f"checkpoint is {self.checkpoint_path} (try a lower --lr)"
                    )
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.world > 1:
                    average_gradients(self.model.parameters())
                self.opt.step()
                self.step += 1
                bar.update(1)
                bar.set_postfix({k: f"{v.item():.3f}" for k, v in parts.items()})
                if main and (self.step % self.cfg.val_every == 0 or self.step == self.cfg.steps):
                    now = time.time()
                    val = self.validate()
                    rate = self.cfg.val_every * self.cfg.batch_size / max(now - last, 1e-9)
                    self.history.append({"step": self.step, "loss": loss.item(), "val_si_sdr": val})
                    writer.writerow(
                        [
                            self.step,
                            f"{loss.item():.5f}",
                            "" if val is None else f"{val:.3f}",
                            f"{now - started:.1f}",
                            f"{rate:.1f}",
                        ]
                    )
                    log.flush()
                    self.save()
                    last = time.time()
            if self._stop:
                if main:
                    self.save()
                raise KeyboardInterrupt(
                    f"stopped at step {self.step}; checkpoint saved to {self.checkpoint_path}"
                )
        finally:
            bar.close()
            log.close()
            for s, h in handlers.items():
                signal.signal(s, h)
        record = {
            **(self.history[-1] if self.history else {}),
            "seconds": round(time.time() - started, 1),
            "world_size": self.world,
        }
        if main:
            (self.out / "train.json").write_text(
                json.dumps(
                    {"config": asdict(self.cfg), "final": record, "history": self.history}, indent=2
                )
            )
        return record
