"""Data sets over a folder of audio + CSV: the embedded corpus, and the real layouts users bring.

Real layouts (files you download yourself; nothing is fetched here):

* **MUSIC** (solo clips): ``ROOT/<instrument>/<clip>.wav`` (one folder per instrument, audio
  extracted from the MUSIC videos). Label = folder name.
* **VGGSound**: ``ROOT/vggsound.csv`` (no header: ``youtube_id,start_seconds,label,split``) and
  ``ROOT/audio/<youtube_id>_<start_seconds:06d>.wav``. Label = ``label``.
* **AudioCaps**: ``ROOT/<split>.csv`` (``audiocap_id,youtube_id,start_time,caption``) and
  ``ROOT/audio/<split>/<youtube_id>_<start_time>.wav``. Caption = ``caption``.
* **Clotho**: ``ROOT/clotho_captions_<split>.csv`` (``file_name,caption_1..caption_5``) and
  ``ROOT/<split>/<file_name>``. Captions = the five captions.

Missing or corrupt files are reported once, by name, and skipped: a long run never crashes on one.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wsas.audio import load
from wsas.data.classes import label_prompt
from wsas.errors import AudioError, WsasError

log = logging.getLogger(__name__)
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"}


@dataclass
class ClipSet:
    """Single-source clips held in memory: ``waves (N, S)`` at ``sr`` Hz, ``labels (N,)``.

    Labels index ``class_names``; ``prompts`` are the matching label queries (the paper queries
    test mixtures with label text), so a data set carries its own label space.
    """

    waves: torch.Tensor
    labels: torch.Tensor
    phrasings: list[tuple[str, ...]]  # caption phrasings of each clip's class
    class_names: tuple[str, ...]
    sr: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def prompts(self) -> tuple[str, ...]:
        """The label query of each class, ``prompts[label]``."""
        return tuple(label_prompt(name) for name in self.class_names)

    def subset(self, keep: torch.Tensor) -> ClipSet:
        """The clips at indices ``keep`` (same label space)."""
        phrasings = [self.phrasings[i] for i in keep.tolist()]
        return ClipSet(self.waves[keep], self.labels[keep], phrasings, self.class_names, self.sr)


def clean_subset(clips: ClipSet, fraction: float) -> tuple[ClipSet, ClipSet]:
    """``(clean, rest)``: the first ``fraction`` of each class's clips (at least one per class),
    and the others (all clips again when nothing is left)."""
    keep = []
    for c in clips.labels.unique():
        idx = (clips.labels == c).nonzero().flatten()
        keep.append(idx[: max(1, round(fraction * len(idx)))])
    keep = torch.cat(keep).sort().values
    rest = torch.ones(len(clips), dtype=torch.bool)
    rest[keep] = False
    return clips.subset(keep), clips.subset(rest.nonzero().flatten()) if rest.any() else clips


def _clip_set(waves: list, names: list[str], phrasings: list, sr: int) -> ClipSet:
    """A :class:`ClipSet` whose class order is the order of first appearance in ``names``."""
    class_names = tuple(dict.fromkeys(names))
    labels = torch.tensor([class_names.index(n) for n in names])
    return ClipSet(torch.stack(waves), labels, phrasings, class_names, sr)


def load_embedded(root: str | os.PathLike, split: str, sr: int | None = None) -> ClipSet:
    """Load one split of a corpus built by ``wsas data build`` into memory."""
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise WsasError(
            f"{root}: no metadata.csv (build the corpus with `wsas data build --out {root}`)"
        )
    columns = ("split", "path", "class", "captions")
    rows = [r for r in read_table(meta, columns) if r["split"] == split]
    if not rows:
        raise WsasError(f"{meta}: no clips in split '{split}'")
    waves, rates = [], []
    for row in rows:
        wave, rate = load(root / row["path"], sr=sr)
        waves.append(wave)
        rates.append(rate)
    if len({(w.shape[-1], r) for w, r in zip(waves, rates)}) > 1:
        raise WsasError(f"{root}: clips differ in rate or length; rebuild the corpus")
    phrasings = [tuple(row["captions"].split("|")) for row in rows]
    return _clip_set(waves, [row["class"] for row in rows], phrasings, rates[0])


@dataclass(frozen=True)
class Item:
    """One audio file with its caption(s) and/or class label."""

    path: Path
    captions: tuple[str, ...] = ()
    label: str | None = None


class AudioCaptionDataset(torch.utils.data.Dataset):
    """Fixed-length clips ``(clip_samples,)`` at ``sr`` Hz with a caption, from a list of
    :class:`Item`.

    Returns ``(wave, caption, label)``; the caption is one of the item's captions (the first one
    unless ``rng`` picks). A file that fails to load is logged once, by name, and replaced by
    the next good item.
    """

    def __init__(self, items: list[Item], sr: int, clip_samples: int, seed: int = 0):
        if not items:
            raise WsasError("data set is empty: no audio files found in the expected layout")
        self.items, self.sr, self.clip_samples = items, sr, clip_samples
        self.rng = np.random.default_rng(seed)
        self.bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        for offset in range(len(self.items)):
            i = (index + offset) % len(self.items)
            if i in self.bad:
                continue
            try:
                wave, _ = load(self.items[i].path, sr=self.sr)
            except AudioError as err:
                self.bad.add(i)
                log.warning("skipping %s", err)
                continue
            item = self.items[i]
            caption = (
                item.captions[self.rng.integers(len(item.captions))]
                if item.captions
                else item.label or ""
            )
            return fit_length(wave, self.clip_samples), caption, item.label or ""
        raise WsasError("every file of the data set failed to load")


def fit_length(wave: torch.Tensor, n: int) -> torch.Tensor:
    """Crop or zero-pad the last axis to ``n`` samples."""
    if wave.shape[-1] >= n:
        return wave[..., :n]
    return torch.nn.functional.pad(wave, (0, n - wave.shape[-1]))


def read_table(path: str | os.PathLike, columns: tuple[str, ...]) -> list[dict]:
    """The rows of a user's CSV file (UTF-8, a BOM allowed) that must have ``columns``; an
    unreadable file or a missing column is a one-line :class:`WsasError`."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: drop a BOM
            reader = csv.DictReader(f)
            found, rows = reader.fieldnames or [], list(reader)
    except UnicodeDecodeError:
        raise WsasError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as err:
        raise WsasError(f"{path}: not a readable CSV ({err})") from None
    missing = [c for c in columns if c not in found]
    if missing:
        listed = ", ".join(repr(c) for c in found) if found else "none"
        named = ", ".join(repr(c) for c in missing)
        raise WsasError(f"{path}: no column {named} (columns: {listed})")
    return rows


