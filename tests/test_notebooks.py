"""Every chapter as a notebook (python -m mnist1d_np.notebooks): in sync with its chapter, and
run top to bottom in a real Jupyter kernel."""
import asyncio
import importlib.util
import json
import os
import re
import shutil
import sys
import time

import pytest

from mnist1d_np import notebooks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = [m for m in ("jupytext", "nbformat", "nbclient", "ipykernel") if importlib.util.find_spec(m) is None]
needs_extra = pytest.mark.skipif(bool(MISSING), reason=f"the [notebooks] extra is not installed (no "
                                f"{', '.join(MISSING)}): pip install -e \".[notebooks]\"")
CHAPTERS = notebooks.chapters(ROOT)
AT_ONCE = 2  # kernels running side by side (the machine has 2 cores)


def test_without_the_extra_the_command_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jupytext", None)  # as if not installed
    with pytest.raises(SystemExit, match=re.escape('the [notebooks] extra: pip install -e ".[notebooks]"')):
        notebooks.chapter_notebook("01_dataset", ROOT)


@needs_extra
def test_the_committed_notebooks_are_those_their_chapters_make():
    problems = notebooks.drift(ROOT)
    assert problems == [], "\n".join(problems) + f"\nthe notebooks are out of date: run {notebooks.COMMAND}"


def copy_of_the_repository(tmp_path):
    for folder in ("chapters", "notebooks"):
        shutil.copytree(os.path.join(ROOT, folder), tmp_path / folder)
    for name in ("README.md", "setup.cfg"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / name)
    return tmp_path


