"""The README's results table, and the multi-seed claims report, generated from results JSON files.

    python -m mnist1d_np.report results/            # Markdown rows of every full run
    python -m mnist1d_np.report results/ --quick    # include --quick runs (marked)
    python -m mnist1d_np.report --claims OUT/       # OUT/REPRODUCTION.md and .json from OUT/seed-S/NN_name/

Each chapter saves its *quantity | paper | this run* rows in its
`results.json` (experiment.Run.save_results). This command prints them as one
Markdown table with the runtime, the date and the machine of the run that
produced them, so a README row can always be traced to a run, never typed.
"""
import argparse
import json
import math
import os
import re
import sys

from . import claims as claims_module
from .fileio import atomic_write, read_json, write_json

HEADER = ("| chapter: quantity | paper | this run | runtime | date | machine |\n"
          "|---|---|---|---|---|---|")


def find_results(folder):
    """Paths of every chapter's results.json under folder (results/NN_name/results.json), sorted."""
    if not os.path.isdir(folder):
        raise ValueError(f"report: {folder!r} is not a folder")
    found = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name, "results.json")
        if os.path.isfile(path):
            found.append(path)
    return found


def load_record(path):
    """A chapter's record, or None (with a warning) if it is unreadable or has no table."""
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        print(f"warning: skipping {path}: {err}", file=sys.stderr)
        return None
    if not isinstance(record, dict) or not record.get("table"):
        print(f"warning: skipping {path}: no table (made by an older version?)", file=sys.stderr)
        return None
    return record


def machine_label(machine):
    """A short description of the machine, e.g. 'x86_64, 2 CPUs, Linux'."""
    system = machine.get("platform", "?").split("-")[0]
    return f"{machine.get('processor', '?')}, {machine.get('cpu_count', '?')} CPUs, {system}"


