"""wsas.files.OutputSet: a set of files published all or nothing."""

import os

import pytest

from wsas.errors import WsasError
from wsas.files import LOCK_NAME, TEMP_PREFIX, OutputSet, write_file


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_every_file_appears_when_the_set_closes_and_none_before(tmp_path):
    with OutputSet(tmp_path / "o", ["a.txt", "b.txt"]) as out:
        out.temp("a.txt").write_text("a")
        out.temp("b.txt").write_text("b")
        assert not (tmp_path / "o" / "a.txt").exists()
    assert listing(tmp_path / "o") == ["a.txt", "b.txt"]
    assert (tmp_path / "o" / "b.txt").read_text() == "b"


def test_an_error_publishes_nothing_and_removes_the_folder_it_made(tmp_path):
    with pytest.raises(RuntimeError), OutputSet(tmp_path / "o" / "deep", ["a", "b"]) as out:
        out.temp("a").write_text("a")
        raise RuntimeError("the second input failed")
    assert listing(tmp_path) == []


def test_an_interrupt_leaves_an_existing_folder_as_it_was(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt), OutputSet(tmp_path, ["a"]) as out:
        out.temp("a").write_text("a")
        raise KeyboardInterrupt
    assert listing(tmp_path) == ["keep.txt"]


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    with OutputSet(tmp_path, ["a"]) as first:
        with pytest.raises(WsasError, match="another wsas run is writing there"):
            OutputSet(tmp_path, ["b"]).__enter__()
        first.temp("a").write_text("a")
    assert listing(tmp_path) == ["a"]  # and the lock is gone


def test_existing_outputs_are_refused_without_overwrite(tmp_path):
    (tmp_path / "b").write_text("earlier")
    with pytest.raises(WsasError, match=r"b: exists; pass --overwrite"):
        OutputSet(tmp_path, ["a", "b"]).__enter__()
    assert listing(tmp_path) == ["b"]


def test_a_folder_or_an_input_in_the_way_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "b").mkdir()
    with pytest.raises(WsasError, match="exists and is not a file"):
        OutputSet(tmp_path, ["a", "b"], overwrite=True).__enter__()
    (tmp_path / "in.wav").write_text("input")
    with pytest.raises(WsasError, match="is an input"):
        OutputSet(tmp_path, ["in.wav"], True, protect=[tmp_path / "in.wav"]).__enter__()


def test_overwrite_replaces_the_old_set_as_a_whole_or_not_at_all(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).write_text("old")
    real, calls = os.replace, []

    def fail_on_the_last(src, dst):  # aside a, publish a, aside b, then publishing b fails
        calls.append(dst)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_the_last)
    with pytest.raises(OSError), OutputSet(tmp_path, ["a", "b"], overwrite=True) as out:
        out.temp("a").write_text("new")
        out.temp("b").write_text("new")
    assert listing(tmp_path) == ["a", "b"]
    assert (tmp_path / "a").read_text() == (tmp_path / "b").read_text() == "old"


def test_temporaries_of_a_killed_run_are_swept_by_the_next(tmp_path):
    (tmp_path / f"{TEMP_PREFIX}99999-0").write_text("half a stem")
    (tmp_path / f"{TEMP_PREFIX}99999-1").mkdir()
    (tmp_path / LOCK_NAME).write_text("")  # a killed run's lock file: its lock died with it
    write_file(tmp_path / "a.txt", lambda tmp: tmp.write_text("a"))
    assert listing(tmp_path) == ["a.txt"]


def test_a_name_outside_the_set_has_no_temporary(tmp_path):
    with pytest.raises(ValueError), OutputSet(tmp_path, ["a"]) as out:
        out.temp("b")
    assert listing(tmp_path) == []
