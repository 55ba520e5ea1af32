"""The planner's predictions next to measured vLLM runs; fit the planner's calibration constants.

Reads the parsed runs (``docs/validation/results/results_*.json``, written on the GPU machine by calibrate.py), plans
each configuration with the same settings, and prints measured vs predicted for each figure. The fit and the
comparison are `vlmctl calibrate`'s own (:mod:`vlmctl.calibrate.fit`): one implementation.

``--fit``: fit the constants from the training runs only (``TRAIN`` below), then report the error on every run with
the fitted constants, marking which runs were held out. ``--calibration FILE``: compare with a calibration file's
constants (what `vlmctl calibrate` wrote, e.g. on the GPU machine). Writes JSON to ``--out``.

    .venv/bin/python benchmarks/gpu/compare_plan.py --fit --out artifacts/calibration.json
    .venv/bin/python benchmarks/gpu/compare_plan.py --calibration calibration.json
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
from vlmctl.calibrate.fit import Target, compare as _compare, fit, markdown  # noqa: E402
from vlmctl.engines.vllm import profile  # noqa: E402

RESULTS = ROOT / "docs" / "validation" / "results"
MODELS = {"3B": "Qwen/Qwen2.5-VL-3B-Instruct", "7B": "Qwen/Qwen2.5-VL-7B-Instruct",
          "32B": "Qwen/Qwen2.5-VL-32B-Instruct", "7B-AWQ": "Qwen/Qwen2.5-VL-7B-Instruct-AWQ"}
#: Runs the constants are fitted on; every other run is held out.
TRAIN = {"A1_v2_7b_bf16_eager_u90_default_worstvideo", "A2_v1_7b_bf16_eager_u90_default_worstvideo",
         "A4_v1_7b_bf16_eager_u90_L8k_img2_px1M", "A5_v1_7b_fp16_graphs_u92_L32k_img4_vid0",
         "A6_v2_3b_bf16_eager_u50_L32k_vid0", "B2_v1_3b_bf16_eager_u50_default",
         "B3_v1_32b_bf16_eager_u95_L8k_img1_vid0", "B5_v2_32b_bf16_eager_u95_L32k"}
#: The release and GPU the runs were measured on (docs/validation.md).
ENGINE = profile("0.26.0")
TARGET = Target("h100-80gb", lambda cfg: MODELS[cfg["model"]])


def load_runs(folder: Path = RESULTS) -> list[dict]:
    """Measured runs (parsed rows) with a start verdict, in file order."""
    rows = []
    for path in sorted(folder.glob("results_*.json")):
        rows += [r for r in json.loads(path.read_text()) if r.get("verdict") in ("ready", "start_failed")
                 and r.get("weights_gib") is not None]
    return rows


def doc_errors(path: Path = ROOT / "docs" / "validation.md") -> dict[str, float | None]:
    """docs/validation.md § 1: run name → the KV-token error (%) it publishes (None where no KV cache)."""
    import re

    out = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 10 and re.match(r"[ABC]\d_", cells[0]):
            out[cells[0]] = None if cells[9] == "—" else float(cells[9])
    return out


def compare(rows: list[dict], calibrations=None) -> list[dict]:
    """One record per run: measured, predicted, relative KV-token error, verdict match (committed constants)."""
    return _compare(rows, ENGINE, TARGET, calibrations or dict(ENGINE.calibrations), TRAIN)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--fit", action="store_true", help="fit constants on TRAIN runs, evaluate with them")
    ap.add_argument("--calibration", type=Path, help="evaluate with this calibration file's constants")
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "calibration.json")
    args = ap.parse_args()
    rows = load_runs(args.results)
    report: dict = {"runs": len(rows)}
    calibrations = dict(ENGINE.calibrations)
    if args.calibration:
        from vlmctl.plan.calibration import constants_from_file, read_calibration_file

        calibrations = constants_from_file(ENGINE, read_calibration_file(args.calibration))
        report["calibration"] = str(args.calibration)
    if args.fit:
        fitted = fit(rows, ENGINE, TARGET, TRAIN)
        calibrations = fitted.calibrations
        report["fitted"] = {k: asdict(v) for k, v in calibrations.items()}
        report["fit_rows"] = fitted.used
        print(json.dumps(report["fitted"], indent=1))
    records = compare(rows, calibrations)
    report["records"] = records
    held = [r for r in records if r["split"] == "held out"]
    errs = [abs(r["kv_tokens_err_pct"]) for r in held if r["kv_tokens_err_pct"] is not None]
    report["held_out_max_abs_kv_err_pct"] = max(errs) if errs else None
    report["verdict_mismatches"] = [r["name"] for r in records if r["verdict_measured"] != r["verdict_predicted"]]
    report["worst_video_mismatches"] = [r["name"] for r in records
                                        if r["worst_video_measured"] != r["worst_video_predicted"]]
    print(markdown(records))
    print(f"\nheld-out max |KV tokens error|: {report['held_out_max_abs_kv_err_pct']} %; verdict mismatches: "
          f"{report['verdict_mismatches']}; worst-video mismatches: {report['worst_video_mismatches']}")
    published = doc_errors()
    worse = [(r["name"], r["kv_tokens_err_pct"], published[r["name"]]) for r in records
             if published.get(r["name"]) is not None and r["kv_tokens_err_pct"] is not None
             and abs(r["kv_tokens_err_pct"]) > abs(published[r["name"]]) + 0.02]
    report["rows_worse_than_published"] = worse
    print(f"rows of docs/validation.md within their published KV error: {len(published) - len(worse)} of "
          f"{len(published)}" + "".join(f"\n  {n}: {e:+.2f} % (published {p:+.2f} %)" for n, e, p in worse))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
