"""Every chapter runs end to end under papermill with its small default parameters."""

from pathlib import Path

import jupytext
import papermill as pm
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def test_table_of_contents_lists_exactly_the_chapters():
    import yaml

    toc = yaml.safe_load((NOTEBOOKS.parent / "_toc.yml").read_text())
    listed = {e["file"] for part in toc.get("parts", [toc]) for e in part.get("chapters", [])}
    chapters = {f"notebooks/{p.stem}" for p in CHAPTERS}
    assert chapters and chapters <= listed, f"not in _toc.yml: {sorted(chapters - listed)}"
    for entry in listed:
        assert any((NOTEBOOKS.parent / f"{entry}{ext}").is_file() for ext in (".py", ".md")), entry


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_pair_is_in_sync(path):
    ipynb = path.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run `make notebooks`"
    py_cells = [(c.cell_type, c.source) for c in jupytext.read(path).cells]
    nb = jupytext.read(ipynb)
    assert [(c.cell_type, c.source) for c in nb.cells] == py_cells, (
        f"{path.name} and {ipynb.name} drifted"
    )
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit .ipynb without outputs"
    )


@pytest.fixture(scope="module")
def book_work(tmp_path_factory):
    """One work folder for all chapters: the corpus and TinyCLAP are built once and runs are
    reused."""
    return tmp_path_factory.mktemp("book_work")


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs(path, tmp_path, book_work):
    notebook = jupytext.read(path)
    params = {"WORK": str(book_work)} if "WORK =" in path.read_text() else {}
    pm.execute_notebook(
        notebook,
        str(tmp_path / f"{path.stem}.ipynb"),
        parameters=params,
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
