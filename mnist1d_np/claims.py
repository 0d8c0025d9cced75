"""The paper's findings as checked claims: a statement, the number that tests it, and a criterion.

    CLAIMS = [claims.Claim("the CNN beats the MLP by more than 15 points", "Table 1",
                           "CNN minus MLP, early-stopped test acc. (points)",
                           value=lambda results: ..., compare=">", threshold=15, paper=26)]
    records = claims.evaluate(CLAIMS, saved_results)   # what results.json keeps under "claims"

A chapter declares its claims next to its experiment. `value` reads the
results the chapter saves (results.json's "results", as JSON gives them
back), so a claim never retrains anything, and it returns None when this
run did not measure the quantity (a --quick run without the rounds the
claim is about). The record keeps the criterion as data, a comparison and
a threshold, so that `judge` can give the verdict again from a saved file
without importing the chapter: that is how `python -m mnist1d_np.report
--claims` judges several seeds' results.

`reading` says which reading of the paper a criterion chose where the
paper's words leave room ("the edge is lost": under 2 points).
"""
import dataclasses
import math
import operator
from typing import Callable, Optional, Union

COMPARISONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured"


@dataclasses.dataclass(frozen=True)
class Claim:
    statement: str                      # the finding, in a few words
    source: str                         # where the paper shows it ("Table 1", "Figure 4 a")
    quantity: str                       # the number that tests it, with its unit
    value: Callable[[dict], Optional[float]]  # saved results -> that number, or None (not measured)
    compare: str                        # one of COMPARISONS: value <compare> threshold supports the claim
    threshold: float
    paper: Union[float, str, None] = None  # the paper's value of the quantity (a text where it gives none)
    reading: str = ""                   # the reading chosen where the paper is vague

    def __post_init__(self):
        if self.compare not in COMPARISONS:
            raise ValueError(f"Claim {self.statement!r}: compare must be one of {sorted(COMPARISONS)}, "
                             f"not {self.compare!r}")


def judge(value, compare, threshold):
    """HOLDS if `value compare threshold`, FAILS if not, NOT_MEASURED for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_MEASURED
    return HOLDS if COMPARISONS[compare](value, threshold) else FAILS


def evaluate(claims, results):
    """One record per claim (JSON-able): statement, source, quantity, value, paper, criterion, verdict.
    results: the chapter's saved results (as read back from results.json)."""
    records = []
    for claim in claims:
        value = claim.value(results)
        value = None if value is None else float(value)
        records.append({"statement": claim.statement, "source": claim.source, "quantity": claim.quantity,
                        "value": value, "paper": claim.paper, "reading": claim.reading,
                        "criterion": {"compare": claim.compare, "threshold": claim.threshold},
                        "verdict": judge(value, claim.compare, claim.threshold)})
    return records


def criterion_text(record):
    """'> 15' of a record's criterion."""
    criterion = record["criterion"]
    return f"{criterion['compare']} {criterion['threshold']:g}"


def number_text(value):
    """A value as the claims tables show it: 3 significant digits ('—' when not measured)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def print_claims(records, stream=None):
    """The claims after a chapter's table: verdict, statement, this run's value against the criterion."""
    if not records:
        return
    print("\nThe paper's claims, judged on this run:", file=stream)
    width = max(len(record["verdict"]) for record in records)
    for record in records:
        print(f"  {record['verdict']:<{width}}  {record['statement']} ({record['source']}): "
              f"{number_text(record['value'])} (needs {criterion_text(record)}; "
              f"paper {number_text(record['paper'])})", file=stream)
