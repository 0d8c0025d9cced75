"""The library's layers: every module imports only from layers beneath it.

The layers, bottom to top, as the README's library table draws them. A new
module must be placed here, or this test fails: that is the point.
"""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mnist1d_np")

LAYERS = [
    ("the notebook kernel", {"kernel"}),
    ("files, threads, figure style", {"fileio", "blas", "plotting"}),
    ("progress line", {"progress"}),
    ("resumable loops", {"resumable"}),
    ("file formats and downloads", {"idx", "download"}),
    ("data", {"data", "augment", "images"}),
    ("engine", {"tensor"}),
    ("engine: ops", {"ops"}),
    ("engine: checks", {"gradcheck"}),
    ("fast numerics", {"fastmath"}),
    ("kernel-backed ops", {"conv1d", "gru", "learned_activation", "sparse_linear"}),
    ("kernel-backed ops with one more axis", {"conv2d"}),
    ("layers and models", {"nn"}),
    ("pruned layers", {"pruning"}),
    ("learning", {"optim", "contrastive"}),
    ("training", {"train"}),
    ("analysis: neighbours and probes", {"probes"}),
    ("analysis: embeddings", {"tsne"}),
    ("running many", {"runmany"}),
    ("claims", {"claims"}),
    ("chapter scaffolding", {"experiment"}),
    ("reports", {"report"}),
    ("the whole paper over seeds", {"reproduce"}),
    ("the human baseline", {"quiz"}),
    ("every chapter as a notebook", {"notebooks"}),
]
LAYER_OF = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}


def package_modules():
    return sorted(name[:-3] for name in os.listdir(PACKAGE) if name.endswith(".py") and name != "__init__.py")


def imported_modules(module):
    """The package's modules that `module` imports, anywhere in its body (lazy imports too).
    `from . import __version__` names the package itself and counts as nothing."""
    tree = ast.parse(open(os.path.join(PACKAGE, module + ".py")).read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnist1d_np"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("mnist1d_np.")}
    return found - {"__version__"}


def test_every_module_has_a_layer():
    assert [m for m in package_modules() if m not in LAYER_OF] == []


@pytest.mark.parametrize("module", package_modules())
def test_imports_only_from_layers_beneath(module):
    upward = sorted(m for m in imported_modules(module) if LAYER_OF.get(m, len(LAYERS)) >= LAYER_OF[module])
    assert upward == [], f"{module} (layer {LAYERS[LAYER_OF[module]][0]!r}) imports {upward}"


def test_the_check_sees_imports(tmp_path, monkeypatch):
    """A planted upward import and a cycle are both reported."""
    monkeypatch.setattr(__import__(__name__), "PACKAGE", str(tmp_path))
    (tmp_path / "tensor.py").write_text("from . import ops\n")
    (tmp_path / "ops.py").write_text("from .tensor import Tensor\n")
    assert imported_modules("tensor") == {"ops"} and imported_modules("ops") == {"tensor"}
    assert LAYER_OF["ops"] >= LAYER_OF["tensor"]  # so tensor -> ops is flagged as upward