def _read_csv(path: Path, header: bool = True) -> list:
    if not path.is_file():
        raise WsasError(f"{path}: missing (see wsas.data.datasets for the expected layout)")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f)) if header else list(csv.reader(f))


def music_items(root: str | os.PathLike, split: str = "train") -> list[Item]:
    """MUSIC solo clips: ``ROOT/[<split>/]<instrument>/<clip>.<audio>``; label = instrument.

    Without split folders every clip belongs to the training split.
    """
    root = Path(root)
    if (root / split).is_dir():
        root = root / split
    elif split != "train":
        raise WsasError(f"{root}: no '{split}' folder (expected ROOT/{split}/<instrument>/<clip>)")
    return [
        Item(p, (label_prompt(p.parent.name.replace("_", " ")),), p.parent.name.replace("_", " "))
        for p in sorted(root.glob("*/*"))
        if p.suffix.lower() in AUDIO_SUFFIXES
    ]


def vggsound_items(root: str | os.PathLike, split: str = "train") -> list[Item]:
    """VGGSound: ``ROOT/vggsound.csv`` (youtube_id,start_seconds,label,split) +
    ``ROOT/audio/ID_START.wav``."""
    root = Path(root)
    rows = _read_csv(root / "vggsound.csv", header=False)
    return [
        Item(root / "audio" / f"{yid}_{int(start):06d}.wav", (label_prompt(label),), label)
        for yid, start, label, row_split in (r[:4] for r in rows if len(r) >= 4)
        if row_split.strip() == split
    ]


def audiocaps_items(root: str | os.PathLike, split: str = "train") -> list[Item]:
    """AudioCaps: ``ROOT/<split>.csv`` + ``ROOT/audio/<split>/<youtube_id>_<start_time>.wav``."""
    root = Path(root)
    return [
        Item(root / "audio" / split / f"{r['youtube_id']}_{r['start_time']}.wav", (r["caption"],))
        for r in _read_csv(root / f"{split}.csv")
    ]


def clotho_items(root: str | os.PathLike, split: str = "development") -> list[Item]:
    """Clotho: ``ROOT/clotho_captions_<split>.csv`` (file_name, caption_1..5) +
    ``ROOT/<split>/<file_name>``."""
    root = Path(root)
    return [
        Item(
            root / split / r["file_name"],
            tuple(r[f"caption_{k}"] for k in range(1, 6) if r.get(f"caption_{k}")),
        )
        for r in _read_csv(root / f"clotho_captions_{split}.csv")
    ]


