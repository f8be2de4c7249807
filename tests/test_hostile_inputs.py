"""Hostile but realistic inputs to the command line (issue 17).

Every case runs ``wsas.cli.main`` in-process in a fresh folder and asserts the contract: the
promised exit code; stderr is at most one line (``wsas: error: ...`` on failure, a
``wsas: note: ...`` on success) and never a traceback; no file that existed before changed
(the folder, the fixture checkpoints and the corpus), unless the case expects it; no hidden
temporary file remains; and a failed run leaves no new file or folder behind.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from safetensors import safe_open

from wsas.cli import main


@dataclasses.dataclass
class Case:
    argv: list[str]  # {d} the case's folder, {ckpt} {clap} {corpus} the session fixtures
    code: int
    match: str = ""  # must appear on stderr
    setup: tuple[Callable, ...] = ()  # each called as fn(d, env)
    check: Callable | None = None  # fn(d) after the run
    changes: tuple[str, ...] = ()  # pre-existing files (relative to d) the case may change
    patch: Callable | None = None  # fn(monkeypatch, d) before the run


def noise(frames: int, channels: int = 1, peak: float = 0.5, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1, 1, (frames, channels)).astype(np.float32)
    return x * peak / np.abs(x).max(initial=1e-9)


def wav(name="mix.wav", frames=16000, sr=16000, channels=1, peak=0.5, fill=None, seed=0):
    """Setup: write a float WAV of noise (or ``fill``) at ``d/name``."""

    def setup(d: Path, env: dict) -> None:
        data = noise(frames, channels, peak, seed) if fill is None else np.full((frames, 1), fill)
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(d / name, data.astype(np.float32), sr, subtype="FLOAT")

    return setup


def raw(name: str, content: bytes | str):
    """Setup: write ``content`` (bytes, or text as UTF-8) at ``d/name``."""

    def setup(d: Path, env: dict) -> None:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        (d / name).write_bytes(data)

    return setup


def folder(name: str, mode: int | None = None):
    def setup(d: Path, env: dict) -> None:
        (d / name).mkdir(parents=True, exist_ok=True)
        if mode is not None:
            (d / name).chmod(mode)

    return setup


def checkpoint(kind: str):
    """Setup: ``d/bad.safetensors``, the smoke separator broken in one way."""

    def setup(d: Path, env: dict) -> None:
        from safetensors.torch import save_file

        from wsas.checkpoint import load_checkpoint, save_checkpoint

        tensors, config = load_checkpoint(env["ckpt"])
        if kind == "config-not-json":
            save_file(tensors, str(d / "bad.safetensors"), metadata={"wsas_config": "{unet: 1"})
            return
        if kind == "no-unet":
            del config["unet"]
        if kind == "no-train-mode":
            del config["train"]["mode"]
        if kind == "no-clap-tensors":
            tensors = {k: v for k, v in tensors.items() if not k.startswith("clap.")}
        save_checkpoint(d / "bad.safetensors", tensors, config)

    return setup


def captions(text: str, encoding: str = "utf-8"):
    return raw("eval/captions.csv", text.encode(encoding))


def fake_corpus(d: Path, env: dict) -> None:
    """An 8 kHz corpus folder (one clip) with a TinyCLAP next to it."""
    (d / "corpus" / "audio").mkdir(parents=True)
    sf.write(d / "corpus" / "audio" / "x.flac", noise(800), 8000)
    (d / "corpus" / "metadata.csv").write_text("id,split,class,path\nx,test,cello,audio/x.flac\n")
    (d / "corpus" / "corpus.json").write_text('{"sr": 8000}')
    (d / "corpus" / "tinyclap.safetensors").write_bytes(b"keep me")


def outputs(d: Path, sub: str = "o") -> list[str]:
    return sorted(p.name for p in (d / sub).iterdir()) if (d / sub).is_dir() else []


def expect_files(*names: str, sub: str = "o") -> Callable:
    def check(d: Path) -> None:
        assert outputs(d, sub) == sorted(names)

    return check


def stems_sum_to_mixture(mix: str, prefix: str, fmt: str = "wav", atol: float = 1e-5):
    """Check: the written stems + residual equal ``gain * mixture`` (gain from the manifest)."""

    def check(d: Path) -> None:
        manifest = json.loads((d / "o" / f"{prefix}__manifest.json").read_text())
        files = [Path(s["file"]) for s in manifest["stems"]]
        assert any(f.name == f"{prefix}__residual.{fmt}" for f in files)
        total = sum(sf.read(f, dtype="float64")[0] for f in files)
        original = sf.read(d / mix, dtype="float64")[0]
        assert np.allclose(total, manifest["gain"] * original, atol=atol)
        if fmt == "flac":  # scaled, not clipped: no sample sits at full scale
            assert all(np.abs(sf.read(f)[0]).max() < 0.9995 for f in files)

    return check


def flac_clips_peak_four(d: Path) -> None:
    stems_sum_to_mixture("loud.wav", "loud", "flac", atol=1e-4)(d)
    manifest = json.loads((d / "o" / "loud__manifest.json").read_text())
    assert manifest["gain"] < 0.25


def same_length_as_input(name: str, frames: int) -> Callable:
    def check(d: Path) -> None:
        for f in (d / "o").glob("*.wav"):
            assert sf.info(f).frames == frames, f.name
        assert any((d / "o").glob(f"{name}__*.wav"))

    return check


def replaced_by_a_separation(d: Path) -> None:
    assert sf.info(d / "o" / "mix__a_dog_barks.wav").frames == 16000


def patch_render_interrupt(monkeypatch, d: Path) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("wsas.data.synth.Renderer.render_clip", interrupted)


def patch_one_clip_per_split(monkeypatch, d: Path) -> None:
    from wsas.presets import PRESETS

    small = {"clap": 1, "train": 1, "val": 1, "test": 1}
    monkeypatch.setitem(
        PRESETS, "smoke", dataclasses.replace(PRESETS["smoke"], clips_per_class=small)
    )


def rebuilt_at_16k(d: Path) -> None:
    meta = json.loads((d / "corpus" / "corpus.json").read_text())
    assert meta["sr"] == 16000 and meta["clips"] == 96
    assert {sf.info(f).samplerate for f in (d / "corpus" / "audio").rglob("*.flac")} == {16000}
    assert not (d / "corpus" / "audio" / "x.flac").exists()
    assert (d / "corpus" / "tinyclap.safetensors").read_bytes() == b"keep me"


def patch_disk_full(monkeypatch, d: Path) -> None:
    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name)

    monkeypatch.setattr(sf.SoundFile, "write", full)


def patch_read_only(monkeypatch, d: Path) -> None:
    if os.geteuid() == 0:  # root ignores folder permissions: simulate what others get
        real_open, inside = os.open, str(d / "o")

        def denied(path, *args, **kwargs):  # creating any file in the read-only folder fails
            if str(path).startswith(inside) and args and args[0] & os.O_CREAT:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)


def patch_manifest_disk_full(monkeypatch, d: Path) -> None:
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.parent == d / "o":  # the manifest, the run's last file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)


def except_adds_up(d: Path) -> None:
    """Check: ``mix__except`` + the excepted stem = the mixture; the manifest says so."""
    manifest = json.loads((d / "o" / "mix__manifest.json").read_text())
    assert manifest["except"] == ["a dog barks"]
    total = sf.read(d / "o" / "mix__except.wav")[0] + sf.read(d / "o" / "mix__a_dog_barks.wav")[0]
    assert np.allclose(total, sf.read(d / "mix.wav")[0], atol=1e-5)


SEP = ["separate", "{d}/mix.wav", "--checkpoint", "{ckpt}", "-o", "{d}/o", "--quiet"]
EVAL_FREE = ["evaluate", "{ckpt}", "--reference-free", "{d}/eval"]
SCORE = ["clap", "score", "--checkpoint", "{clap}"]
BUILD = ["data", "build", "--preset", "smoke", "--quiet"]
DOG = ["-q", "a dog barks"]
MIX = (wav(),)

CASES = {
    # --- separate: inputs ---
    "separate-missing-input": Case([*SEP, *DOG], 2, "no such file"),
    "separate-empty-file": Case([*SEP, *DOG], 2, "empty file", (raw("mix.wav", b""),)),
    "separate-corrupt-bytes": Case(
        [*SEP, *DOG], 2, "unreadable or corrupt", (raw("mix.wav", os.urandom(2000)),)
    ),
    "separate-text-named-wav": Case(
        [*SEP, *DOG], 2, "unreadable or corrupt", (raw("mix.wav", "hello\n" * 100),)
    ),
    # --- separate: one run's outputs, all or nothing (planned over every input) ---
    "separate-names-collide-across-inputs": Case(
        ["separate", "{d}/a.wav", "{d}/a__b.wav", "--checkpoint", "{ckpt}", "-o", "{d}/o"]
        + ["--quiet", "-q", "b__c", "-q", "c"],
        2,
        "would both write a__b__c.wav",
        (wav("a.wav"), wav("a__b.wav")),
    ),
    "separate-nan-in-the-second-input-publishes-nothing": Case(
        ["separate", "{d}/mix.wav", "{d}/bad.wav", *SEP[2:], *DOG],
        2,
        "NaN",
        (wav(), wav("bad.wav", fill=np.nan)),
    ),
    "separate-disk-full-at-the-manifest-publishes-nothing": Case(
        [*SEP, *DOG], 2, "No space left", MIX, patch=patch_manifest_disk_full
    ),
    "separate-overwrite-stops-at-a-folder-in-the-way": Case(
        [*SEP, *DOG, "--overwrite"],
        2,
        "exists and is not a file",
        (*MIX, raw("o/mix__a_dog_barks.wav", b"earlier"), folder("o/mix__manifest.json")),
    ),
    "separate-except-writes-everything-but": Case(
        [*SEP, "--except", "a dog barks"],
        0,
        "",
        MIX,
        except_adds_up,
    ),
    "separate-a-query-and-its-negation": Case(
        [*SEP, *DOG, "--except", "a dog barks"], 2, "both a query and an --except", MIX
    ),
    "separate-nan-samples": Case([*SEP, *DOG], 2, "NaN", (wav(fill=np.nan),)),
    "separate-zero-frames": Case([*SEP, *DOG], 2, "zero-length", (wav(frames=0),)),
    "separate-rate-4k": Case([*SEP, *DOG], 2, "outside the supported", (wav(sr=4000),)),
    "separate-input-is-folder": Case([*SEP, *DOG], 2, "no such file", (folder("mix.wav"),)),
    "separate-second-input-corrupt-nothing-written": Case(
        ["separate", "{d}/mix.wav", "{d}/bad.wav", *SEP[2:], *DOG],
        2,
        "bad.wav",
        (*MIX, raw("bad.wav", b"RIFF1234")),
    ),
    "separate-10-samples": Case(
        [*SEP, *DOG], 0, "", (wav(frames=10),), same_length_as_input("mix", 10)
    ),
    "separate-1-sample": Case(
        [*SEP, *DOG], 0, "", (wav(frames=1),), same_length_as_input("mix", 1)
    ),
    "separate-300-samples-44k-stereo": Case(
        [*SEP, *DOG, "--residual"],
        0,
        "",
        (wav(frames=300, sr=44100, channels=2),),
        stems_sum_to_mixture("mix.wav", "mix"),
    ),
    # --- separate: queries and names ---
    "separate-japanese-queries-two-files": Case(
        [*SEP, "-q", "犬が吠える", "-q", "男性が話す"],
        0,
        "",
        MIX,
        expect_files("mix__犬が吠える.wav", "mix__男性が話す.wav", "mix__manifest.json"),
    ),
    "separate-queries-differing-in-case-and-punctuation": Case(
        [*SEP, *DOG, "-q", "A dog barks!"],
        0,
        "",
        MIX,
        expect_files("mix__a_dog_barks.wav", "mix__a_dog_barks_2.wav", "mix__manifest.json"),
    ),
    "separate-same-stem-in-two-folders": Case(
        ["separate", "{d}/d1/mix.wav", "{d}/d2/mix.wav", "--checkpoint", "{ckpt}", "-o", "{d}/o"]
        + ["--quiet", *DOG],
        0,
        "",
        (wav("d1/mix.wav", seed=1), wav("d2/mix.wav", seed=2)),
        expect_files(
            "mix_1__a_dog_barks.wav",
            "mix_1__manifest.json",
            "mix_2__a_dog_barks.wav",
            "mix_2__manifest.json",
        ),
    ),
    "separate-duplicate-query-with-residual": Case(
        [*SEP, *DOG, *DOG, "--residual"],
        0,
        "separated once",
        MIX,
        stems_sum_to_mixture("mix.wav", "mix"),
    ),
    "separate-same-input-twice": Case(
        ["separate", "{d}/mix.wav", *SEP[1:], *DOG],
        0,
        "given twice",
        MIX,
        expect_files("mix__a_dog_barks.wav", "mix__manifest.json"),
    ),
    "separate-query-named-residual": Case(
        [*SEP, "-q", "residual", "--residual"], 2, "rephrase", MIX
    ),
    "separate-empty-query": Case([*SEP, "-q", ""], 2, "empty query", MIX),
    "separate-punctuation-query": Case([*SEP, "-q", " ... "], 2, "empty query", MIX),
    "separate-no-query": Case(SEP, 2, "either -q", MIX),
    "separate-query-and-caption": Case([*SEP, *DOG, "--caption", "a cat"], 2, "either -q", MIX),
    "separate-empty-caption": Case([*SEP, "--caption", "..."], 2, "empty caption", MIX),
    "separate-caption-repeats-a-clause": Case(
        [*SEP, "--caption", "a dog barks and a dog barks"],
        0,
        "",
        MIX,
        stems_sum_to_mixture("mix.wav", "mix"),
    ),
    # --- separate: existing outputs and output folders ---
    "separate-refuses-existing-output": Case(
        [*SEP, *DOG], 2, "--overwrite", (*MIX, raw("o/mix__a_dog_barks.wav", b"earlier"))
    ),
    "separate-refuses-existing-manifest": Case(
        [*SEP, *DOG], 2, "--overwrite", (*MIX, raw("o/mix__manifest.json", "{}"))
    ),
    "separate-overwrite-replaces": Case(
        [*SEP, *DOG, "--overwrite"],
        0,
        "",
        (*MIX, raw("o/mix__a_dog_barks.wav", b"earlier")),
        replaced_by_a_separation,
        changes=("o/mix__a_dog_barks.wav",),
    ),
    "separate-output-would-replace-an-input": Case(
        ["separate", "{d}/x.wav", "{d}/x__a_dog_barks.wav", "--checkpoint", "{ckpt}"]
        + ["-o", "{d}", "--quiet", "--overwrite", *DOG],
        2,
        "is an input",
        (wav("x.wav"), wav("x__a_dog_barks.wav")),
    ),
    "separate-out-is-the-input-file": Case(
        [*SEP[:-3], "-o", "{d}/mix.wav", "--quiet", *DOG], 2, "not a folder", MIX
    ),
    "separate-out-under-a-file": Case(
        [*SEP[:-3], "-o", "{d}/mix.wav/o", "--quiet", *DOG], 2, "Not a directory", MIX
    ),
    "separate-read-only-out": Case(
        [*SEP, *DOG],
        2,
        "Permission denied",
        (*MIX, folder("o", 0o555)),
        patch=patch_read_only,
    ),
    "separate-disk-full": Case([*SEP, *DOG], 2, "No space left", MIX, patch=patch_disk_full),
    "separate-disk-full-nested-out-removed": Case(
        [*SEP[:-3], "-o", "{d}/o/a/b", "--quiet", *DOG],
        2,
        "No space left",
        MIX,
        patch=patch_disk_full,
    ),
    "separate-flac-9-channels": Case(
        [*SEP, *DOG, "--format", "flac"], 2, "at most 8", (wav(channels=9),)
    ),
    "separate-flac-above-full-scale-scaled": Case(
        ["separate", "{d}/loud.wav", "--checkpoint", "{ckpt}", "-o", "{d}/o", "--quiet"]
        + ["--format", "flac", "--caption", "a dog barks while a man speaks"],
        0,
        "scaled by",
        (wav("loud.wav", peak=4.0),),
        flac_clips_peak_four,
    ),
    "separate-wav-above-full-scale-exact": Case(
        [*SEP, *DOG, "--residual"],
        0,
        "",
        (wav(peak=4.0),),
        stems_sum_to_mixture("mix.wav", "mix", atol=1e-5),
    ),
    # --- separate: checkpoints ---
    "separate-missing-checkpoint": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{d}/none.safetensors", *DOG],
        2,
        "no such checkpoint",
        MIX,
    ),
    "separate-checkpoint-not-safetensors": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{d}/bad.safetensors", *DOG],
        2,
        "not a safetensors checkpoint",
        (*MIX, raw("bad.safetensors", b"\x00" * 64)),
    ),
    "separate-checkpoint-config-not-json": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{d}/bad.safetensors", *DOG],
        2,
        "not valid JSON",
        (*MIX, checkpoint("config-not-json")),
    ),
    "separate-checkpoint-without-unet": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{d}/bad.safetensors", *DOG],
        2,
        "lacks unet",
        (*MIX, checkpoint("no-unet")),
    ),
    "separate-checkpoint-without-train-mode": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{d}/bad.safetensors", *DOG],
        2,
        "lacks train.mode",
        (*MIX, checkpoint("no-train-mode")),
    ),
    "separate-checkpoint-without-clap-tensors": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{d}/bad.safetensors", *DOG],
        2,
        "CLAP weights are missing",
        (*MIX, checkpoint("no-clap-tensors")),
    ),
    "separate-clap-checkpoint-as-separator": Case(
        ["separate", "{d}/mix.wav", "--checkpoint", "{clap}", *DOG], 2, "expected a", MIX
    ),
    # --- parse ---
    "parse-no-caption": Case(["parse"], 2, "give a caption"),
    "parse-punctuation-caption": Case(["parse", "..."], 2, "empty caption"),
    "parse-file-missing": Case(["parse", "--file", "{d}/c.csv"], 2, "No such file"),
    "parse-file-is-folder": Case(["parse", "--file", "{d}"], 2, "Is a directory"),
    "parse-file-binary": Case(
        ["parse", "--file", "{d}/c.csv"], 2, "not UTF-8", (raw("c.csv", b"\xff\xd8\xff" * 99),)
    ),
    "parse-file-utf16": Case(
        ["parse", "--file", "{d}/c.csv"],
        2,
        "not UTF-8",
        (raw("c.csv", "caption\na dog barks\n".encode("utf-16")),),
    ),
    "parse-file-utf8-bom": Case(
        ["parse", "--file", "{d}/c.csv"],
        0,
        "",
        (raw("c.csv", "\ufeffcaption\na dog barks\n".encode()),),
    ),
    "parse-file-short-rows": Case(
        ["parse", "--file", "{d}/c.csv"],
        0,
        "",
        (raw("c.csv", "id,caption\n1\n2,a dog barks\n"),),
    ),
    "parse-file-header-only": Case(
        ["parse", "--file", "{d}/c.csv"], 2, "no captions", (raw("c.csv", "caption\n"),)
    ),
    "parse-file-no-such-column": Case(
        ["parse", "--file", "{d}/c.csv"], 2, "no column 'caption'", (raw("c.csv", "text\nhi\n"),)
    ),
    # --- evaluate ---
    "evaluate-pairs-negative": Case(
        ["evaluate", "{ckpt}", "--data", "{corpus}", "--pairs", "-3"], 2, "positive"
    ),
    "evaluate-pairs-zero": Case(
        ["evaluate", "{ckpt}", "--data", "{corpus}", "--pairs", "0"], 2, "positive"
    ),
    "evaluate-pairs-beyond-the-test-split": Case(
        ["evaluate", "{ckpt}", "--data", "{corpus}", "--pairs", "100000"], 2, "holds 2484"
    ),
    "evaluate-without-data": Case(["evaluate", "{ckpt}"], 2, "give --data"),
    "evaluate-run-without-checkpoint": Case(
        ["evaluate", "{d}", "--data", "{corpus}", "--pairs", "2"], 2, "no such checkpoint"
    ),
    "reference-free-no-captions-csv": Case(EVAL_FREE, 2, "missing", (folder("eval"),)),
    "reference-free-csv-without-file-column": Case(
        EVAL_FREE, 2, "no column 'file'", (captions("caption\na dog barks\n"),)
    ),
    "reference-free-header-only": Case(
        EVAL_FREE, 2, "lists no files", (captions("file,caption\n"),)
    ),
    "reference-free-utf16-csv": Case(
        EVAL_FREE, 2, "UTF-8", (captions("file,caption\nx.wav,a\n", "utf-16"),)
    ),
    "reference-free-missing-audio": Case(
        EVAL_FREE, 2, "no such file", (captions("file,caption\nnone.wav,a dog barks\n"),)
    ),
    "reference-free-empty-caption": Case(
        EVAL_FREE,
        2,
        "empty caption",
        (captions("file,caption\nmix.wav,...\n"), wav("eval/mix.wav")),
    ),
    "reference-free-10-sample-file": Case(
        EVAL_FREE,
        0,
        "",
        (captions("file,caption\nmix.wav,a dog barks\n"), wav("eval/mix.wav", frames=10)),
    ),
    # --- clap score ---
    "clap-score-empty-text": Case([*SCORE, "{d}/mix.wav", "-t", ""], 2, "empty query", MIX),
    "clap-score-10-samples": Case(
        [*SCORE, "{d}/mix.wav", "-t", "a dog barks"], 0, "", (wav(frames=10),)
    ),
    "clap-score-corrupt-audio": Case(
        [*SCORE, "{d}/mix.wav", "-t", "a dog"], 2, "corrupt", (raw("mix.wav", b"RIFF" * 9),)
    ),
    "clap-score-nan-audio": Case(
        [*SCORE, "{d}/mix.wav", "-t", "a dog"], 2, "NaN", (wav(fill=np.inf),)
    ),
    "clap-score-separator-as-clap": Case(
        ["clap", "score", "--checkpoint", "{ckpt}", "{d}/mix.wav", "-t", "a dog"],
        2,
        "expected a 'tiny_clap'",
        MIX,
    ),
    # --- data build ---
    "build-sr-4000": Case([*BUILD, "--out", "{d}/c", "--sr", "4000"], 2, "outside the supported"),
    "build-sr-negative": Case([*BUILD, "--out", "{d}/c", "--sr", "-8000"], 2, "outside"),
    "build-out-is-a-file": Case(
        [*BUILD, "--out", "{d}/c"], 2, "not a folder", (raw("c", "a file"),)
    ),
    "build-out-under-a-file": Case(
        [*BUILD, "--out", "{d}/f/c"], 2, "not a folder", (raw("f", "a file"),)
    ),
    "build-out-not-a-corpus": Case(
        [*BUILD, "--out", "{d}"], 2, "holds no corpus", (raw("notes.txt", "mine"),)
    ),
    "build-unknown-preset": Case(
        ["data", "build", "--preset", "huge"], 2, "invalid choice: 'huge'"
    ),
    "build-missing-soundfont": Case(
        [*BUILD, "--out", "{d}/c", "--soundfont", "{d}/none.sf2"], 2, "soundfont not found"
    ),
    "build-corrupt-soundfont": Case(
        [*BUILD, "--out", "{d}/c", "--soundfont", "{d}/bad.sf2"],
        2,
        "not a readable SoundFont",
        (raw("bad.sf2", b"RIFF garbage" * 50),),
    ),
    "build-interrupted-keeps-the-old-corpus": Case(
        [*BUILD, "--out", "{d}/corpus", "--sr", "16000", "--workers", "1"],
        130,
        "interrupted",
        (fake_corpus,),
        patch=patch_render_interrupt,
    ),
    "build-rebuild-swaps-whole-corpus-keeps-other-files": Case(
        [*BUILD, "--out", "{d}/corpus", "--sr", "16000"],
        0,
        "",
        (fake_corpus,),
        rebuilt_at_16k,
        changes=("corpus/audio/x.flac", "corpus/metadata.csv", "corpus/corpus.json"),
        patch=patch_one_clip_per_split,
    ),
}


# --- issue 39: finite or refused, any rate, and the remaining tracebacks ---


def edited_checkpoint(edit: Callable, source: str = "ckpt"):
    """Setup: ``d/bad.safetensors``, the smoke separator (``source="clap"``: the smoke TinyCLAP)
    after ``edit(tensors, config)``."""

    def setup(d: Path, env: dict) -> None:
        from wsas.checkpoint import save_checkpoint

        with safe_open(str(env[source]), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            config = json.loads(f.metadata()["wsas_config"])
        edit(tensors, config)
        save_checkpoint(d / "bad.safetensors", tensors, config)

    return setup


def set_field(field: str, value, source: str = "ckpt"):
    def edit(tensors: dict, config: dict) -> None:
        *parents, last = field.split(".")
        for part in parents:
            config = config[part]
        config[last] = value

    return edited_checkpoint(edit, source)


def model_weights(change: Callable):
    """Setup: the smoke separator with ``change(name, tensor) -> tensor`` applied to each of its
    floating-point ``model.*`` weights."""

    def edit(tensors: dict, config: dict) -> None:
        for k, v in tensors.items():
            if k.startswith("model.") and v.is_floating_point():
                tensors[k] = change(k, v)

    return edited_checkpoint(edit)


def first_bias_infinite(tensors: dict, config: dict) -> None:
    name = min(k for k in tensors if k.startswith("model.") and k.endswith(".bias"))
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("inf")


def overflowing(name, tensor):
    """Finite learned weights so large that the network's activations overflow float32."""
    return tensor if "running_" in name else tensor * 1e30 + 1e30


