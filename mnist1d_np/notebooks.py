"""Every chapter as a notebook: `python -m mnist1d_np.notebooks` writes notebooks/NN_name.ipynb.

    python -m mnist1d_np.notebooks           # write notebooks/*.ipynb and the README's table of them
    python -m mnist1d_np.notebooks --check   # write nothing; list what differs, exit 1 if anything does

The chapters (chapters/NN_name.py) are the source; a notebook is generated
from its chapter and committed without outputs. Whoever changes a chapter
runs the command (tests/test_notebooks.py fails until they do). jupytext
reads the chapter's `# %%` cells; this module arranges them as a lesson:

1. the chapter's docstring as Markdown (jupytext would keep it as code): its
   question, setup and answer, then its *Try it* list. The chapter file keeps
   its docstring, which --help and the tests read;
2. a cell that installs the package in Colab, and does nothing elsewhere;
3. a cell that sets the flags the chapter runs with (a notebook has no
   command line): `--quick` by default, [] for the full run, `--set` for one
   setting of *Try it* (experiment.notebook_flags);
4. the chapter's cells, each under a Markdown heading of its title.

The repository's public URL has one home, `url` in setup.cfg's [metadata].
While it is unset, the Colab cell installs from an uploaded zip of the
repository and no "Open in Colab" links are made; once it is set (a GitHub
URL), the cell installs from it and the README's table links every notebook
to Colab.

Needs the [notebooks] extra (jupytext, nbformat): `pip install -e ".[notebooks]"`.
"""
import argparse
import ast
import configparser
import glob
import os
import re
import sys

from .fileio import atomic_write

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = "python -m mnist1d_np.notebooks"
EXTRA = 'pip install -e ".[notebooks]"'
TABLE_BEGIN = f"<!-- notebooks: begin (written by {COMMAND}; edit the command, not this table) -->"
TABLE_END = "<!-- notebooks: end -->"
ZIP = "mnist1d_np.zip"


def _require(module):
    """Import jupytext or nbformat, or stop with the line that installs them."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"the notebooks need {module}, from the [notebooks] extra: {EXTRA}") from None


# ---------------------------------------------------------------- the repository's URL

def repository_url(root=ROOT):
    """setup.cfg's [metadata] url, the repository's public URL; None while it is unset."""
    config = configparser.ConfigParser()
    config.read(os.path.join(root, "setup.cfg"))
    return config.get("metadata", "url", fallback="").strip().rstrip("/") or None


def colab_link(url, notebook, branch="main"):
    """The "Open in Colab" address of notebooks/<notebook> in the GitHub repository `url`,
    or None (Colab opens notebooks from GitHub, not from other hosts)."""
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(\.git)?", url or "")
    if not match:
        return None
    return f"https://colab.research.google.com/github/{match[1]}/{match[2]}/blob/{branch}/notebooks/{notebook}"


# ---------------------------------------------------------------- the docstring as Markdown

def docstring_markdown(doc):
    """The chapter's docstring as Markdown: [the lesson's opening, its *Try it* list].
    The first line becomes the title; a "Run:" paragraph, the commands in a code block."""
    before, _, after = doc.partition("\nTry it:")
    opening = "\n\n".join(_markdown_paragraph(p) for p in before.strip().split("\n\n"))
    cells = ["# " + opening]
    if after.strip():
        cells.append("## Try it\n\nEach is a change of one setting or flag (in this notebook: of `FLAGS` "
                     "below).\n\n" + "\n".join(_escaped(line) for line in after.strip("\n").splitlines()))
    return cells


def _markdown_paragraph(paragraph):
    lines = paragraph.splitlines()
    if not lines[0].startswith("Run:"):
        return "\n".join(map(_escaped, lines))
    commands = [lines[0][len("Run:"):].strip()]
    rest = lines[1:]
    while rest and rest[0].startswith("    "):
        commands.append(rest.pop(0).strip())
    text = "Run as a script:\n\n```\n" + "\n".join(commands) + "\n```"
    return text + ("\n\n" + "\n".join(map(_escaped, rest)) if rest else "")


def _escaped(line):
    """A line of plain text, kept from being read as Markdown's headings, quotes or
    rules, or a $ outside `code` as the start of a formula (Jupyter and Colab render
    $...$ as LaTeX); the docstrings' own lists, `code` and *emphasis* are meant as Markdown."""
    stripped = line.lstrip()
    if re.match(r"(#|>|\+ |\* )", stripped) or re.fullmatch(r"[-=_]{3,}", stripped):
        line = line[:len(line) - len(stripped)] + "\\" + stripped
    parts = line.split("`")  # the odd parts are code spans: kept as they are
    return "`".join(part.replace("$", "\\$") if i % 2 == 0 else part for i, part in enumerate(parts))