RECORDING_LAYOUTS = {
    "audiocaps": audiocaps_items,
    "clotho": clotho_items,
    "vggsound": vggsound_items,
    "music": music_items,
}
LABELLED_LAYOUTS = {"music": music_items, "vggsound": vggsound_items}  # one class label per file


def _layout(spec: str, layouts: dict, what: str) -> tuple[str, str]:
    """``(layout, folder)`` from ``"LAYOUT:FOLDER"``, checked against ``layouts``."""
    layout, sep, root = spec.partition(":")
    if not sep or layout not in layouts or not root:
        raise WsasError(
            f"{what} '{spec}': expected LAYOUT:FOLDER with LAYOUT one of {', '.join(layouts)}"
        )
    if not Path(root).is_dir():
        raise WsasError(f"{what} folder {root} does not exist")
    return layout, root


def load_recordings(spec: str, sr: int, clip_samples: int, seed: int = 0) -> AudioCaptionDataset:
    """Captioned recordings from ``"LAYOUT:FOLDER"`` (LAYOUT one of audiocaps, clotho, vggsound,
    music; the training split), as fixed-length clips at ``sr`` Hz."""
    layout, root = _layout(spec, RECORDING_LAYOUTS, "recordings")
    return AudioCaptionDataset(RECORDING_LAYOUTS[layout](root), sr, clip_samples, seed)


def load_labelled(spec: str, split: str, sr: int, clip_samples: int) -> ClipSet:
    """Labelled single-source clips from ``"LAYOUT:FOLDER"`` (music or vggsound), cropped or padded
    to ``clip_samples`` at ``sr`` Hz; files that fail to load are logged and skipped."""
    layout, root = _layout(spec, LABELLED_LAYOUTS, "labelled data")
    waves, names, phrasings = [], [], []
    for item in LABELLED_LAYOUTS[layout](root, split):
        try:
            wave, _ = load(item.path, sr=sr)
        except AudioError as err:
            log.warning("skipping %s", err)
            continue
        waves.append(fit_length(wave, clip_samples))
        names.append(item.label)
        phrasings.append(item.captions)
    if not waves:
        raise WsasError(f"{spec}: no readable clips in split '{split}'")
    return _clip_set(waves, names, phrasings, sr)


def is_labelled(data: str | os.PathLike) -> bool:
    """Whether ``data`` names a labelled layout (``music:DIR``, ``vggsound:DIR``)."""
    return str(data).partition(":")[0] in LABELLED_LAYOUTS


def load_clips(
    data: str | os.PathLike, split: str, sr: int | None = None, clip_samples: int | None = None
) -> ClipSet:
    """One split of labelled clips: an embedded corpus folder, or ``music:FOLDER`` /
    ``vggsound:FOLDER`` (those need ``sr`` and ``clip_samples``)."""
    if is_labelled(data):
        if sr is None or clip_samples is None:
            raise WsasError(f"{data}: a labelled layout needs a sample rate and a clip length")
        return load_labelled(str(data), split, sr, clip_samples)
    return load_embedded(data, split, sr)


def training_sets(
    data: str | None, recordings: str | None, sr: int, clip_samples: int, seed: int = 0
) -> tuple[ClipSet | AudioCaptionDataset, ClipSet | None, bool]:
    """What ``wsas train`` trains and validates on: ``(train, val, is_corpus)``.

    ``data`` is an embedded corpus folder or a labelled layout (``music:DIR``); ``recordings``
    a captioned layout (``audiocaps:DIR``) that replaces its training clips. Validation comes
    from ``data`` when it has a val split (a corpus always does); labelled layouts and
    recordings are cut into ``clip_samples`` clips at ``sr`` Hz.
    """
    if not (data or recordings):
        raise WsasError("give --data CORPUS, --recordings LAYOUT:FOLDER, or both")
    corpus = bool(data) and not is_labelled(data)
    size = {} if corpus else {"sr": sr, "clip_samples": clip_samples}
    val = None
    if data:
        try:
            val = load_clips(data, "val", **size)
        except WsasError:
            if corpus:
                raise
    if recordings:
        train = load_recordings(recordings, sr, clip_samples, seed)
    else:
        train = load_clips(data, "train", **size)
    return train, val, corpus