def one_nan(name, tensor):
    tensor = tensor.clone()
    tensor.view(-1)[-1] = float("nan")
    return tensor


def patch_no_rate_sized_sinc_kernel(monkeypatch, d: Path) -> None:
    """torchaudio's windowed sinc, refused when its kernel (one row per output phase) would grow
    with the rates' reduced ratio: a 44101 Hz input must not build one."""
    import math

    import torchaudio.functional

    original = torchaudio.functional.resample

    def bounded(wave, orig, new, *args, **kwargs):
        g = math.gcd(int(orig), int(new))
        assert (orig // g) * (new // g) <= 1 << 22, f"a sinc kernel for {orig} -> {new} Hz"
        return original(wave, orig, new, *args, **kwargs)

    monkeypatch.setattr(torchaudio.functional, "resample", bounded)


def patch_truncate_after_open(monkeypatch, d: Path) -> None:
    import wsas.audio

    opened = wsas.audio.open_audio

    def open_then_truncate(path):
        f = opened(path)
        os.truncate(path, os.path.getsize(path) // 3)
        return f

    monkeypatch.setattr(wsas.audio, "open_audio", open_then_truncate)


def corpus_without_class_column(d: Path, env: dict) -> None:
    fake_corpus(d, env)
    (d / "corpus" / "metadata.csv").write_text(
        "id,split,path,captions\nx,test,audio/x.flac,a cello plays\n"
    )


def finite_and_summing_to_the_mixture(d: Path) -> None:
    files = sorted((d / "o").glob("mix__*.wav"))
    stems = [sf.read(f, dtype="float64")[0] for f in files]
    original = sf.read(d / "mix.wav", dtype="float64")[0]
    assert len(stems) == 2 and all(np.isfinite(s).all() for s in stems)
    assert np.abs(sum(stems) - original).max() <= 1e-6 * np.abs(original).max()


BAD = ["separate", "{d}/mix.wav", "--checkpoint", "{d}/bad.safetensors", "-o", "{d}/o", "--quiet"]
BAD += DOG
NEAR_FLOAT_MAX = 3e38

CASES |= {
    "separate-checkpoint-sample-rate-zero": Case(
        BAD, 2, "sample_rate", (*MIX, set_field("sample_rate", 0))
    ),
    "separate-checkpoint-sample-rate-negative": Case(
        BAD, 2, "sample_rate", (*MIX, set_field("sample_rate", -16000))
    ),
    "separate-checkpoint-sample-rate-1e12-refused-before-any-kernel": Case(
        BAD, 2, "sample_rate", (*MIX, set_field("sample_rate", 10**12))
    ),
    "separate-checkpoint-levels-zero": Case(
        BAD, 2, "unet.levels", (*MIX, set_field("unet.levels", 0))
    ),
    "separate-checkpoint-n-fft-zero": Case(
        BAD, 2, "unet.n_fft", (*MIX, set_field("unet.n_fft", 0))
    ),
    "separate-checkpoint-hop-zero": Case(BAD, 2, "unet.hop", (*MIX, set_field("unet.hop", 0))),
    "separate-checkpoint-clap-backend-not-a-string": Case(
        BAD, 2, "clap.backend", (*MIX, set_field("clap.backend", ["tiny"]))
    ),
    "separate-checkpoint-clap-sample-rate-zero": Case(
        BAD, 2, "clap.config.sample_rate", (*MIX, set_field("clap.config.sample_rate", 0))
    ),
    "clap-score-clap-checkpoint-sample-rate-zero": Case(
        ["clap", "score", "--checkpoint", "{d}/bad.safetensors", "{d}/mix.wav", "-t", "a dog"],
        2,
        "sample_rate",
        (*MIX, set_field("sample_rate", 0, source="clap")),
    ),
    "separate-checkpoint-nan-weight": Case(
        BAD, 2, "holds NaN or Inf", (*MIX, model_weights(one_nan))
    ),
    "separate-checkpoint-infinite-bias": Case(
        BAD, 2, "holds NaN or Inf", (*MIX, edited_checkpoint(first_bias_infinite))
    ),
    "separate-checkpoint-int32-weights": Case(
        BAD, 2, "expected a floating-point", (*MIX, model_weights(lambda k, v: v.int()))
    ),
    "separate-checkpoint-bool-weights": Case(
        BAD, 2, "expected a floating-point", (*MIX, model_weights(lambda k, v: v > 0))
    ),
    "separate-non-finite-estimate-is-an-error-not-a-nan-stem": Case(
        BAD, 2, "not finite", (*MIX, model_weights(overflowing))
    ),
    "separate-float-wav-near-float-max-scaled-exactly": Case(
        [*SEP, *DOG, "--residual"],
        0,
        "",
        (wav(peak=NEAR_FLOAT_MAX),),
        finite_and_summing_to_the_mixture,
    ),
    "separate-44101-hz-input-builds-no-rate-sized-kernel": Case(
        [*SEP, *DOG, "--residual"],
        0,
        "",
        (wav(frames=44101, sr=44101, channels=2),),
        stems_sum_to_mixture("mix.wav", "mix"),
        patch=patch_no_rate_sized_sinc_kernel,
    ),
    "separate-device-meta": Case([*SEP, *DOG, "--device", "meta"], 2, "--device meta", MIX),
    "separate-device-mps": Case([*SEP, *DOG, "--device", "mps"], 2, "--device mps", MIX),
    "clap-score-input-truncated-while-read": Case(
        [*SCORE, "{d}/mix.wav", "-t", "a dog"],
        2,
        "truncated",
        (wav(frames=48000),),
        patch=patch_truncate_after_open,
        changes=("mix.wav",),
    ),
    "clap-eval-corpus-metadata-without-class-column": Case(
        ["clap", "eval", "--data", "{d}/corpus", "--checkpoint", "{clap}"],
        2,
        "no column 'class'",
        (corpus_without_class_column,),
    ),
}


def snapshot(*roots: Path) -> dict[Path, tuple[str, int]]:
    """``{path: (sha256 or "dir", mode)}`` of every file and folder under ``roots``."""
    state = {}
    for root in roots:
        for p in [root, *root.rglob("*")]:
            if p.is_dir():
                state[p] = ("dir", p.stat().st_mode)
            elif p.is_file():
                state[p] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return state


@pytest.fixture(scope="module")
def env(smoke_separator, smoke_clap, smoke_corpus) -> dict:
    return {"ckpt": smoke_separator, "clap": smoke_clap, "corpus": smoke_corpus}


@pytest.mark.parametrize("case", [pytest.param(c, id=k) for k, c in CASES.items()])
def test_hostile_input(case: Case, env, tmp_path, monkeypatch, capsys):
    d = tmp_path / "case"
    d.mkdir()
    for setup in case.setup:
        setup(d, env)
    if case.patch:
        case.patch(monkeypatch, d)
    monkeypatch.chdir(d)
    fixtures = [env["corpus"], Path(env["ckpt"]).parent]
    before = snapshot(d, *fixtures)
    capsys.readouterr()
    try:
        code = main([a.format(d=d, **env) for a in case.argv])
    finally:
        if (d / "o").is_dir():
            (d / "o").chmod(0o755)
    out, err = capsys.readouterr()
    after = snapshot(d, *fixtures)

    lines = err.strip().splitlines()
    assert code == case.code, err
    assert "Traceback" not in err
    if case.code == 0:
        assert len(lines) <= 1 and all(line.startswith("wsas: note: ") for line in lines), err
    else:
        assert len(lines) == 1 and lines[0].startswith("wsas: "), err
    assert case.match in err
    allowed = {d / c for c in case.changes}
    changed = [
        p for p, v in before.items() if p not in allowed and after.get(p, ("gone",))[0] != v[0]
    ]
    assert not changed, f"pre-existing files changed or removed: {changed}"
    hidden = [p for p in after if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not hidden, f"temporary files left: {hidden}"
    if case.code != 0:
        assert set(after) <= set(before), f"a failed run left {set(after) - set(before)}"
    if case.check:
        case.check(d)


def test_the_table_covers_every_command_with_fifty_cases():
    commands = {c.argv[0] for c in CASES.values()}
    assert len(CASES) >= 50 and commands == {"separate", "parse", "evaluate", "clap", "data"}


def test_outputs_respect_the_umask(env, tmp_path, capsys):
    sf.write(tmp_path / "mix.wav", noise(4000), 8000)
    previous = os.umask(0o022)
    try:
        code = main(
            ["separate", str(tmp_path / "mix.wav"), "-q", "a dog barks", "--format", "flac"]
            + ["--checkpoint", str(env["ckpt"]), "-o", str(tmp_path / "o"), "--quiet"]
        )
    finally:
        os.umask(previous)
    assert code == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "o").iterdir()}
    assert modes == {"mix__a_dog_barks.flac": 0o644, "mix__manifest.json": 0o644}


def test_debug_shows_the_traceback_of_an_os_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        main(["--debug", "parse", "--file", str(tmp_path)])


def _separation_process(env, tmp_path: Path, out: Path) -> subprocess.Popen:
    """``wsas separate`` of a 10-minute file in a real process, once it has begun writing."""
    sf.write(tmp_path / "long.wav", noise(8000 * 600), 8000, subtype="FLOAT")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsas.cli", "separate", str(tmp_path / "long.wav"), "-q", "a dog"]
        + ["--checkpoint", str(env["ckpt"]), "-o", str(out), "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    deadline = time.time() + 60
    while not (out.is_dir() and any(p.name.startswith(".wsas-tmp") for p in out.iterdir())):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.01)
    return proc


@pytest.mark.parametrize(
    "signals,code,said",
    [
        ((signal.SIGTERM,), 143, "terminated"),
        ((signal.SIGHUP,), 143, "terminated"),
        ((signal.SIGINT,), 130, "interrupted"),
        ((signal.SIGTERM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP), 143, "terminated"),
    ],
    ids=["sigterm", "sighup", "sigint", "repeated"],
)
def test_a_stop_signal_removes_temporary_files_and_the_new_folder(
    env, tmp_path, signals, code, said
):
    """A real process: a signal (or several) mid-separation ends with one line, nothing left."""
    out = tmp_path / "o"
    proc = _separation_process(env, tmp_path, out)
    for s in signals:
        proc.send_signal(s)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code and err.strip().splitlines() == [f"wsas: {said}"]
    assert not out.exists()


def test_a_killed_run_leaves_temporaries_that_the_next_run_sweeps(env, tmp_path):
    out = tmp_path / "o"
    proc = _separation_process(env, tmp_path, out)
    proc.kill()
    proc.communicate(timeout=60)
    assert any(p.name.startswith(".wsas-tmp") for p in out.iterdir())  # kill -9: no cleanup
    sf.write(tmp_path / "short.wav", noise(8000), 8000)
    args = ["separate", str(tmp_path / "short.wav"), "-q", "a dog", "-o", str(out), "--quiet"]
    assert main([*args, "--checkpoint", str(env["ckpt"])]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["short__a_dog.wav", "short__manifest.json"]


def strict_json(text: str):
    """Parse JSON that must not hold NaN or Infinity (which JSON does not have)."""

    def refuse(constant):
        raise AssertionError(f"bare {constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_clap_score_json_never_holds_a_bare_nan(env, tmp_path, capsys):
    """A float WAV near the float32 maximum overflows the CLAP's mel powers: null, not NaN."""
    sf.write(tmp_path / "loud.wav", noise(8000, peak=NEAR_FLOAT_MAX), 8000, subtype="FLOAT")
    code = main(
        ["clap", "score", "--checkpoint", str(env["clap"]), str(tmp_path / "loud.wav")]
        + ["-t", "a dog barks"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert set(strict_json(out)["scores"]) == {"a dog barks"}


def test_evaluate_reference_free_json_never_holds_a_bare_nan(env, tmp_path, capsys):
    (tmp_path / "eval").mkdir()
    sf.write(
        tmp_path / "eval" / "loud.wav", noise(8000, peak=NEAR_FLOAT_MAX), 8000, subtype="FLOAT"
    )
    (tmp_path / "eval" / "captions.csv").write_text("file,caption\nloud.wav,a dog barks\n")
    code = main(
        ["evaluate", str(env["ckpt"]), "--reference-free", str(tmp_path / "eval")] + ["--json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert strict_json(out)["files"] == 1


def test_a_non_finite_estimate_names_the_input_and_the_time(env):
    """The Separator's own check (the file path passes the file name and block offsets)."""
    import torch

    from wsas.errors import AudioError
    from wsas.separate import Separator

    sep = Separator.from_checkpoint(env["ckpt"], "cpu")
    est = torch.zeros(2, 1, 8000)
    est[1, 0, 4000] = float("nan")
    with pytest.raises(AudioError, match=r"^song\.wav: .*not finite.* near 10\.50 s$"):
        sep.check_finite(est, 8000, "song.wav", start=10.0)
    with torch.no_grad():
        for p in sep.model.parameters():
            p.mul_(1e30).add_(1e30)
    with pytest.raises(AudioError, match=r"^clip: .*not finite.* near 0\.00 s$"):
        sep(noise(8000)[:, 0], 8000, ["a dog barks"], where="clip")


def test_a_block_near_the_float32_maximum_is_scaled_by_an_exact_power_of_two(env):
    import torch

    from wsas.separate import Separator

    sep = Separator.from_checkpoint(env["ckpt"], "cpu")
    quiet = torch.from_numpy(noise(8000)[:, 0])
    loud = torch.ldexp(quiet, torch.tensor(126))  # ~4e37: STFT powers would overflow float32
    est_quiet = sep(quiet, 8000, ["a dog barks"])["a dog barks"]
    assert sep.input_scaled == 0
    est_loud = sep(loud, 8000, ["a dog barks"])["a dog barks"]
    assert sep.input_scaled == 126 and torch.isfinite(est_loud).all()
    assert torch.equal(est_loud, torch.ldexp(est_quiet, torch.tensor(126)))