def chapter_title(doc):
    """'Chapter 05 — metalearning an activation function.' -> 'metalearning an activation function'."""
    first = doc.strip().splitlines()[0]
    return first.split("—", 1)[-1].strip().rstrip(".")


# ---------------------------------------------------------------- the cells the generator adds

COLAB_CELL = """\
# In Colab: install mnist1d_np (once per session). Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import importlib, importlib.util, os, subprocess
    if importlib.util.find_spec("mnist1d_np") is None:
INSTALL
        importlib.invalidate_caches()"""
FROM_URL = """\
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+URL"], check=True)"""
FROM_ZIP = """\
        if not os.path.exists("ZIP"):
            raise FileNotFoundError("upload ZIP (the repository, zipped: see the README's Notebooks "
                                    "section) to Colab's Files panel, then run this cell again")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ZIP"], check=True)"""


def colab_cell(url):
    """Code that installs mnist1d_np when it runs in Colab (from `url`, or from an uploaded
    zip while the URL is unset), and does nothing anywhere else."""
    install = FROM_URL.replace("URL", url) if url else FROM_ZIP.replace("ZIP", ZIP)
    return COLAB_CELL.replace("INSTALL", install)


def example_setting(doc):
    """The first `--set NAME=VALUE` of the docstring's Try it list, or None."""
    match = re.search(r"--set (\w+=[^`\s]+)", doc.partition("Try it")[2])
    return match[1] if match else None


def flags_cells(name, doc):
    """[Markdown, code]: what the flags are in a notebook, and the cell that sets them."""
    setting = example_setting(doc) or "steps=100"
    text = (
        "## The flags, in a notebook\n\n"
        "A notebook has no command line: the chapter runs with the flags in `FLAGS` below, as "
        f"`python chapters/{name}.py` would with them. `--quick` is the small run (well under a minute, "
        "the settings of `QUICK` in the *Settings* cell); the paper's numbers need the full run, "
        "`FLAGS = []` (*Run as a script* above says how long it takes). To try one setting of *Try it*, "
        f'add it with `--set`: `FLAGS = ["--quick", "--set", "{setting}"]`. Then run the cells below.\n\n'
        f"Figures and numbers are saved in `results/{name}/` in the notebook's working folder (`--out` "
        "changes it), and shown below the last cell. Interrupting the kernel is the notebook's Ctrl-C: "
        "what *Run as a script* says about resuming holds here when the last cell runs again with the same "
        "flags.")
    code = ("from mnist1d_np import experiment\n\n"
            f'FLAGS = ["--quick"]  # the full run: []; one setting of Try it: ["--quick", "--set", "{setting}"]\n'
            "experiment.notebook_flags(FLAGS)")
    return text, code


# ---------------------------------------------------------------- a chapter's notebook

def chapters(root=ROOT):
    """The chapters' names, NN_name, in order."""
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(root, "chapters", "[0-9]*.py")))


def chapter_notebook(name, root=ROOT):
    """The notebook (nbformat v4, no outputs) of chapters/<name>.py."""
    jupytext, nbformat = _require("jupytext"), _require("nbformat")
    text = open(os.path.join(root, "chapters", f"{name}.py"), encoding="utf-8").read()
    doc = ast.get_docstring(ast.parse(text))
    if not doc:
        raise ValueError(f"chapters/{name}.py has no docstring to open its notebook with")
    new = nbformat.v4
    flags_text, flags_code = flags_cells(name, doc)
    cells = [new.new_markdown_cell(c) for c in docstring_markdown(doc)]
    cells += [new.new_code_cell(colab_cell(repository_url(root))), new.new_markdown_cell(flags_text),
              new.new_code_cell(flags_code)]
    for cell in jupytext.reads(text, fmt="py:percent").cells:
        cells += _lesson_cells(cell, new)
    notebook = new.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"{name[:2]}-{i:02d}"  # stable ids: regenerating changes nothing that did not change
    return notebook


def _lesson_cells(cell, new):
    """A jupytext cell of the chapter as the notebook's cells: its title as a heading, its
    code without the module docstring (the notebook opens with it as Markdown)."""
    source = _without_docstring(cell.source) if cell.cell_type == "code" else cell.source
    if not source.strip():
        return []
    # jupytext reads a title's {...} as cell metadata, and keeps what is not JSON aside: the title's end
    title = " ".join(filter(None, (cell.metadata.get(k) for k in ("title", "incorrectly_encoded_metadata"))))
    out = [new.new_markdown_cell("## " + title)] if title else []
    make = new.new_code_cell if cell.cell_type == "code" else new.new_markdown_cell
    return out + [make(source)]


def _without_docstring(source):
    try:
        body = ast.parse(source).body
    except SyntaxError:  # a cell of IPython syntax (a magic): not the opening cell
        return source
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return "\n".join(source.splitlines()[body[0].end_lineno:]).strip("\n")
    return source


