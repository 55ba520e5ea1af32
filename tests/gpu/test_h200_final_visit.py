"""The last H200 visit (docs/validation.md § 10), re-checked on the CPU from the files it brought back."""
from __future__ import annotations

import json
import re
from pathlib import Path

from vlmctl.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "docs" / "validation" / "families" / "serve_qwen3_vl_8b"
CALIBRATE = ROOT / "docs" / "validation" / "calibrate_h200"


def _logged_kv_tokens(log: Path) -> int:
    match = re.search(r"GPU KV cache size: ([\d,]+) tokens", log.read_text())
    assert match, f"no KV size in {log}"
    return int(match.group(1).replace(",", ""))


def test_qwen3_vl_8b_plan_predicts_the_kv_tokens_vllm_logged():
    measured = _logged_kv_tokens(SERVE / "engine_excerpt.log")
    recorded = json.loads((SERVE / "plan_q3vl8b.json").read_text())["plan"]
    replanned = make_plan("Qwen/Qwen3-VL-8B-Instruct", gpus="h200:1", vllm_version="0.26.0", enforce_eager=True,
                          max_model_len=16384, limit_mm_per_prompt={"image": 2, "video": 1}).plan
    assert replanned.kv_cache_tokens == recorded["kv_cache_tokens"]
    assert abs(replanned.kv_cache_tokens - measured) / measured < 0.01, (replanned.kv_cache_tokens, measured)


def test_the_image_and_the_video_were_answered():
    api = json.loads((SERVE / "api.json").read_text())
    assert api["image"]["status"] == 200 and api["image"]["prompt_tokens"] > 0
    assert api["worst_video"]["status"] == 200 and api["worst_video"]["prompt_tokens"] > api["image"]["prompt_tokens"]


def test_the_fit_on_the_h200_logs_gives_the_file_calibrate_wrote_there():
    """The engines' own logs, fitted here from the same wrong start, give the constants the GPU run wrote, and those
    reproduce every run within 0.1 %."""
    from dataclasses import replace

    from vlmctl.calibrate.fit import Target, compare, fit
    from vlmctl.calibrate.logs import logged_config, parse_log
    from vlmctl.engines.vllm import profile

    engine = profile("0.26.0")
    written = json.loads((CALIBRATE / "calibration.json").read_text())
    wrong = json.loads((CALIBRATE / "wrong.json").read_text())["runners"]
    base = {name: replace(cal, **wrong[name]["constants"]) for name, cal in engine.calibrations.items()}
    rows = []
    for name in written["engines"]:
        text = (CALIBRATE / "logs" / f"{name}.log").read_text()
        rows.append(parse_log(text) | {"name": name, "config": logged_config(text)})
        assert rows[-1]["kv_tokens"] == _logged_kv_tokens(CALIBRATE / "logs" / f"{name}.log")
    target = Target("h200", lambda cfg: "Qwen/Qwen2.5-VL-7B-Instruct")
    names = {r["name"] for r in rows}
    fitted = fit(rows, engine, target, names, base=base).calibrations
    for runner, entry in written["runners"].items():
        for constant, value in entry["constants"].items():
            assert getattr(fitted[runner], constant) == value, (runner, constant)
    assert max(abs(r["kv_tokens_err_pct"]) for r in compare(rows, engine, target, base, names)) > 20
    assert max(abs(r["kv_tokens_err_pct"]) for r in compare(rows, engine, target, fitted, names)) < 0.1
