"""Result files name the commit of the code that made them."""

import subprocess

from wsas.results import code_commit


def test_code_commit_names_the_commit_and_marks_changed_code(tmp_path):
    def git(*args):
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert code_commit(tmp_path) is None  # not a git checkout
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "code.py").write_text("x = 1\n")
    (tmp_path / "results.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    head = git("rev-parse", "--short", "HEAD")
    assert code_commit(package) == head
    (tmp_path / "results.json").write_text('{"a": 1}\n')  # results written outside the code
    assert code_commit(package) == head
    (package / "code.py").write_text("x = 2\n")
    assert code_commit(package) == f"{head}+dirty"
