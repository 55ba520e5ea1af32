"""`vlmctl models`: every catalog entry with its family and where its config was read."""
import json

from vlmctl.cli.main import main


def test_models_json_shows_each_family(capsys):
    assert main(["models", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {r["family"] for r in rows.values()} == {"Qwen2-VL", "Qwen2.5-VL", "Qwen3-VL", "Qwen3-VL-MoE", "Qwen3.5",
                                                   "Qwen3.5-MoE"}
    assert rows["Qwen/Qwen3-VL-8B-Instruct"]["params_b"] == 8.77
    assert rows["Qwen/Qwen3.5-27B"]["model_type"] == "qwen3_5" and rows["Qwen/Qwen3.5-27B"]["source"]


def test_models_table_has_a_family_column(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "family" in out and "Qwen3-VL-MoE" in out and "Qwen3.5" in out
