import json
import subprocess
import sys

import torch

from wsas import __version__
from wsas.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0 and __version__ in capsys.readouterr().out


def test_info_reports_backends_and_soundfont(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["torch"] and "cpu" in info["devices"]
    assert set(info["clap_backends"]) == {"tiny", "laion"}
    assert info["soundfont"].endswith(".sf2")
    # whether this CPU computes bf16 itself (what the critic's precision defaults on)
    flags = (torch.cpu._is_avx512_bf16_supported(), torch.cpu._is_amx_tile_supported())
    assert info["cpu_bf16"] is any(flags)


def test_native_bf16_is_false_for_devices_it_cannot_ask():
    from wsas.info import native_bf16

    assert native_bf16("meta") is False and native_bf16("mps") is False
    assert native_bf16("cuda") is False or torch.cuda.is_available()


def test_unknown_command_exits_2_with_one_line(capsys):
    assert main(["no-such-command"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("wsas: error: argument COMMAND: invalid choice: 'no-such-command'")


def test_user_error_is_one_line_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "wsas.cli", "data", "build", "--preset", "huge"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    from wsas.presets import PRESETS

    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("wsas: error: argument --preset: invalid choice: 'huge'")
    assert all(name in line for name in PRESETS)


def test_debug_flag_shows_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "wsas.cli", "--debug", "parse", "..."],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_parse_command_prints_json(capsys):
    assert main(["parse", "A man speaks while a dog barks"]) == 0
    assert json.loads(capsys.readouterr().out) == ["a man speaks", "a dog barks"]


def test_parse_empty_caption_exits_2(capsys):
    assert main(["parse", "..."]) == 2
    assert "empty caption" in capsys.readouterr().err


def test_parse_file_reports_distribution(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("caption\nA dog barks\nA man speaks while a dog barks\n")
    assert main(["parse", "--file", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sources"] == {"1": 1, "2": 1}


def test_data_build_smoke(tmp_path, capsys):
    assert main(["data", "build", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "metadata.csv").is_file()


def test_device_flag_is_checked_in_one_line(capsys):
    import torch

    code = main(["separate", "x.wav", "-q", "a dog", "--device", "warp-drive"])
    assert code == 2 and "--device warp-drive: not a device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert (
            main(["train", "--mode", "weak", "--out", "r", "--data", "d", "--device", "cuda"]) == 2
        )
        assert "has no CUDA device" in capsys.readouterr().err


def test_train_passes_the_clause_level_flags_to_its_config(capsys):
    base = ["train", "--out", "r", "--data", "d"]  # the config is checked before any data is read
    assert main([*base, "--mode", "supervised", "--clause-level", "floor"]) == 2
    assert "--mode supervised has no clause estimates" in capsys.readouterr().err
    assert main([*base, "--mode", "weak", "--clause-floor", "-6"]) == 2
    assert "--clause-floor needs --clause-level floor" in capsys.readouterr().err
    assert main([*base, "--mode", "weak", "--clause-level", "energy", "--clause-level-weight", "0"])
    assert "--clause-level-weight must be > 0" in capsys.readouterr().err
