"""The embedded corpus: single-source clips rendered offline from a General MIDI soundfont.

Each clip is random material for its class (melodies, chords, rhythms or effect bursts with
random density, register and velocity), rendered by tinysoundfont, loudness-normalised and
written as FLAC. Clips are deterministic given their seed; the splits (``clap`` for TinyCLAP
pretraining, ``train``, ``val``, ``test``) use disjoint seeds, so never the same material.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wsas.audio import check_rate, save
from wsas.data.classes import CLASSES, SoundClass
from wsas.errors import WsasError
from wsas.info import soundfont_path
from wsas.presets import Preset

SPLITS = ("clap", "train", "val", "test")
TARGET_RMS_DB = -24.0  # loudness of a clip before its random +-3 dB level
MIN_ACTIVE = 0.5  # fraction of 50 ms frames a clip must have above -40 dB re its peak frame
DRUM_NOTES = {
    "kick": (35, 36),
    "snare": (38, 40),
    "hat": (42, 44, 46),
    "tom": (41, 43, 45, 47, 48, 50),
    "cymbal": (49, 51, 57, 59),
}
METADATA_FIELDS = ("id", "split", "class", "path", "duration", "seed", "prompt", "captions")


def clip_seed(split: str, class_idx: int, item: int, base_seed: int = 0) -> int:
    """Deterministic seed of one clip; disjoint across splits, classes and items."""
    return ((base_seed * len(SPLITS) + SPLITS.index(split)) * 100 + class_idx) * 100_000 + item


def _note_events(
    cls: SoundClass, rng: np.random.Generator, seconds: float
) -> list[tuple[float, float, int, int]]:
    """Random ``(onset_s, duration_s, midi_note, velocity)`` events for one clip of ``cls``."""
    lo, hi = cls.pitch
    events = []
    if cls.style == "drums":
        step = 60.0 / rng.uniform(80, 160) / 4  # sixteenth note
        pattern = {
            name: rng.random(16) < p
            for name, p in (
                ("kick", 0.3),
                ("snare", 0.25),
                ("hat", 0.6),
                ("tom", 0.08),
                ("cymbal", 0.05),
            )
        }
        pattern["kick"][0] = True
        notes = {name: int(rng.choice(choices)) for name, choices in DRUM_NOTES.items()}
        t, i = rng.uniform(0, 0.1), 0
        while t < seconds:
            for name, hits in pattern.items():
                if hits[i % 16] or (name == "tom" and rng.random() < 0.03):
                    events.append((t, step, notes[name], int(rng.integers(60, 128))))
            t, i = t + step, i + 1
        return events
    effect = cls.style == "effect"
    density = rng.uniform(
        *(cls.density or ((0.7, 2.0) if effect else (1.5, 6.0)))
    )  # notes per second
    pitch = int(rng.integers(lo, hi + 1))
    t = rng.uniform(0, 0.15)
    while t < seconds * 0.9:
        length = rng.exponential(1.0 / density) + (0.25 if effect and not cls.density else 0.06)
        if not events or rng.random() > 0.12:  # otherwise a rest (never before the first note)
            velocity = int(rng.integers(50, 128))
            events.append((t, length * rng.uniform(0.7, 1.0), pitch, velocity))
            if cls.style == "chords" and rng.random() < 0.6:
                for interval in rng.choice(
                    [3, 4, 5, 7, 12], size=int(rng.integers(1, 3)), replace=False
                ):
                    if pitch + interval <= hi + 12:
                        events.append((t, length, pitch + int(interval), velocity))
        t += length
        pitch = int(np.clip(pitch + rng.integers(-5, 6), lo, hi))
    return events


class Renderer:
    """Renders clips with tinysoundfont; a fresh synthesizer per clip, so a clip's samples never
    depend on what was rendered before it (the synthesizer keeps state between notes)."""

    def __init__(self, soundfont: str | os.PathLike | None, sr: int):
        try:
            import tinysoundfont
        except ImportError:
            raise WsasError(
                "tinysoundfont is not installed: pip install --no-deps tinysoundfont==0.3.7"
            ) from None
        path = Path(soundfont) if soundfont else soundfont_path()
        if path is None or not Path(path).is_file():
            raise WsasError(
                f"soundfont not found: {path or 'pretty_midi ships none'} (pass --soundfont F.sf2)"
            )
        self.soundfont, self.sr, self._synth_class = Path(path), sr, tinysoundfont.Synth
        try:
            self._new_synth()
        except Exception as err:
            raise WsasError(f"{path}: not a readable SoundFont ({err})") from None

    def _new_synth(self):
        synth = self._synth_class(samplerate=self.sr)
        return synth, synth.sfload(str(self.soundfont))

    def render(self, cls: SoundClass, seed: int, n_samples: int) -> np.ndarray:
        """Render a mono clip ``(n_samples,)`` of ``cls``, loudness-normalised; deterministic in
        ``seed``."""
        rng = np.random.default_rng(seed)
        best, best_active = None, -1.0
        for _ in range(20):  # re-draw material until the clip is active most of the time
            clip = self._synthesize(cls, _note_events(cls, rng, n_samples / self.sr), n_samples)
            active = active_fraction(clip, self.sr) if np.abs(clip).max() > 0 else 0.0
            if active > best_active:
                best, best_active = clip, active
            if active >= MIN_ACTIVE:
                break
        clip = best
        rms = np.sqrt(np.mean(clip**2)) + 1e-12
        gain_db = TARGET_RMS_DB + rng.uniform(-3, 3)
        clip = clip * (10 ** (gain_db / 20) / rms)
        return (clip / max(1.0, np.abs(clip).max() / 0.99)).astype(np.float32)

    def _synthesize(self, cls: SoundClass, events, n_samples: int) -> np.ndarray:
        (synth, sfid), chan = self._new_synth(), 9 if cls.style == "drums" else 0
        synth.program_select(chan, sfid, cls.bank, cls.program, is_drums=cls.style == "drums")
        timeline = sorted(
            [(round(t * self.sr), 1, note, vel) for t, d, note, vel in events]
            + [(round((t + d) * self.sr), 0, note, 0) for t, d, note, vel in events]
        )
        out, pos = [], 0
        for sample, is_on, note, vel in timeline:
            sample = min(sample, n_samples)
            if sample > pos:
                out.append(
                    np.frombuffer(synth.generate(sample - pos), dtype=np.float32).reshape(-1, 2)
                )
                pos = sample
            if pos >= n_samples:
                break
            synth.noteon(chan, note, vel) if is_on else synth.noteoff(chan, note)
        if pos < n_samples:
            out.append(
                np.frombuffer(synth.generate(n_samples - pos), dtype=np.float32).reshape(-1, 2)
            )
        return np.concatenate(out).mean(axis=1)[:n_samples].astype(np.float64)


def active_fraction(
    wave: np.ndarray, sr: int, frame_s: float = 0.05, floor_db: float = -40.0
) -> float:
    """Fraction of ``frame_s`` frames whose energy is within ``floor_db`` of the loudest frame."""
    n = max(1, int(frame_s * sr))
    frames = wave[: len(wave) // n * n].reshape(-1, n)
    energy = (frames**2).mean(axis=1) + 1e-20
    return float(np.mean(10 * np.log10(energy / energy.max()) > floor_db))


CORPUS_PARTS = ("audio", "metadata.csv", "metadata.csv.tmp", "corpus.json")


def build_corpus(
    preset: Preset,
    out: str | os.PathLike,
    soundfont: str | os.PathLike | None = None,
    sr: int | None = None,
    base_seed: int = 0,
    progress: bool = True,
) -> Path:
    """Render the corpus of ``preset`` into ``out`` (audio/<split>/<class>/<id>.flac +
    metadata.csv).

    ``corpus.json`` records the preset, rate and soundfont. The corpus is rendered into a hidden
    folder next to ``out`` and swapped in at the end, so ``out`` holds either the old corpus or
    the new one, never a mix (an interrupted build leaves nothing). Other files in an old
    corpus folder (e.g. ``tinyclap.safetensors``) are kept. Returns the path of ``metadata.csv``.
    """
    out, sr = Path(out), check_rate(sr or preset.sr, "corpus rate")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise WsasError(f"{existing}: exists and is not a folder (--out {out})")
    if out.is_dir() and any(out.iterdir()) and not any((out / p).exists() for p in CORPUS_PARTS):
        raise WsasError(f"{out}: a non-empty folder that holds no corpus; choose another --out")
    renderer = Renderer(soundfont, sr)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.building-"))
    try:
        _render(preset, renderer, tmp, sr, base_seed, progress)
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp makes 0700 folders
        _swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out / "metadata.csv"


def _swap_in(new: Path, out: Path) -> None:
    """Put the finished corpus ``new`` in place of ``out``'s, keeping ``out``'s other files."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
    try:
        os.replace(out, old / "corpus")
        os.replace(new, out)
        for entry in (old / "corpus").iterdir():
            if entry.name not in CORPUS_PARTS:
                os.replace(entry, out / entry.name)
    finally:
        if not out.exists() and (old / "corpus").exists():
            os.replace(old / "corpus", out)  # interrupted between the two renames: put it back
        shutil.rmtree(old)


