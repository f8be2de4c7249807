"""The embedded corpus: single-source clips rendered offline from a General MIDI soundfont.

Each clip is random material for its class (melodies, chords, rhythms or effect bursts with
random density, register and velocity), rendered by tinysoundfont, loudness-normalised and
written as FLAC. Clips are deterministic given their seed; the splits (``clap`` for TinyCLAP
pretraining, ``train``, ``val``, ``test``) use disjoint seeds, so never the same material.

With ``Preset.variation`` the timbre also varies within a class, drawn per clip from the clip's
seed (:func:`draw_variation`): the GM program among the class's variants, register, tempo,
articulation, dynamics, a room (exponentially decaying noise, random RT60) and an EQ (tilt and
one peak). ``metadata.csv`` records what each clip got. Rendering runs in worker processes, each
with one synthesizer that is reset between clips (byte-identical to a fresh one per clip).
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import scipy.fft
import torch
from tqdm import tqdm

from wsas.audio import check_rate, save
from wsas.data.classes import CLASS_SETS, CLASSES, SoundClass
from wsas.errors import WsasError
from wsas.files import OutputSet
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
# per-clip variation (Preset.variation): each parameter is drawn uniformly from its range
VARIATION_RANGES = {
    "pitch_shift": (-5, 5),  # semitones (integers; not for drums)
    "tempo": (0.7, 1.4),  # x the material's speed
    "note_length": (0.4, 1.0),  # x each note's length: staccato .. legato
    "dynamics_start": (0.4, 1.0),  # x velocity at the clip's start, linear to ...
    "dynamics_end": (0.4, 1.0),  # ... x velocity at its end (crescendo or diminuendo)
    "eq_tilt_db_per_octave": (-3.0, 3.0),  # spectral tilt around 1 kHz, clipped at +-12 dB
    "eq_peak_hz": (150.0, 3000.0),  # log-uniform; at most 0.4 x the sample rate
    "eq_peak_db": (-10.0, 10.0),
    "eq_peak_octaves": (0.3, 1.5),  # width (standard deviation) of the peak in octaves
    "rt60_s": (0.1, 1.2),  # room reverberation time
    "reverb_wet_db": (-18.0, -3.0),  # reverberant energy re the direct sound
}
METADATA_FIELDS = (
    "id",
    "split",
    "class",
    "path",
    "duration",
    "seed",
    "prompt",
    "captions",
    "program",
) + ("gain_db", *VARIATION_RANGES)
FLUSH_SAMPLES = 1024  # after a reset; envelopes step per 64-sample block, a quick end takes 2


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


def draw_variation(cls: SoundClass, seed: int, sr: int) -> dict:
    """The timbre of one clip of ``cls`` under ``Preset.variation``: program and the parameters of
    :data:`VARIATION_RANGES`, drawn from their own stream of ``seed`` (the material's stream is
    untouched)."""
    rng = np.random.default_rng([seed, 1])
    params = {"program": int(rng.choice(cls.programs))}
    for name, (lo, hi) in VARIATION_RANGES.items():
        if name == "pitch_shift":
            params[name] = 0 if cls.style == "drums" else int(rng.integers(lo, hi + 1))
        elif name == "eq_peak_hz":
            params[name] = float(np.exp(rng.uniform(np.log(lo), np.log(min(hi, 0.4 * sr)))))
        else:
            params[name] = float(rng.uniform(lo, hi))
    return params


def vary_events(
    events: list[tuple[float, float, int, int]], params: dict, seconds: float
) -> list[tuple[float, float, int, int]]:
    """Apply tempo, note length, register and dynamics of ``params`` to ``(onset_s, duration_s,
    note, velocity)`` events drawn for ``seconds * tempo`` seconds of material."""
    tempo, out = params["tempo"], []
    for t, d, note, vel in events:
        t = t / tempo
        ramp = params["dynamics_start"] + (params["dynamics_end"] - params["dynamics_start"]) * min(
            1.0, t / seconds
        )
        note = int(np.clip(note + params["pitch_shift"], 0, 127))
        velocity = int(np.clip(round(vel * ramp), 1, 127))
        out.append((t, d / tempo * params["note_length"], note, velocity))
    return out


def room(wave: np.ndarray, sr: int, rt60_s: float, wet_db: float, seed: int) -> np.ndarray:
    """Convolve ``wave (S,)`` with a synthetic room: a direct path plus exponentially decaying
    Gaussian noise (-60 dB after ``rt60_s``) at ``wet_db`` of the direct energy; same length."""
    n_ir = max(2, int(min(1.5 * rt60_s, len(wave) / sr) * sr))
    t = np.arange(n_ir) / sr
    tail = np.random.default_rng([seed, 2]).standard_normal(n_ir) * 10 ** (-3 * t / rt60_s)
    ir = tail * 10 ** (wet_db / 20) / np.sqrt(np.sum(tail**2))
    ir[0] += 1.0
    n_fft = scipy.fft.next_fast_len(len(wave) + n_ir - 1, real=True)  # a prime size is slow
    return np.fft.irfft(np.fft.rfft(wave, n_fft) * np.fft.rfft(ir, n_fft), n_fft)[: len(wave)]


def equalize(
    wave: np.ndarray, sr: int, tilt_db: float, peak_hz: float, peak_db: float, octaves: float
) -> np.ndarray:
    """Zero-phase EQ of ``wave (S,)``: a tilt of ``tilt_db`` per octave around 1 kHz (clipped at
    +-12 dB) plus a Gaussian peak of ``peak_db`` at ``peak_hz``, ``octaves`` wide."""
    freq = np.maximum(np.fft.rfftfreq(len(wave), 1 / sr), 20.0)
    gain_db = np.clip(tilt_db * np.log2(freq / 1000), -12, 12) + peak_db * np.exp(
        -0.5 * (np.log2(freq / peak_hz) / octaves) ** 2
    )
    return np.fft.irfft(np.fft.rfft(wave) * 10 ** (gain_db / 20), len(wave))


class Renderer:
    """Renders clips with tinysoundfont. The soundfont is loaded once; the synthesizer is reset
    before every clip, so a clip's samples never depend on what was rendered before it (the
    output equals a fresh synthesizer's, byte for byte: tests/test_data.py checks it)."""

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
        self.soundfont, self.sr = Path(path), sr
        try:
            self._synth = tinysoundfont.Synth(samplerate=sr)
            self._sfid = self._synth.sfload(str(self.soundfont))
        except Exception as err:
            raise WsasError(f"{path}: not a readable SoundFont ({err})") from None

    def reset(self) -> None:
        """Bring the synthesizer back to a fresh one's state: end every voice quickly, render until
        they are gone (``FLUSH_SAMPLES``; fewer than 128 leave voices sounding) and drop the
        channels' settings."""
        self._synth.soundfonts[self._sfid].reset()
        self._synth.generate(FLUSH_SAMPLES)

    def render(self, cls: SoundClass, seed: int, n_samples: int) -> np.ndarray:
        """A mono clip ``(n_samples,)`` of ``cls``, loudness-normalised, deterministic in seed."""
        return self.render_clip(cls, seed, n_samples)[0]

    def render_clip(
        self, cls: SoundClass, seed: int, n_samples: int, variation: bool = False
    ) -> tuple[np.ndarray, dict]:
        """Render a clip ``(n_samples,)`` float32 and the parameters it got (program, gain in dB
        and, with ``variation``, those of :func:`draw_variation`); deterministic in ``seed``."""
        rng, seconds = np.random.default_rng(seed), n_samples / self.sr
        params = draw_variation(cls, seed, self.sr) if variation else {"program": cls.program}
        best, best_active = None, -1.0
        for _ in range(20):  # re-draw material until the clip is active most of the time
            if variation:
                events = vary_events(
                    _note_events(cls, rng, seconds * params["tempo"]), params, seconds
                )
            else:
                events = _note_events(cls, rng, seconds)
            clip = self._synthesize(cls, events, n_samples, params["program"])
            active = active_fraction(clip, self.sr) if np.abs(clip).max() > 0 else 0.0
            if active > best_active:
                best, best_active = clip, active
            if active >= MIN_ACTIVE:
                break
        clip = best
        if variation:
            clip = room(clip, self.sr, params["rt60_s"], params["reverb_wet_db"], seed)
            clip = equalize(
                clip,
                self.sr,
                params["eq_tilt_db_per_octave"],
                params["eq_peak_hz"],
                params["eq_peak_db"],
                params["eq_peak_octaves"],
            )
        rms = np.sqrt(np.mean(clip**2)) + 1e-12
        params["gain_db"] = float(TARGET_RMS_DB + rng.uniform(-3, 3))
        clip = clip * (10 ** (params["gain_db"] / 20) / rms)
        return (clip / max(1.0, np.abs(clip).max() / 0.99)).astype(np.float32), params

    def _synthesize(self, cls: SoundClass, events, n_samples: int, program: int) -> np.ndarray:
        self.reset()
        synth, chan = self._synth, 9 if cls.style == "drums" else 0
        if synth.sfpreset_name(self._sfid, cls.bank, program) is None:  # it would fall back
            raise WsasError(
                f"{self.soundfont.name} has no GM program {cls.bank}:{program} ({cls.name})"
            )
        synth.program_select(chan, self._sfid, cls.bank, program, is_drums=chan == 9)
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


