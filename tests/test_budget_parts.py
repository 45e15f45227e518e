"""An accuracy budget of several figures that must all hold (issue 32's check: confident agreement ≥ 0.99
and mean cosine ≥ 0.99): parsing and its refusals, the judgement on crafted evaluations, and the loop on
the digits CNN going on past a first round that meets one part and misses the other."""

from __future__ import annotations

import json

import pytest

from app.accuracy.budget import AccuracyBudget, budget_rounds_text, select_rounds
from app.errors import BadInput
from tests.conftest import DIGITS_ARGS
from tests.test_budget import _scores


def test_several_parts_parse_round_trip_and_are_refused_in_one_line_naming_the_bad_part():
    b = AccuracyBudget.parse("confident-agreement=0.99,cosine=0.99")
    assert [(p.metric, p.value) for p in b.parts] == [("confident-agreement", 0.99), ("cosine", 0.99)]
    assert str(b) == "confident-agreement=0.99,cosine=0.99" and AccuracyBudget.parse(str(b)) == b
    assert (b.metric, b.value) == ("confident-agreement", 0.99)        # the first part, where one is needed
    for text in ("confident-agreement=0.99 , cosine=0.99", "confident-agreement=99%;cosine=0.99",
                 " confident-agreement = 0.99 ;cosine=99% "):
        assert AccuracyBudget.parse(text) == b, text
    three = AccuracyBudget.parse("top1-drop=1,kl=1e-2,cosine=0.995")
    assert str(three) == "top1-drop=1%,kl=0.01,cosine=0.995" and AccuracyBudget.parse(str(three)) == three
    fine = AccuracyBudget.parse("kl=10,cosine=0.99999999")            # str keeps the digits (not cosine=1)
    assert str(fine) == "kl=10,cosine=0.99999999" and AccuracyBudget.parse(str(fine)) == fine
    one = AccuracyBudget.parse("cosine=0.99")                          # one part: as before
    assert len(one.parts) == 1 and str(one) == "cosine=0.99" and (one.metric, one.value) == ("cosine", 0.99)
    for text, words in (("cosine=0.99,cosine=0.98", "cosine is given twice"),
                        ("confident-agreement=0.99,kl=99%", "part 'kl=99%': a KL divergence is a positive"),
                        ("cosine=0.99,speed=3", "part 'speed=3': write cosine=0.99"),
                        ("cosine=2;kl=0.01", "part 'cosine=2': a cosine lies in (0, 1]"),
                        ("cosine=0.99,", "an empty part"), ("cosine=0.99,,kl=0.01", "an empty part")):
        with pytest.raises(BadInput) as e:
            AccuracyBudget.parse(text)
        assert words in str(e.value) and repr(text) in str(e.value) and "\n" not in str(e.value), text


def test_every_part_must_hold_and_the_closer_round_is_better():
    b = AccuracyBudget.parse("confident-agreement=0.99,cosine=0.99")
    both = _scores(confident_agreement=1.0, cosine_mean=0.995)
    agreement_only = _scores(confident_agreement=1.0, cosine_mean=0.978)    # issue 32's OpenVINO int8
    cosine_only = _scores(confident_agreement=0.98, cosine_mean=0.995)
    neither = _scores(confident_agreement=0.98, cosine_mean=0.978)
    assert b.met(both) and not b.met(agreement_only) and not b.met(cosine_only) and not b.met(neither)
    assert b.parts_met(agreement_only) == {"confident-agreement": True, "cosine": False}
    assert b.figures(agreement_only) == {"confident-agreement": 1.0, "cosine": 0.978}
    assert b.figure(agreement_only) == 1.0                             # the first part's
    # first the number of parts met
    assert b.better(both, agreement_only) and b.better(agreement_only, neither) and not b.better(neither, cosine_only)
    # the same number met: the smaller shortfall, each part in units of its own gap to 1
    # (agreement 0.98 misses 0.99 by one gap; cosine 0.978 misses 0.99 by 1.2 gaps)
    assert b.better(cosine_only, agreement_only) and not b.better(agreement_only, cosine_only)
    closer = _scores(confident_agreement=1.0, cosine_mean=0.985)
    assert b.better(closer, agreement_only) and not b.better(agreement_only, closer)
    # the margin: a shortfall closed by less than that share is noise; then the first part decides
    nearly = _scores(confident_agreement=1.0, cosine_mean=0.9785)
    assert b.better(nearly, agreement_only) and not b.better(nearly, agreement_only, margin=0.05)
    # all met: the first part's comparison (an agreement tie goes to the higher cosine)
    assert b.better(_scores(confident_agreement=1.0, cosine_mean=0.999), both)
    # KL's shortfall is over its own figure; a KL that cannot be measured is the worst, not a NaN
    kl = AccuracyBudget.parse("kl=0.01,cosine=0.99")
    assert kl.better(_scores(kl_mean=0.015, cosine_mean=0.98), _scores(kl_mean=0.03, cosine_mean=0.98))
    assert kl.better(_scores(kl_mean=5.0, cosine_mean=0.98), _scores(kl_mean=None, kl_samples=0, cosine_mean=0.98))
    # describe joins the parts; NNCF's accuracy control follows the first
    text = b.describe(agreement_only)
    assert "100.0% on 75 of 100 samples" in text and "mean cosine 0.97800" in text
    assert b.control_metric(agreement_only) == 1.0 and b.control_max_drop() == pytest.approx(0.01)
    # every part is checked against the data and the outputs
    with pytest.raises(BadInput, match="needs a classifier output"):
        AccuracyBudget.parse("cosine=0.9,kl=0.01").check_scores(_scores(confident_samples=None, kl_samples=None,
                                                                         confident_agreement=None, kl_mean=None))