def cells(notebook):
    """What the sync test compares: every cell's (type, source). Ids, metadata and format
    versions are left out, as they vary between tools and versions."""
    return [(cell["cell_type"], "".join(cell["source"])) for cell in notebook["cells"]]


# ---------------------------------------------------------------- the README's table

def readme_table(root=ROOT):
    """The README's table of the notebooks, between its markers (included)."""
    url = repository_url(root)
    links = {name: colab_link(url, f"{name}.ipynb") for name in chapters(root)}
    colab = any(links.values())
    rows = ["| | chapter | notebook |" + (" Colab |" if colab else ""), "|---|---|---|" + ("---|" if colab else "")]
    for name in chapters(root):
        doc = ast.get_docstring(ast.parse(open(os.path.join(root, "chapters", f"{name}.py"), encoding="utf-8").read()))
        row = f"| {name[:2]} | {chapter_title(doc)} | [`notebooks/{name}.ipynb`](notebooks/{name}.ipynb) |"
        if colab:
            row += f" [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({links[name]}) |"
        rows.append(row)
    if not colab:
        rows += ["", "No Colab links yet: the repository's public URL (`url` in setup.cfg) is not set"
                 + (" to a GitHub repository" if url else "") + "; open a notebook in Colab by uploading it "
                 "(below)."]
    return "\n".join([TABLE_BEGIN, *rows, TABLE_END])


def readme_with_table(readme, table):
    """The README's text with its table replaced by `table`. ValueError if the markers are missing."""
    start, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no table markers: put {TABLE_BEGIN!r} and {TABLE_END!r} where it goes")
    return readme[:start] + table + readme[end + len(TABLE_END):]


# ---------------------------------------------------------------- writing and checking

def generated(root=ROOT):
    """{path relative to root: text} of everything the command writes."""
    nbformat = _require("nbformat")
    files = {os.path.join("notebooks", f"{name}.ipynb"): nbformat.writes(chapter_notebook(name, root)) + "\n"
             for name in chapters(root)}
    readme = open(os.path.join(root, "README.md"), encoding="utf-8").read()
    files["README.md"] = readme_with_table(readme, readme_table(root))
    return files


def drift(root=ROOT):
    """What differs between the committed notebooks (and README table) and what the command
    would write now, one line each; [] when all is in sync."""
    nbformat = _require("nbformat")
    problems = []
    for path, text in generated(root).items():
        full = os.path.join(root, path)
        if not os.path.exists(full):
            problems.append(f"{path} is missing")
        elif path == "README.md":
            if open(full, encoding="utf-8").read() != text:
                problems.append("README.md: the notebooks' table differs")
        else:
            problems += _cell_drift(path, nbformat.read(full, as_version=4), nbformat.reads(text, as_version=4))
    expected = {os.path.join("notebooks", f"{name}.ipynb") for name in chapters(root)}
    for path in sorted(glob.glob(os.path.join(root, "notebooks", "*.ipynb"))):
        if os.path.relpath(path, root) not in expected:
            problems.append(f"{os.path.relpath(path, root)} has no chapter any more")
    return problems


def _cell_drift(path, committed, wanted):
    have, want = cells(committed), cells(wanted)
    if any(cell.get("outputs") or cell.get("execution_count") for cell in committed["cells"]):
        return [f"{path} holds outputs (notebooks are committed without them)"]
    for i, (a, b) in enumerate(zip(have, want)):
        if a != b:
            return [f"{path}: cell {i} differs from its chapter ({a[0]}: {_first_line(a[1])!r} instead of "
                    f"{b[0]}: {_first_line(b[1])!r})"]
    if len(have) != len(want):
        return [f"{path}: {len(have)} cells instead of {len(want)}"]
    return []


def _first_line(text):
    return text.strip().splitlines()[0][:60] if text.strip() else ""


def write(root=ROOT):
    """Write every notebook and the README's table; returns the paths whose text changed."""
    changed = []
    for path, text in generated(root).items():
        full = os.path.join(root, path)
        if os.path.exists(full) and open(full, encoding="utf-8").read() == text:
            continue
        atomic_write(full, lambda f, text=text: f.write(text.encode("utf-8")))
        changed.append(path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list what differs from the chapters, exit 1 if anything does")
    parser.add_argument("--root", default=ROOT, help="the repository's checkout (its chapters/, notebooks/, README.md)")
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.join(args.root, "chapters")):
        parser.error(f"--root {args.root}: no chapters/ folder there (run it in a checkout of the repository)")
    if args.check:
        problems = drift(args.root)
        for problem in problems:
            print(problem)
        print(f"notebooks out of date: run {COMMAND}" if problems else "notebooks in sync with the chapters")
        return 1 if problems else 0
    changed = write(args.root)
    print("\n".join(f"wrote {path}" for path in changed) or "nothing to write: the notebooks are in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