_WORKER: dict = {}  # the renderer of a worker process, made once by _init_worker


def _init_worker(soundfont: Path, sr: int) -> None:
    # a forked worker inherits the CLI's SIGTERM handler, which raises instead of exiting: the
    # pool's terminate() (SIGTERM) at the end of rendering then hung in a worker waiting for a task
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(1)  # saving goes through torch; OpenMP threads do not survive a fork
    renderer = _WORKER.get("renderer")  # a forked worker inherits the parent's, loaded already
    if renderer is None or (renderer.soundfont, renderer.sr) != (soundfont, sr):
        _WORKER["renderer"] = Renderer(soundfont, sr)


def _render_job(job: tuple) -> dict:
    """Render, save and describe one clip: ``job = (audio, split, class_idx, item, seed,
    n_samples, variation)`` (``audio``: the folder that becomes the corpus's ``audio/``);
    returns its metadata row. Runs in a worker (or inline with one worker)."""
    audio, split, ci, item, seed, n_samples, variation = job
    renderer, cls = _WORKER["renderer"], CLASSES[ci]
    clip_id = f"{split}-{cls.name.replace(' ', '_')}-{item:04d}"
    rel = Path("audio") / split / cls.name.replace(" ", "_") / f"{clip_id}.flac"
    wave, params = renderer.render_clip(cls, seed, n_samples, variation)
    save(Path(audio) / rel.relative_to("audio"), wave, renderer.sr)
    row = {
        "id": clip_id,
        "split": split,
        "class": cls.name,
        "path": rel.as_posix(),
        "duration": f"{n_samples / renderer.sr:.4f}",
        "seed": seed,
        "prompt": cls.prompt,
        "captions": "|".join(cls.phrasings),
    }
    return row | {k: round(v, 4) if isinstance(v, float) else v for k, v in params.items()}