def test_pack_holds_check_py_to_the_first_part_it_measures():
    from app.serving.pack import budget_of

    def held(text: str) -> dict:
        return budget_of({"precision": "int8", "accuracy_budget": {"budget": text}})

    b = held("confident-agreement=0.99,cosine=0.995")
    assert (b["metric"], b["op"], b["value"]) == ("cosine_mean", ">=", 0.995)
    assert "confident-agreement=0.99,cosine=0.995" in b["from"] and "cosine=0.995 only" in b["from"]
    b = held("kl=0.01;top1-drop=2%")
    assert (b["metric"], b["op"], b["value"]) == ("top1_drop", "<=", 0.02)
    b = held("confident-agreement=0.99,kl=0.01")                        # neither measured: the int8 warning's cosine
    assert b["metric"] == "cosine_mean" and "does not measure" in b["from"]
    assert held("cosine=0.98") == {"metric": "cosine_mean", "op": ">=", "value": 0.98, "from": "--accuracy-budget cosine=0.98"}


def test_select_rounds_keeps_the_fastest_round_meeting_every_part():
    """Three rounds: the fastest meets only the agreement, the next both; the loop returns the second."""
    b = AccuracyBudget.parse("confident-agreement=0.99,cosine=0.99")
    scores = {0: _scores(confident_agreement=1.0, cosine_mean=0.978), 1: _scores(confident_agreement=1.0,
                                                                                    cosine_mean=0.993),
              2: _scores(confident_agreement=1.0, cosine_mean=0.995)}
    rounds = [{"round": n, "stage": "first" if n == 0 else "nodes", "added": ["a"], "float_nodes": n,
               "latency_ms": ms, "speedup": 3.0 / ms, **b.figures(scores[n]), "parts_met": b.parts_met(scores[n]),
               "cosine_mean": scores[n].cosine_mean, "top1_drop": None, "met": b.met(scores[n])}
              for n, ms in ((0, 1.0), (1, 1.5), (2, 2.0))]
    choice = select_rounds(rounds, scores, b, 1.2)
    assert choice["chosen"] == 1 and choice["met"] and choice["why"][0] == "misses the budget"
    lines = budget_rounds_text({"rounds": rounds, "speed_floor": 1.2})
    assert "confident agreement 100.00%" in lines[0] and "misses cosine" in lines[0]
    assert "meets the budget" in lines[1] and "misses" not in lines[1]


def test_the_loop_goes_on_past_a_first_round_that_meets_one_part_only(cli, digits, tmp_path):
    """``kl=10`` (met by any int8) first, then a cosine no int8 round of the digits CNN reaches: the first
    part alone would stop at round 0; both must hold, so the quantizer search runs, and every round records
    both figures (JSON, manifest, console, report)."""
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8", "--data",
            digits["images"], "--out", tmp_path, "--json", "--accuracy-budget", "kl=10, cosine=0.99999999",
            "--max-float-nodes", "1", "--keep-failed")
    data = json.loads(r.out)
    assert r.code == 1 and data["status"] == "unmet", r.err
    b = data["accuracy_budget"]
    assert b["budget"] == "kl=10,cosine=0.99999999" and not b["met"]
    first = b["rounds"][0]
    assert first["parts_met"] == {"kl": True, "cosine": False} and not first["met"]
    assert first["kl"] < 10 and first["cosine"] == first["cosine_mean"] < 0.99999999
    assert len(b["rounds"]) > 1 and any(rnd.get("stage") == "quantizer" for rnd in b["rounds"])
    measured = [rnd for rnd in b["rounds"] if "latency_ms" in rnd]
    assert all({"kl", "cosine", "parts_met"} <= set(rnd) for rnd in measured)
    manifest = json.loads((tmp_path / "digits.int8.onnx.manifest.json").read_text())
    assert manifest["accuracy_budget"] == b
    assert "kl=10,cosine=0.99999999 not met" in r.err and "mean KL" in r.err and "mean cosine" in r.err
    report = cli("report", tmp_path / "digits.int8.onnx.manifest.json", "--out", tmp_path / "report.html")
    assert report.code == 0, report.err
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "KL (mean)" in html and "misses cosine" in html and "kl=10,cosine=0.99999999" in html
