from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("book", "dev"):
        wanted |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {p for p in pip if not p.startswith("-e")} == wanted


def test_top_level_layout():
    for name in (
        "README.md",
        "book",
        "wsas",
        "notebooks",
        "environment.yml",
        "tests",
        "_config.yml",
        "_toc.yml",
        "pyproject.toml",
        "Makefile",
        ".ci/run",
        "results",
    ):
        assert (ROOT / name).exists(), name