CORPUS_FILES = ("audio", "metadata.csv", "corpus.json")
CORPUS_PARTS = (*CORPUS_FILES, "metadata.csv.tmp")  # any of them marks a folder as a corpus


def build_corpus(
    preset: Preset,
    out: str | os.PathLike,
    soundfont: str | os.PathLike | None = None,
    sr: int | None = None,
    base_seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Render the corpus of ``preset`` into ``out`` (audio/<split>/<class>/<id>.flac +
    metadata.csv).

    ``workers`` processes (default: every core) render clips in parallel, each with one
    synthesizer; the files are the same whatever ``workers``. ``metadata.csv`` has one row per
    clip with the program, gain and variation it got; ``corpus.json`` records the preset, rate,
    soundfont, class set and variation ranges. The corpus is written as one
    :class:`wsas.files.OutputSet`, so ``out`` holds either the old corpus or the new one, never a
    mix (an interrupted build leaves nothing). Other files in an old corpus folder (e.g.
    ``tinyclap.safetensors``) are kept. Returns the path of ``metadata.csv``.
    """
    if preset.classes not in CLASS_SETS:
        raise WsasError(
            f"unknown class set '{preset.classes}'; choose one of {', '.join(CLASS_SETS)}"
        )
    out, sr = Path(out), check_rate(sr or preset.sr, "corpus rate")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise WsasError(f"{existing}: exists and is not a folder (--out {out})")
    if out.is_dir() and any(out.iterdir()) and not any((out / p).exists() for p in CORPUS_PARTS):
        raise WsasError(f"{out}: a non-empty folder that holds no corpus; choose another --out")
    renderer = Renderer(soundfont, sr)
    # the old corpus or the new one, never a mix; other files in the folder stay
    with OutputSet(out, CORPUS_FILES, overwrite=True, dir_names={"audio"}) as outputs:
        _render(preset, renderer, outputs, sr, base_seed, progress, workers)
    return out / "metadata.csv"


def corpus_matches(corpus: str | os.PathLike, preset: Preset) -> bool:
    """Whether ``corpus`` holds a corpus rendered with ``preset``'s clip and test-clip lengths
    (False when it is missing or was built by an older version with other lengths)."""
    info = Path(corpus) / "corpus.json"
    built = json.loads(info.read_text()) if info.is_file() else {}
    return (built.get("clip_samples"), built.get("test_clip_samples")) == (
        preset.clip_samples,
        preset.test_samples,
    )


def _render(
    preset: Preset,
    renderer: Renderer,
    outputs: OutputSet,
    sr: int,
    base_seed: int,
    progress: bool,
    workers: int | None,
) -> None:
    """Render every clip of ``preset`` into the temporaries of ``outputs``, then its metadata."""
    n_samples = round(preset.clip_samples * sr / preset.sr)
    test_samples = round(preset.test_samples * sr / preset.sr)
    started, names = time.time(), CLASS_SETS[preset.classes]
    jobs = [
        (
            outputs.temp("audio"),
            split,
            ci,
            item,
            clip_seed(split, ci, item, base_seed),
            test_samples if split == "test" else n_samples,
            preset.variation,
        )
        for split in SPLITS
        for ci, cls in enumerate(CLASSES)
        if cls.name in names
        for item in range(preset.clips_per_class[split])
    ]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    bar = dict(total=len(jobs), desc=f"rendering {preset.name} corpus", unit="clip")
    _WORKER["renderer"] = renderer
    if workers == 1:
        rows = list(tqdm(map(_render_job, jobs), disable=not progress, **bar))
    else:
        with multiprocessing.get_context().Pool(
            workers, _init_worker, (renderer.soundfont, sr)
        ) as pool:
            results = pool.imap(_render_job, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
            rows = list(tqdm(results, disable=not progress, **bar))
    with open(outputs.temp("metadata.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METADATA_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    digest = hashlib.sha256(renderer.soundfont.read_bytes()).hexdigest()[:16]
    outputs.temp("corpus.json").write_text(
        json.dumps(
            {
                "preset": preset.name,
                "sr": sr,
                "clip_samples": n_samples,
                "test_clip_samples": test_samples,
                "base_seed": base_seed,
                "soundfont": renderer.soundfont.name,
                "soundfont_sha256": digest,
                "classes": preset.classes,
                "variation": preset.variation,
                "variation_ranges": VARIATION_RANGES if preset.variation else None,
                "programs": {
                    c.name: list(c.programs if preset.variation else (c.program,))
                    for c in CLASSES
                    if c.name in names
                },
                "clips": len(rows),
                "workers": workers,
                "build_seconds": round(time.time() - started, 2),
            },
            indent=2,
        )
    )
