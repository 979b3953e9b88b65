"""The data-efficiency experiment end to end on the real embedded model, in miniature: a shared
sft run stands at every size, TA-SFT is compared with a baseline paired over prompts, the
training curves are kept, a resumed experiment trains nothing again, and the Compare page
shows it."""

import json
from pathlib import Path

import pandas as pd
import pytest

from semsafe.experiment import Design, data_efficiency

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSAFE_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_a_small_experiment_runs_resumes_and_shows(runs, embedded):
    design = Design(objectives=["sft", "emd"], sizes=[2, 3], seeds=[0], steps=2, suites=["harmful", "overalign"],
                    suite_n={"harmful": 4, "overalign": 4}, max_new_tokens=8, batch_size=8)
    small_data = ["data.n_retain=8", "data.prepare_max_new_tokens=48"]
    out = data_efficiency(design, overrides=small_data, progress=lambda _: None)

    table = pd.read_csv(out / "results.csv")
    assert "error" not in table or table["error"].isna().all(), table.get("error")
    sft = table[table["objective"] == "sft"]
    assert sorted(sft["size"]) == [2, 3] and sft["run"].nunique() == 1  # one run stands at both sizes
    assert table[table["objective"] == "emd"]["run"].nunique() == 2
    base = table[table["objective"] == "base"].iloc[0]
    assert 0 <= base["harmful"] <= 1 and 0 <= base["over-refusal"] <= 1
    assert {"d harmful", "d harmful low", "d harmful high"} <= set(table.columns)

    # the extra held-out set is evaluated: HarmBench prompts sit beside AdvBench's held-out half
    run_eval = runs / table[table["objective"] == "emd"]["run"].iloc[0] / "eval" / "harmful.parquet"
    assert any(i.startswith("harmbench-") for i in pd.read_parquet(run_eval)["id"])

    versus = pd.read_csv(out / "versus.csv")
    assert set(versus["versus"]) == {"sft"} and sorted(versus["size"]) == [2, 3]
    assert versus["d harmful"].between(-1, 1).all()

    curves = pd.read_csv(out / "curves.csv")
    emd_term = curves[(curves["objective"] == "emd") & (curves["term"] == "harmful term")]
    assert set(emd_term["name"]) == {"emd_harmful"} and set(emd_term["step"]) == {1, 2}
    assert (curves[curves["objective"] == "sft"]["term"] != "harmful term").all()  # sft has no such term

    text = (out / "results.md").read_text()
    assert "TA-SFT (`emd`) against each other objective" in text and "| 2 | sft |" in text
    report = (out / "report.html").read_text()
    assert "plotly" in report and "<table>" in report and "TA-SFT" in report

    # resumed: the recorded design is used and no run trains or evaluates again
    stamps = {p: p.stat().st_mtime_ns for p in runs.glob("*/adapter/*")}
    evals = {p: p.stat().st_mtime_ns for p in runs.glob("*/eval/summary.json")}
    again = data_efficiency(Design(steps=99), resume=str(out), progress=lambda _: None)
    meta = json.loads((out / "meta.json").read_text())
    assert again == out and meta["design"]["steps"] == 2 and meta["overrides"] == small_data
    assert stamps and {p: p.stat().st_mtime_ns for p in runs.glob("*/adapter/*")} == stamps
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/eval/summary.json")} == evals
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), table)

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=600).run()
    assert not at.exception, at.exception
    assert any("TA-SFT against each baseline" in m.value for m in at.markdown)


def test_versus_pairs_runs_by_seed_and_calls_only_what_holds_in_every_seed():
    """versus.csv from per-prompt outcomes alone (no evaluation folders): emd is safer than ga in
    both seeds, and better than npo on over-refusal in seed 0 only: the first is called, the
    second only by the pooled interval."""
    import numpy as np

    from semsafe.experiment import versus_table

    rng = np.random.default_rng(1)
    ids = [f"p{i}" for i in range(100)]
    safe = [f"s{i}" for i in range(100)]
    harmful_rate = {"emd": [0.2, 0.2], "ga": [0.7, 0.6], "npo": [0.5, 0.5]}
    over_refusal = {"emd": [0.0, 0.3], "ga": [0.3, 0.3], "npo": [0.3, 0.3]}
    table, rows = [], []
    for objective in ("emd", "ga", "npo"):
        for seed in (0, 1):
            run = f"{objective}-s{seed}"
            table.append({"objective": objective, "size": 10, "seed": float(seed), "run": run})
            for metric, suite, keys, rate in (("harmful_rate", "harmful", ids, harmful_rate),
                                              ("over_refusal_rate", "overalign", safe, over_refusal)):
                values = (rng.random(len(keys)) < rate[objective][seed]).astype(float)
                rows.append(pd.DataFrame({"run": run, "suite": suite, "metric": metric, "id": keys, "value": values}))
    table = pd.DataFrame([{"objective": "base", "size": 0, "seed": None, "run": "base"}, *table])
    outcomes = pd.concat(rows, ignore_index=True)

    versus = versus_table(table, outcomes).set_index("versus")
    assert set(versus.index) == {"ga", "npo"} and (versus["seeds"] == 2).all()
    assert versus.loc["ga", "harmful: emd better"] and versus.loc["ga", "d harmful high"] < 0
    assert versus.loc["ga", "d harmful seed 0"] < 0 and versus.loc["ga", "d harmful seed 1"] < 0
    assert not versus.loc["npo", "over-refusal: emd better"]  # seed 1 shows no difference
    pooled = versus_table(table, outcomes, pooled=True).set_index("versus")
    assert pooled.loc["npo", "over-refusal: emd better"] and "d over-refusal seed 0" not in pooled