def runtime_label(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def runtime_seconds(record):
    """The wall time the results took: every invocation of the run (resumes, and
    reruns that redrew figures from saved runs), or the last one in records
    made before that was kept."""
    return record.get("total_wall_time_s", record["wall_time_s"])


def markdown_rows(record):
    """One Markdown row per table row of a chapter's record."""
    chapter = record["chapter"].split("_")[0]
    mark = " (--quick)" if record.get("quick") else ""
    rows = []
    for quantity, paper, ours in record["table"]:
        cells = (f"{chapter}: {quantity}{mark}", paper, ours, runtime_label(runtime_seconds(record)),
                 record.get("date", "?"), machine_label(record.get("machine", {})))
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return rows


def report(folder, include_quick=False):
    """The Markdown table (header and rows) of every chapter's run in folder."""
    lines = [HEADER]
    for path in find_results(folder):
        record = load_record(path)
        if record is not None and (include_quick or not record.get("quick")):
            lines += markdown_rows(record)
    return "\n".join(lines)


# ---------------------------------------------------------------- the claims over seeds (reproduce)

def seed_folders(out):
    """{seed: OUT/seed-S} of every seed folder in OUT, by seed."""
    if not os.path.isdir(out):
        raise ValueError(f"report: {out!r} is not a folder")
    found = {int(m.group(1)): os.path.join(out, name) for name in os.listdir(out)
             if (m := re.fullmatch(r"seed-(\d+)", name)) and os.path.isdir(os.path.join(out, name))}
    return dict(sorted(found.items()))


def code_label(record):
    """The code that made a record: 'version, commit abcdef123456' (+ 'with uncommitted changes')."""
    code = record.get("code") or {"version": record.get("mnist1d_np_version")}
    label = f"version {code.get('version')}"
    if code.get("commit"):
        label += f", commit {code['commit'][:12]}"
    if code.get("uncommitted_changes"):
        label += " with uncommitted changes"
    return label


def mean_sd(values):
    """(mean, population SD) of the values, or (None, None) for none."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def collect(out):
    """Every chapter's claims over the seeds, re-judged from the saved values and criteria,
    its times per seed, and the code that made each result."""
    times = {}
    if os.path.isfile(os.path.join(out, "reproduce_times.json")):
        times = read_json(os.path.join(out, "reproduce_times.json"))
    chapters = {}
    for seed, folder in seed_folders(out).items():
        for path in find_results(folder):
            record = load_json(path)
            if record is None:
                continue
            name = record["chapter"]
            entry = chapters.setdefault(name, {"seeds": {}, "claims": {}})
            ledger = times.get("runs", {}).get(f"seed-{seed}/{name}", {})
            entry["seeds"][seed] = {"wall_s": runtime_seconds(record), "cpu_s": ledger.get("cpu_s"),
                                    "quick": bool(record.get("quick")), "date": record.get("date"),
                                    "ablations": bool(record.get("arguments", {}).get("ablations")),
                                    "code": code_label(record)}
            for claim in record.get("claims", []):
                merged = entry["claims"].setdefault(claim["statement"], {
                    **{k: claim[k] for k in ("statement", "source", "quantity", "paper", "criterion", "reading")},
                    "values": {}, "verdicts": {}})
                merged["values"][seed] = claim["value"]
                merged["verdicts"][seed] = claims_module.judge(claim["value"], claim["criterion"]["compare"],
                                                               claim["criterion"]["threshold"])
    for entry in chapters.values():
        for claim in entry["claims"].values():
            measured = [v for v in claim["values"].values() if v is not None]
            claim["mean"], claim["sd"] = mean_sd(measured)
            claim["holds"] = sum(v == claims_module.HOLDS for v in claim["verdicts"].values())
            claim["measured"] = len(measured)
            claim["summary"] = (f"holds in {claim['holds']} of {claim['measured']} seed"
                                f"{'s' if claim['measured'] != 1 else ''}" if measured else "not measured")
        entry["claims"] = list(entry["claims"].values())
    codes = sorted({s["code"] for e in chapters.values() for s in e["seeds"].values()})
    return {"chapters": dict(sorted(chapters.items())), "codes": codes, "wall_s": times.get("wall_s"),
            "seeds": sorted({seed for e in chapters.values() for seed in e["seeds"]})}


def load_json(path):
    try:
        return read_json(path)
    except (OSError, ValueError) as err:
        print(f"warning: skipping {path}: {err}", file=sys.stderr)
        return None


def claims_markdown(summary, figures=()):
    """REPRODUCTION.md: the claims table over seeds, the times, the code, the figures."""
    num = claims_module.number_text
    quick = any(s["quick"] for e in summary["chapters"].values() for s in e["seeds"].values())
    dates = sorted({s["date"] for e in summary["chapters"].values() for s in e["seeds"].values() if s["date"]})
    lines = ["# Does the paper hold? Its claims over seeds", "",
             f"Seeds {', '.join(map(str, summary['seeds']))}; runs dated {', '.join(dates) or '?'}"
             + ("; **--quick runs**: small settings, not the paper's" if quick else "") + ".", "",
             "| chapter | claim | source | quantity | needs | paper | each seed | mean ± SD | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in summary["chapters"].items():
        for c in entry["claims"]:
            each = " / ".join(f"{num(c['values'][s])}" for s in sorted(c["values"]))
            spread = ("—" if c["mean"] is None else num(c["mean"]) if c["measured"] == 1  # no SD of one seed
                      else f"{num(c['mean'])} ± {num(c['sd'])}")
            seeds = ", ".join(map(str, sorted(c["values"])))
            cells = (name[:2], c["statement"], c["source"], c["quantity"], claims_module.criterion_text(c),
                     num(c["paper"]), f"{each} (seeds {seeds})", spread, c["summary"])
            lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in cells) + " |")
    readings = [(name[:2], c["statement"], c["reading"]) for name, e in summary["chapters"].items()
                for c in e["claims"] if c["reading"]]
    if readings:
        lines += ["", "Readings chosen where the paper's words leave room:", ""]
        lines += [f"- {number}, {statement}: {reading}." for number, statement, reading in readings]
    lines += ["", "## What it cost", "", "| chapter | seeds | wall time per seed | CPU time per seed |", "|---|---|---|---|"]
    for name, entry in summary["chapters"].items():
        seeds = sorted(entry["seeds"])
        wall = " / ".join(runtime_label(entry["seeds"][s]["wall_s"]) for s in seeds)
        cpu = " / ".join(runtime_label(entry["seeds"][s]["cpu_s"]) if entry["seeds"][s]["cpu_s"] is not None
                         else "—" for s in seeds)
        lines.append(f"| {name} | {', '.join(map(str, seeds))} | {wall} | {cpu} |")
    if summary["wall_s"] is not None:
        lines += ["", f"The reproduction's wall time, every invocation of `reproduce`: "
                      f"{runtime_label(summary['wall_s'])}."]
    lines += ["", "## The code that made the results", ""]
    if len(summary["codes"]) > 1:
        lines += ["**Warning: these results were made by different code:**", ""]
        for code in summary["codes"]:
            made = [f"{name[:2]} seed {s}" for name, e in summary["chapters"].items()
                    for s, info in sorted(e["seeds"].items()) if info["code"] == code]
            lines.append(f"- {code}: {', '.join(made)}")
    else:
        lines += [f"Every result: {summary['codes'][0] if summary['codes'] else '?'}."]
    if figures:
        lines += ["", "## Figures: each chapter's main curve, the seeds overlaid", ""]
        lines += [f"![{name}]({os.path.basename(os.path.dirname(path))}/{os.path.basename(path)})"
                  for name, path in figures.items()]
    return "\n".join(lines) + "\n"


def plot_seeds(out, summary):
    """OUT/figures/NN_name.png per chapter with a saved main curve: each seed's curves overlaid."""
    from . import plotting
    figures = {}
    for name in summary["chapters"]:
        curves = {seed: load_json(os.path.join(folder, name, "results.json"))
                  for seed, folder in seed_folders(out).items()
                  if os.path.isfile(os.path.join(folder, name, "results.json"))}
        curves = {seed: record["curve"] for seed, record in curves.items() if record and record.get("curve")}
        if not curves:
            continue
        fig, ax = plotting.figure(1, 1, width=5, height=3.4)
        first = next(iter(curves.values()))
        labels = list(first["series"])
        for seed, curve in curves.items():
            for color, label in enumerate(labels):
                if label in curve["series"]:
                    x, y = curve["series"][label]
                    ax.plot(x, y, color=f"C{color}", lw=1, alpha=0.8,
                            label=label if seed == next(iter(curves)) else None)
        ax.set(title=f"{name}: {first['title']} ({len(curves)} seed{'s' if len(curves) > 1 else ''})",
               xlabel=first["xlabel"], ylabel=first["ylabel"], xscale=first.get("xscale", "linear"))
        ax.title.set_fontsize(8)
        ax.legend(fontsize=7)
        path = os.path.join(out, "figures", f"{name}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, lambda f, fig=fig: plotting.save_figure(fig, f, format="png"))
        figures[name] = path
    return figures


def write_claims_report(out):
    """Write OUT/REPRODUCTION.md, OUT/reproduction.json and OUT/figures/ from OUT/seed-S/NN_name/results.json."""
    summary = collect(out)
    figures = plot_seeds(out, summary)
    markdown = os.path.join(out, "REPRODUCTION.md")
    atomic_write(markdown, lambda f: f.write(claims_markdown(summary, figures).encode()))
    write_json(os.path.join(out, "reproduction.json"), {**summary, "figures": figures})
    return {"markdown": markdown, "json": os.path.join(out, "reproduction.json"), "figures": figures}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mnist1d_np.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="results", help="the chapters' output folder")
    parser.add_argument("--quick", action="store_true", help="include --quick runs, marked as such")
    parser.add_argument("--claims", action="store_true",
                        help="folder is a reproduction's OUT (python -m mnist1d_np.reproduce): write its "
                             "REPRODUCTION.md, reproduction.json and figures again from the saved results")
    args = parser.parse_args(argv)
    try:
        if args.claims:
            paths = write_claims_report(args.folder)
            print(open(paths["markdown"]).read())
            print(f"saved {paths['markdown']}", file=sys.stderr)
        else:
            print(report(args.folder, args.quick))
    except ValueError as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
