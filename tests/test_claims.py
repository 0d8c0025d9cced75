"""Claims: the verdict of a value against a criterion, their records, and chapters' claims on small saved results."""
import math

import numpy as np
import pytest
from test_chapters import load_chapter

from mnist1d_np import claims
from mnist1d_np.claims import Claim


@pytest.mark.parametrize("compare, below, at, above", [(">", claims.FAILS, claims.FAILS, claims.HOLDS),
                                                       (">=", claims.FAILS, claims.HOLDS, claims.HOLDS),
                                                       ("<", claims.HOLDS, claims.FAILS, claims.FAILS),
                                                       ("<=", claims.HOLDS, claims.HOLDS, claims.FAILS)])
def test_judge_compares_the_value_with_the_threshold(compare, below, at, above):
    assert [claims.judge(v, compare, 2.0) for v in (1.5, 2.0, 2.5)] == [below, at, above]


def test_a_value_not_measured_is_judged_so():
    assert claims.judge(None, ">", 0) == claims.judge(math.nan, "<", 0) == claims.NOT_MEASURED


def test_a_claim_with_an_unknown_comparison_is_refused():
    with pytest.raises(ValueError, match=r"compare must be one of .*'=='"):
        Claim("x", "Table 1", "q", lambda r: 1.0, "==", 1)


def test_evaluate_records_the_value_the_criterion_and_the_verdict():
    claim = Claim("b beats a by 5", "Table 9", "b minus a (points)", lambda r: r["b"] - r["a"], ">", 5,
                  paper=7, reading="'beats' as more than 5")
    [record] = claims.evaluate([claim], {"a": 60, "b": np.float32(63.5)})
    assert record == {"statement": "b beats a by 5", "source": "Table 9", "quantity": "b minus a (points)",
                      "value": 3.5, "paper": 7, "reading": "'beats' as more than 5",
                      "criterion": {"compare": ">", "threshold": 5}, "verdict": claims.FAILS}
    assert type(record["value"]) is float  # JSON-able, whatever the chapter computed it with


def test_number_text():
    assert [claims.number_text(v) for v in (None, "all", 13.8, 0.00431, 26.0, 12345.6)] == \
        ["—", "all", "13.8", "0.00431", "26", "12346"]


# ---------------------------------------------------------------- chapters' claims on small saved results

def judged(chapter, results):
    """{statement: (value, verdict)} of a chapter's CLAIMS on `results`."""
    return {r["statement"]: (r["value"], r["verdict"]) for r in claims.evaluate(load_chapter(chapter).CLAIMS, results)}


def test_chapter_06_claims_read_the_saved_peaks():
    rows = lambda errors, widths, train: [{"width": w, "test_error": e, "train_error": t}
                                          for w, e, t in zip(widths, errors, train)]
    curves = {"MLP, noisy": rows([50, 45, 52, 40], [2, 4, 8, 16], [30, 10, 0, 0]),
              "MLP, clean": rows([50, 45, 45.5, 44], [2, 4, 8, 16], [20, 5, 0, 0])}
    ch = load_chapter("06_double_descent")
    results = {"curves": {"main": curves}, "peaks": {"main": {k: ch.find_peak(v) for k, v in curves.items()}}}
    got = judged("06_double_descent", results)
    assert got["with 15 % label noise, the MLP's test error peaks"] == (7.0, claims.HOLDS)       # 52 - 45
    assert got["past the peak, the noisy MLP's test error falls again"] == (12.0, claims.HOLDS)  # 52 - 40
    assert got["the noisy MLP's peak lies near the interpolation threshold"] == (1.0, claims.HOLDS)  # both at 8
    assert got["without label noise, the MLP shows no peak"] == (0.5, claims.HOLDS)
    assert got["with 15 % label noise, the CNN's test error peaks too"] == (None, claims.NOT_MEASURED)  # not run


def test_chapter_08_claims_read_the_gap_at_each_size_and_nothing_else():
    results = {"final": {"pooling_gap": {"1000": 12.5, "5000": 3.0, "50000": -0.4}},
               "late": {"pooling_gap": {"1000": 11.0, "50000": 2.5}}}
    assert list(judged("08_pooling", results).values()) == [
        (12.5, claims.HOLDS), (-0.4, claims.HOLDS), (-0.4, claims.HOLDS), (2.5, claims.FAILS)]


def test_chapter_03_claims_read_the_rounds_from_90_percent_and_the_panels():
    sparsities = [0.0, 0.5, 0.9, 0.96, 0.98, 1.0]
    search = lambda accs: [[{"sparsity": s, "final_test_acc": a} for s, a in zip(sparsities, trial)] for trial in accs]
    panel = lambda *accs: [{"final_test_acc": a} for a in accs]
    results = {"search": {"lottery": search([[0.7, 0.72, 0.75, 0.71, 0.69, 0.1], [0.7, 0.72, 0.73, 0.73, 0.69, 0.1]]),
                          "random": search([[0.7, 0.7, 0.70, 0.60, 0.50, 0.1], [0.7, 0.7, 0.72, 0.62, 0.50, 0.1]])},
               "ticket_round": 2,
               "panels": {v: {"dense": panel(0.6, 0.6), "lottery": panel(0.65, 0.63), "random": panel(0.6, 0.62)}
                          for v in ("new data", "flipped", "shuffled")},
               "adjacency": {"lottery": [{"2": 0.02, "3": 0.004}] * 2, "random": [{"2": 0.01, "3": 0.004}] * 2}}
    got = judged("03_lottery_tickets", results)
    # at 90 %: 74 vs 71, at 96 %: 72 vs 61, at 98 %: 69 vs 50 -> the smallest lead is 3 points
    assert got["lottery tickets beat random tickets at every round from 90 % sparsity"][0] == pytest.approx(3.0)
    assert got["at the ticket round (92 %) the lottery ticket beats the random one by more than 5 points"][1] \
        == claims.FAILS
    # beyond 95 %: 72 > 70 (dense) at 96 %, 69 < 70 at 98 %: half of the rounds, not every one
    assert got["beyond 95 % sparsity lottery tickets stay above the dense network"] == (0.5, claims.FAILS)
    assert got["on new data (seed 43) the 92 % ticket beats the dense network"][0] == pytest.approx(4.0)
    assert got["the ticket's edge over a random ticket is lost when the positions are shuffled"][0] == \
        pytest.approx(3.0)
    assert got["lottery masks keep more runs of 2 neighbouring inputs than random masks"] == (2.0, claims.HOLDS)
    assert got["lottery masks keep more runs of 3 neighbouring inputs than random masks"] == (1.0, claims.FAILS)
