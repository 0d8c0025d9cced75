"""What a chapter does differently when it runs in a Jupyter kernel (a notebook).

A kernel has no command line and no terminal, and shows what a cell
displays under the cell. So there:

- `in_kernel()` is true, and experiment.parse_args takes the flags given to
  experiment.notebook_flags (by default --quick) instead of sys.argv;
- `show_png(path)` shows a saved figure under the cell (Run.save_figure
  calls it after writing the PNG; in a script it does nothing);
- progress.Progress redraws one line in place, at most once a second
  (`is_kernel_stream` tells it that it writes to the kernel's output).

Nothing here imports IPython unless a kernel is running.
"""
import sys


def in_kernel():
    """True in a Jupyter kernel (Jupyter, JupyterLab, Colab, VS Code's notebooks and
    interactive window): they all run ipykernel's kernel application, which a script
    never imports. (A program that only starts kernels, as nbclient does, imports
    other parts of ipykernel, to find their specs: that is not a kernel.)"""
    return "ipykernel.kernelapp" in sys.modules


def is_kernel_stream(stream):
    """True when `stream` is one of the kernel's own output streams (its sys.stdout or
    sys.stderr), whose text goes to the notebook under the running cell."""
    return in_kernel() and type(stream).__module__.startswith("ipykernel")


def show_png(path):
    """Show the PNG file `path` under the running cell; nothing outside a kernel."""
    if not in_kernel():
        return
    try:
        import IPython
        from IPython.display import Image, display
    except ImportError:  # ipykernel imported without IPython: no kernel that could show it
        return
    if IPython.get_ipython() is not None:  # a running kernel's shell, not just ipykernel imported
        display(Image(filename=path))