def _render(preset: Preset, renderer: Renderer, out: Path, sr: int, base_seed: int, progress):
    """Render every clip of ``preset`` into the empty folder ``out``, then its metadata."""
    n_samples = round(preset.clip_samples * sr / preset.sr)
    rows, started = [], time.time()
    jobs = [
        (split, ci, item)
        for split in SPLITS
        for ci in range(len(CLASSES))
        for item in range(preset.clips_per_class[split])
    ]
    for split, ci, item in tqdm(
        jobs, desc=f"rendering {preset.name} corpus", disable=not progress, unit="clip"
    ):
        cls, seed = CLASSES[ci], clip_seed(split, ci, item, base_seed)
        clip_id = f"{split}-{cls.name.replace(' ', '_')}-{item:04d}"
        rel = Path("audio") / split / cls.name.replace(" ", "_") / f"{clip_id}.flac"
        save(out / rel, renderer.render(cls, seed, n_samples), sr)
        rows.append(
            {
                "id": clip_id,
                "split": split,
                "class": cls.name,
                "path": rel.as_posix(),
                "duration": f"{n_samples / sr:.4f}",
                "seed": seed,
                "prompt": cls.prompt,
                "captions": "|".join(cls.phrasings),
            }
        )
    with open(out / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METADATA_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    digest = hashlib.sha256(renderer.soundfont.read_bytes()).hexdigest()[:16]
    (out / "corpus.json").write_text(
        json.dumps(
            {
                "preset": preset.name,
                "sr": sr,
                "clip_samples": n_samples,
                "base_seed": base_seed,
                "soundfont": renderer.soundfont.name,
                "soundfont_sha256": digest,
                "clips": len(rows),
                "build_seconds": round(time.time() - started, 2),
            },
            indent=2,
        )
    )
