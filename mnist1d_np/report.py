"""The README's results table, generated from the chapters' results JSON files.

    python -m mnist1d_np.report results/            # Markdown rows of every full run
    python -m mnist1d_np.report results/ --quick    # include --quick runs (marked)

Each chapter saves its *quantity | paper | this run* rows in its
`results.json` (experiment.Run.save_results). This command prints them as one
Markdown table with the runtime, the date and the machine of the run that
produced them, so a README row can always be traced to a run, never typed.
"""
import argparse
import json
import os
import sys

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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mnist1d_np.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="results", help="the chapters' output folder")
    parser.add_argument("--quick", action="store_true", help="include --quick runs, marked as such")
    args = parser.parse_args(argv)
    try:
        print(report(args.folder, args.quick))
    except ValueError as err:
        parser.error(str(err))


if __name__ == "__main__":
    main()