@needs_extra
def test_a_changed_chapter_is_reported_until_the_command_runs(tmp_path, capsys):
    root = copy_of_the_repository(tmp_path)
    chapter = root / "chapters" / "05_meta_activation.py"
    chapter.write_text(chapter.read_text().replace("QUICK = dict(steps=50,", "QUICK = dict(steps=40,"))
    assert notebooks.main(["--check", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "notebooks/05_meta_activation.ipynb: cell" in out and f"run {notebooks.COMMAND}" in out
    assert len(out.strip().splitlines()) == 2  # that notebook, then what to do
    assert notebooks.main(["--root", str(root)]) == 0
    assert notebooks.drift(root) == []
    assert "QUICK = dict(steps=40," in (root / "notebooks" / "05_meta_activation.ipynb").read_text()


@needs_extra
def test_cell_ids_and_format_versions_are_not_drift_but_outputs_and_lost_cells_are(tmp_path):
    import nbformat
    root = copy_of_the_repository(tmp_path)
    path = root / "notebooks" / "01_dataset.ipynb"
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"other-{i}"
    nb.nbformat_minor, nb.metadata["jupytext"] = 4, {"formats": "ipynb"}
    nbformat.write(nb, path)
    assert notebooks.drift(root) == []
    nb.cells[-1].outputs = [nbformat.v4.new_output("stream", text="saved\n")]
    nbformat.write(nb, path)
    assert notebooks.drift(root) == ["notebooks/01_dataset.ipynb holds outputs (notebooks are committed without them)"]
    del nb.cells[-1]  # the cell that held them
    nbformat.write(nb, path)
    n = len(nb.cells)
    assert notebooks.drift(root) == [f"notebooks/01_dataset.ipynb: {n} cells instead of {n + 1}"]
    (root / "notebooks" / "10_gone.ipynb").write_text(path.read_text())
    assert "notebooks/10_gone.ipynb has no chapter any more" in notebooks.drift(root)


@needs_extra
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_notebook_opens_with_its_docstring_then_holds_all_of_the_chapters_code(name):
    import ast
    nb = notebooks.chapter_notebook(name, ROOT)
    text = open(os.path.join(ROOT, "chapters", f"{name}.py")).read()
    doc = ast.get_docstring(ast.parse(text))
    first, try_it = nb.cells[0], nb.cells[1]
    assert first.cell_type == try_it.cell_type == "markdown"
    assert first.source.startswith(f"# Chapter {name[:2]} — ") and "```\npython chapters/" in first.source
    assert try_it.source.startswith("## Try it") and doc.split("Try it:")[1].strip().splitlines()[0] in try_it.source
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    colab, flags, lesson = code[0], code[1], code[2:]
    assert "google.colab" in colab and "experiment.notebook_flags(FLAGS)" in flags
    # the chapter's code, docstring and `# %%` lines left out, is the lesson cells' code, in order
    body = "\n".join(text.splitlines()[ast.parse(text).body[0].end_lineno:])
    words = lambda s: re.sub(r"\s+", " ", s).strip()
    assert words("\n".join(lesson)) == words("\n".join(l for l in body.splitlines() if not l.startswith("# %%")))
    titles = [line[len("# %%"):].strip() for line in text.splitlines() if line.startswith("# %%")]
    assert [c.source[3:] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## ")][2:] == titles


FIND_SPEC = importlib.util.find_spec


def run_cell(source, colab, monkeypatch, installed=False):
    """Execute a Colab cell as a kernel would, in or out of Colab; returns the commands it ran."""
    import subprocess
    import types
    ran = []
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: FIND_SPEC(name, *a) if installed or name != "mnist1d_np" else None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: ran.append(cmd[3:]))
    exec(compile(source, "colab-cell", "exec"), {})
    return ran


def test_the_colab_cell_installs_only_in_colab(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "https://github.com/someone/mnist1d_np"
    assert run_cell(notebooks.colab_cell(url), False, monkeypatch) == []
    assert run_cell(notebooks.colab_cell(url), True, monkeypatch, installed=True) == []
    assert run_cell(notebooks.colab_cell(url), True, monkeypatch) == [["install", "-q", f"git+{url}"]]
    with pytest.raises(FileNotFoundError, match="upload mnist1d_np.zip"):
        run_cell(notebooks.colab_cell(None), True, monkeypatch)
    (tmp_path / "mnist1d_np.zip").write_bytes(b"")
    assert run_cell(notebooks.colab_cell(None), True, monkeypatch) == [["install", "-q", "mnist1d_np.zip"]]


@needs_extra
def test_colab_links_come_from_the_url_in_setup_cfg(tmp_path):
    root = copy_of_the_repository(tmp_path)
    table = notebooks.readme_table(root)
    assert "colab.research.google.com" not in table and "is not set" in table
    cfg = (root / "setup.cfg").read_text()
    (root / "setup.cfg").write_text(re.sub(r"(?m)^url =.*$", "url = https://github.com/someone/mnist1d_np", cfg))
    table = notebooks.readme_table(root)
    links = re.findall(r"\]\((https://colab\.research\.google\.com/github/[^)]+)\)", table)
    assert links == [f"https://colab.research.google.com/github/someone/mnist1d_np/blob/main/notebooks/{n}.ipynb"
                     for n in CHAPTERS]
    assert "git+https://github.com/someone/mnist1d_np" in notebooks.chapter_notebook("01_dataset", root).cells[2].source
    assert notebooks.colab_link("https://gitlab.com/someone/mnist1d_np", "01_dataset.ipynb") is None


# ---------------------------------------------------------------- run in a real kernel

KERNEL_CHECK = f"""import os, sys, mnist1d_np
assert os.path.realpath(sys.executable) == {os.path.realpath(sys.executable)!r}, sys.executable
assert os.path.realpath(mnist1d_np.__file__).startswith({os.path.realpath(ROOT) + os.sep!r}), mnist1d_np.__file__"""


def prepared(name, flags=None):
    """The generated notebook, with a first cell that checks the kernel runs this Python and this
    checkout's package, and `flags` in place of the notebook's FLAGS."""
    import nbformat
    nb = notebooks.chapter_notebook(name, ROOT)
    if flags is not None:
        cell = next(c for c in nb.cells if "experiment.notebook_flags(FLAGS)" in c.source)
        cell.source = re.sub(r"(?m)^FLAGS = .*$", f"FLAGS = {flags!r}", cell.source)
    nb.cells.insert(0, nbformat.v4.new_code_cell(KERNEL_CHECK))
    return nb


async def execute(nb, folder):
    """Run every cell in a fresh python3 kernel with cwd `folder`; (notebook, error or None, seconds)."""
    from nbclient import NotebookClient
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    env.pop("MPLBACKEND", None)  # as a user's kernel: its own inline backend, not the tests' Agg
    os.makedirs(folder, exist_ok=True)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    try:
        await client.async_execute(env=env)
        error = None
    except Exception as err:  # a cell raised (CellExecutionError), or the kernel died
        error = err
    return nb, error, time.perf_counter() - start


async def execute_all(jobs, at_once):
    gate = asyncio.Semaphore(at_once)

    async def one(nb, folder):
        async with gate:
            return await execute(nb, folder)
    return await asyncio.gather(*(one(nb, folder) for nb, folder in jobs))


SECONDS = {"07": 18, "05": 11, "03": 8, "02": 7, "08": 6, "04": 3}  # roughly, --quick: to start the longest first
ONE_SETTING = ("01_dataset", ["--quick", "--set", "example_label=8"])  # a Try it change, made in FLAGS


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """{name: (notebook, error, seconds, folder)} of every notebook run in a kernel, AT_ONCE at a time
    (the longest first), and the one with a Try it setting in its FLAGS."""
    base = tmp_path_factory.mktemp("kernels")
    order = sorted(CHAPTERS, key=lambda n: -SECONDS.get(n[:2], 0))
    jobs = [(prepared(n), base / n) for n in order] + [(prepared(ONE_SETTING[0], ONE_SETTING[1]), base / "one_setting")]
    start = time.perf_counter()
    done = asyncio.run(execute_all(jobs, AT_ONCE))
    print(f"\n{len(jobs)} notebooks in {time.perf_counter() - start:.1f} s, {AT_ONCE} at a time: "
          + ", ".join(f"{n} {s:.1f} s" for n, (_, _, s) in zip(order + ["one_setting"], done)))
    return {name: (*result, folder) for name, result, (_, folder) in zip(order + ["one_setting"], done, jobs)}


def outputs(nb):
    return [o for cell in nb.cells for o in cell.get("outputs", [])]


def stream_text(nb, name="stdout"):
    return "".join(o.text for o in outputs(nb) if o.output_type == "stream" and o.name == name)


@needs_extra
@pytest.mark.parametrize("name", CHAPTERS)
def test_the_notebook_runs_top_to_bottom_in_a_kernel(executed, name):
    nb, error, seconds, folder = executed[name]
    assert error is None, f"{name}: {str(error)[-3000:]}"
    stdout = stream_text(nb)
    assert "notebook: running with the flags --quick" in stdout
    header = re.search(r"(?m)^quantity +\| .+ \| this run$\n^-+(-\+-+)+$", stdout)
    assert header, f"{name}: no paper vs this run table in the outputs"
    saved = re.findall(r"saved (\S+\.png)", stdout)
    images = [o for o in outputs(nb) if o.output_type == "display_data" and "image/png" in o.data]
    assert saved and len(images) == len(saved)  # every saved figure shown once, under its cell
    record = json.load(open(folder / "results" / name / "results.json"))  # written in the kernel's cwd
    assert record["quick"] is True
    stderr = stream_text(nb, "stderr")
    assert stderr.count("\n") <= 20, f"{name}: the progress lines flood the output:\n{stderr[-2000:]}"


@needs_extra
def test_a_try_it_setting_given_in_flags_reaches_the_chapter(executed):
    nb, error, seconds, folder = executed["one_setting"]
    assert error is None, str(error)[-3000:]
    assert "notebook: running with the flags --quick --set example_label=8" in stream_text(nb)
    record = json.load(open(folder / "results" / "01_dataset" / "results.json"))
    assert record["quick"] is True and record["settings"]["example_label"] == 8
    default = executed["01_dataset"][3] / "results" / "01_dataset"
    pipeline = lambda out: (out / "pipeline.png").read_bytes()  # the digit followed through the pipeline
    assert pipeline(folder / "results" / "01_dataset") != pipeline(default)


@needs_extra
def test_the_process_that_runs_the_kernels_is_not_one(executed):
    """Starting kernels imports parts of ipykernel here (to find the kernel's spec): the chapters must
    still see a script, with its command line, exit codes and Agg, not a notebook."""
    from mnist1d_np import kernel
    assert "ipykernel" in sys.modules and not kernel.in_kernel()


@needs_extra
def test_a_dollar_outside_code_is_text_not_a_formula():
    """Jupyter and Colab render $...$ in Markdown as LaTeX: a docstring's $VARIABLE stays text."""
    assert notebooks._escaped("then $MNIST1D_NP_IMAGES, then `echo $HOME` and $X") == \
        "then \\$MNIST1D_NP_IMAGES, then `echo $HOME` and \\$X"
    for name in CHAPTERS:
        nb = notebooks.chapter_notebook(name, ROOT)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                outside_code = re.sub(r"```.*?```|`[^`]*`", "", cell.source, flags=re.S)
                assert not re.search(r"(?<!\\)\$", outside_code), f"{name}: {cell.source[:200]}"
