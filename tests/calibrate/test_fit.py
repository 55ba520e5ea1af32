"""The fit on the recorded vLLM 0.26.0 engines (docs/validation/logs, one H100): from deliberately wrong constants it
recovers constants that keep every row of docs/validation.md within its current error."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tests.calibrate.conftest import MODELS
from vlmctl.calibrate.fit import Target, compare, fit, markdown
from vlmctl.engines.vllm import profile

ENGINE = profile("0.26.0")
TARGET = Target("h100-80gb", lambda cfg: MODELS[cfg["model"]])
#: Every constant the recorded engines measure, set far off.
WRONG = {name: replace(cal, weight_overhead_gib=1.5, non_torch_gib=1.0, cuda_context_gib=2.0, lm_activation_factor=2.5,
                       sampler_bytes_per_logit=20.0 if name == "v1" else 0.0, cudagraph_gib=2.0 if name == "v1" else 0.0,
                       vit_factor=3.0 if name == "v1" else cal.vit_factor)
         for name, cal in ENGINE.calibrations.items()}


def test_the_table_has_every_engine():
    from tests.calibrate.conftest import validation_rows

    assert len(validation_rows()) == 20


def test_wrong_constants_are_far_off(recorded):
    rows, fit_on, _ = recorded
    before = compare(rows, ENGINE, TARGET, WRONG, fit_on)
    assert max(abs(r["kv_tokens_err_pct"] or 0) for r in before) > 20


def test_fit_from_wrong_constants_keeps_every_row_within_its_current_error(recorded):
    rows, fit_on, table = recorded
    fitted = fit(rows, ENGINE, TARGET, fit_on, base=WRONG)
    v1, v2 = fitted.calibrations["v1"], fitted.calibrations["v2"]
    # the values docs/validation.md publishes (the LM factor moved once the LM buffers were split by TP runs)
    assert (v1.weight_overhead_gib, v1.non_torch_gib, v1.cuda_context_gib) == (0.18, 0.23, 0.52)
    assert v1.lm_activation_factor == pytest.approx(1.091, abs=0.02) == v2.lm_activation_factor
    assert v1.vit_factor == pytest.approx(1.02, abs=0.01) and v1.cudagraph_gib == 0.46
    assert v1.sampler_bytes_per_logit == pytest.approx(7.69, abs=0.05)
    assert v2.sampler_bytes_per_logit == 0.0 and v2.cudagraph_gib == 0.0  # the V2 profile has neither (source)
    assert fitted.used["vit_factor (v1)"] == ["A2_v1_7b_bf16_eager_u90_default_worstvideo",
                                               "B2_v1_3b_bf16_eager_u50_default"]
    records = compare(rows, ENGINE, TARGET, fitted.calibrations, fit_on)
    assert len(records) == 20
    print(markdown(records))
    for r in records:
        doc = table[r["name"]]
        assert f"{r['verdict_measured']}/{r['verdict_predicted']}" == doc["verdict"], r["name"]
        if doc["err"] is not None:
            assert abs(r["kv_tokens_err_pct"]) <= abs(doc["err"]) + 0.02, (r["name"], r["kv_tokens_err_pct"], doc)


def test_fit_does_not_depend_on_where_it_starts(recorded):
    rows, fit_on, _ = recorded
    a = fit(rows, ENGINE, TARGET, fit_on, base=WRONG).calibrations
    b = fit(rows, ENGINE, TARGET, fit_on).calibrations
    assert {k: replace(v, source="") for k, v in a.items() if k == "v1"} == \
           {k: replace(v, source="") for k, v in b.items() if k == "v1"}


def test_held_out_error_is_reported_on_runs_not_fitted(recorded):
    rows, fit_on, _ = recorded
    records = compare(rows, ENGINE, TARGET, fit(rows, ENGINE, TARGET, fit_on).calibrations, fit_on)
    held = [r for r in records if r["split"] == "held out" and r["kv_tokens_err_pct"] is not None]
    assert len(held) == 11 and max(abs(r["kv_tokens_err_pct"]) for r in held) <= 5.2
