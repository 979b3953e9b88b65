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
    # two runs at once, each in its own process (the default on a CPU; named so it holds anywhere),
    # cancelled after two tasks: a cancel's signal handler raises KeyboardInterrupt the same way
    said = []

    def cancel_after_two(line):
        said.append(line)
        if sum("/4 done:" in x for x in said) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        data_efficiency(design, overrides=small_data, progress=cancel_after_two, workers=2)
    import multiprocessing

    assert not multiprocessing.active_children()  # the workers stopped with it
    out = next((runs / "experiments").iterdir())
    assert len(pd.read_csv(out / "results.csv")) >= 1  # rows collected before the cancel, and the clock
    assert json.loads((out / "meta.json").read_text())["minutes"] > 0
    done_before = {p: p.stat().st_mtime_ns for p in runs.glob("*/eval/summary.json")}
    assert done_before  # a run trained and evaluated before the cancel...
    resumed = []
    assert data_efficiency(Design(), resume=str(out), progress=resumed.append, workers=2) == out
    assert all(p.stat().st_mtime_ns == t for p, t in done_before.items())  # ...is not done again
    assert any("min left" in line for line in resumed) and resumed[-1].endswith("done")  # the pace so far
    assert sum("/4 done:" in line for line in resumed) == 4  # the base model and three runs

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

    assert len(list((out / "workers").glob("worker-*.log"))) == 4  # each worker's own output: 2 per session
    assert json.loads((out / "meta.json").read_text())["workers"] == 2

    versus = pd.read_csv(out / "versus.csv")
    assert set(versus["versus"]) == {"sft"} and sorted(versus["size"]) == [2, 3]
    outcomes = pd.read_csv(out / "outcomes.csv")  # each answer's key, so the same answer is the same value
    assert outcomes["answer"].notna().all() and outcomes["answer"].str.fullmatch("[0-9a-f]{12}").all()
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
    again = data_efficiency(Design(steps=99), resume=str(out), progress=lambda _: None, workers=1)
    meta = json.loads((out / "meta.json").read_text())
    assert again == out and meta["design"]["steps"] == 2 and meta["overrides"] == small_data
    assert stamps and {p: p.stat().st_mtime_ns for p in runs.glob("*/adapter/*")} == stamps
    assert {p: p.stat().st_mtime_ns for p in runs.glob("*/eval/summary.json")} == evals
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), table)

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=600).run()
    assert not at.exception, at.exception
    assert any("TA-SFT against each baseline" in m.value for m in at.markdown)


def synthetic_experiment(harmful_rate: dict, over_refusal: dict, seed: int = 1):
    """``(results, outcomes)`` of an experiment at one size: per objective, one rate per seed
    for harmful answers and over-refusal, 100 prompts each, drawn at those rates; a base row."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(100)]
    safe = [f"s{i}" for i in range(100)]
    table, rows = [], []
    for objective in harmful_rate:
        for seed_index, _ in enumerate(harmful_rate[objective]):
            run = f"{objective}-s{seed_index}"
            table.append({"objective": objective, "size": 10, "seed": float(seed_index), "run": run})
            for metric, suite, keys, rate in (("harmful_rate", "harmful", ids, harmful_rate),
                                              ("over_refusal_rate", "overalign", safe, over_refusal)):
                values = (rng.random(len(keys)) < rate[objective][seed_index]).astype(float)
                rows.append(pd.DataFrame({"run": run, "suite": suite, "metric": metric, "id": keys, "value": values}))
    for metric, suite, keys, rate in (("harmful_rate", "harmful", ids, 0.7), ("over_refusal_rate", "overalign", safe, 0.05)):
        rows.append(pd.DataFrame({"run": "base", "suite": suite, "metric": metric, "id": keys,
                                  "value": (rng.random(len(keys)) < rate).astype(float)}))
    table = pd.DataFrame([{"objective": "base", "size": 0, "seed": None, "run": "base"}, *table])
    return table, pd.concat(rows, ignore_index=True)


def test_versus_pairs_runs_by_seed_and_calls_only_what_holds_in_every_seed():
    """versus.csv from per-prompt outcomes alone (no evaluation folders): emd is safer than ga in
    both seeds, and better than npo on over-refusal in seed 0 only: the first is called, the
    second only by the pooled interval."""
    import numpy as np

    from semsafe.experiment import versus_table

    table, outcomes = synthetic_experiment({"emd": [0.2, 0.2], "ga": [0.7, 0.6], "npo": [0.5, 0.5]},
                                           {"emd": [0.0, 0.3], "ga": [0.3, 0.3], "npo": [0.3, 0.3]})
    versus = versus_table(table, outcomes).set_index("versus")
    assert set(versus.index) == {"ga", "npo"} and (versus["seeds"] == 2).all()
    assert versus.loc["ga", "harmful: emd better"] and versus.loc["ga", "d harmful high"] < 0
    assert versus.loc["ga", "d harmful seed 0"] < 0 and versus.loc["ga", "d harmful seed 1"] < 0
    assert not versus.loc["npo", "over-refusal: emd better"]  # seed 1 shows no difference
    pooled = versus_table(table, outcomes, pooled=True).set_index("versus")
    assert pooled.loc["npo", "over-refusal: emd better"] and "d over-refusal seed 0" not in pooled


def test_versus_reads_the_same_answer_as_the_same_value():
    """Two runs that gave the same answers score them under the base model in other batches, so
    their log-perplexities differ in the last float bits: with the answers' keys in outcomes that
    is no difference (as in compare); answers that differ keep their real difference; outcomes
    written before the keys were kept compare as before."""
    import numpy as np
    import torch

    from semsafe.experiment import versus_table

    table, outcomes = synthetic_experiment({"emd": [0.2, 0.2], "ga": [0.2, 0.2]}, {"emd": [0.1, 0.1], "ga": [0.1, 0.1]})
    rng = np.random.default_rng(0)
    ids = [f"f{i}" for i in range(50)]
    base_values = rng.uniform(1.0, 3.0, size=len(ids))
    rows = []
    for run in table["run"]:
        noise = 1e-7 if run.startswith("emd") else 0.0  # emd's batches happened to round up
        rows.append(pd.DataFrame({"run": run, "suite": "fluency", "metric": "log_ppl_generated_under_base",
                                  "id": ids, "value": base_values + noise, "answer": [f"a{i}" for i in ids]}))
    outcomes = pd.concat([outcomes.assign(answer=None), *rows], ignore_index=True)

    unkeyed = versus_table(table, outcomes.drop(columns="answer")).set_index("versus")
    assert unkeyed.loc["ga", "log ppl (base, generated): emd worse"]  # 1e-7 everywhere reads as an effect
    keyed = versus_table(table, outcomes).set_index("versus")
    assert keyed.loc["ga", "d log ppl (base, generated)"] == 0
    assert not keyed.loc["ga", "log ppl (base, generated): emd worse"]
    # emd answered differently on ten prompts, each far less fluent: that difference stays
    other = outcomes["run"].str.startswith("emd") & outcomes["id"].isin(ids[:10])
    outcomes.loc[other, "answer"] = "another answer"
    outcomes.loc[other, "value"] += 2.0
    changed = versus_table(table, outcomes).set_index("versus")
    from tolerance import sum_tolerance

    # float64: each difference is taken of values up to 5, then 50 of them are averaged, then 2 seeds
    tolerance = sum_tolerance(torch.float64, len(ids), magnitude=5.0, chain=3)
    assert abs(changed.loc["ga", "d log ppl (base, generated)"] - (2.0 + 1e-7) * 10 / 50) <= tolerance
    assert changed.loc["ga", "log ppl (base, generated): emd worse"]


def test_experiments_run_with_other_seeds_pool_into_one_comparison():
    """Seeds 0,1 in one experiment and seed 2 in a later one compare as one three-seed
    experiment; experiments whose base model was evaluated differently, or that repeat a seed,
    are refused with a message that says why."""
    from semsafe.errors import SemsafeError
    from semsafe.experiment import pool_experiments, versus_table

    table, outcomes = synthetic_experiment({"emd": [0.2, 0.2, 0.3], "ga": [0.7, 0.6, 0.6]},
                                           {"emd": [0.1, 0.1, 0.1], "ga": [0.1, 0.1, 0.1]})
    later = table["seed"] == 2
    first = (table[~later], outcomes[~outcomes["run"].isin(table.loc[later, "run"])])
    second_runs = table[later | (table["objective"] == "base")]
    second = (second_runs, outcomes[outcomes["run"].isin(second_runs["run"])])

    pooled_table, pooled_outcomes = pool_experiments([first, second])
    assert (pooled_table["objective"] == "base").sum() == 1
    whole = versus_table(table, outcomes)
    pooled = versus_table(pooled_table, pooled_outcomes)
    assert (pooled["seeds"] == 3).all() and "d harmful seed 2" in pooled
    pd.testing.assert_frame_equal(pooled, whole)
    assert versus_table(*first)["seeds"].eq(2).all()

    changed = second[1].copy()
    changed.loc[(changed["run"] == "base") & (changed["id"] == "p0"), "value"] = 1 - changed.loc[
        (changed["run"] == "base") & (changed["id"] == "p0"), "value"]
    with pytest.raises(SemsafeError, match="base model's per-prompt values"):
        pool_experiments([first, (second[0], changed)])
    with pytest.raises(SemsafeError, match="same objective, size and seed"):
        pool_experiments([first, first])


def test_fluency_headline_is_the_mean_log_perplexity_and_older_outcomes_get_it(tmp_path):
    """One broken answer (perplexity 1e20) is the plain mean of perplexities; the mean of
    log-perplexities still describes the other answers. Outcomes written before the headline
    existed (perplexities only) give the same comparison as new ones."""
    import numpy as np

    from semsafe.evaluate import EvalConfig, metric_values, read_summary, summarise
    from semsafe.experiment import versus_table, with_derived_metrics

    ppl = [4.0] * 19 + [1e20]
    fluency = pd.DataFrame({"id": [f"f{i}" for i in range(20)], "ppl_generated_under_base": ppl,
                            "repetition": 0.0, "ppl_reference": 5.0, "response": "an answer"})
    values = metric_values("fluency", fluency)
    assert np.isclose(values["log_ppl_generated_under_base"][0].mean(), np.mean(np.log(ppl)))
    summary = summarise("fluency", fluency, EvalConfig(n_bootstrap=50))
    assert summary["ppl_generated_under_base"]["mean"] > 1e18  # the plain mean is the one answer
    assert np.isclose(summary["log_ppl_generated_under_base"]["mean"], np.mean(np.log(ppl)))

    # a summary written before the headline existed gets it from the suite's rows when read
    del summary["log_ppl_generated_under_base"]
    fluency.to_parquet(tmp_path / "fluency.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"config": {"n_bootstrap": 50, "seed": 0},
                                                       "suites": {"fluency": summary}}))
    read = read_summary(tmp_path)["suites"]["fluency"]
    assert read["log_ppl_generated_under_base"] == summarise("fluency", fluency, EvalConfig(n_bootstrap=50))[
        "log_ppl_generated_under_base"]

    rng = np.random.default_rng(0)
    table = pd.DataFrame([{"objective": "base", "size": 0, "seed": None, "run": "base"},
                          *[{"objective": o, "size": 10, "seed": float(s), "run": f"{o}-s{s}"}
                            for o in ("emd", "ga") for s in (0, 1)]])
    old = pd.concat([pd.DataFrame({"run": run, "suite": "fluency", "metric": "ppl_generated_under_base",
                                   "id": [f"f{i}" for i in range(40)],
                                   "value": np.exp(rng.normal(1.5 if run.startswith("emd") else 2.5, 0.3, 40))})
                     for run in table["run"]], ignore_index=True)
    new = with_derived_metrics(old)
    new = new[new["metric"] == "log_ppl_generated_under_base"]
    assert np.allclose(new["value"], np.log(old["value"]))
    by_old, by_new = versus_table(table, old), versus_table(table, new)
    pd.testing.assert_frame_equal(by_old, by_new)
    assert by_new.loc[0, "log ppl (base, generated): emd better"]


def test_compare_page_recomputes_older_versus_tables_and_shows_an_unfinished_experiment(runs):
    """An experiment whose versus.csv predates the log-perplexity headline is compared by it on
    the Compare page (recomputed from its outcomes); an unfinished one says how far it got."""
    import numpy as np
    from streamlit.testing.v1 import AppTest

    from semsafe.experiment import experiment_progress, experiment_tables, experiment_versus, versus_table

    rng = np.random.default_rng(0)
    table = pd.DataFrame([{"objective": "base", "size": 0, "seed": None, "run": "base"},
                          *[{"objective": o, "size": 10, "seed": float(s), "run": f"{o}-s{s}"}
                            for o in ("emd", "ga") for s in (0, 1)]])
    table = table.assign(harmful=[0.5, 0.2, 0.3, 0.3, 0.4], **{"harmful low": 0.1, "harmful high": 0.6,
                                                                "over-refusal": 0.1})
    outcomes = pd.concat([pd.DataFrame({"run": run, "suite": "fluency", "metric": "ppl_generated_under_base",
                                        "id": [f"f{i}" for i in range(40)],
                                        "value": np.exp(rng.normal(1.5 if run.startswith("emd") else 2.5, 0.3, 40))})
                          for run in table["run"]], ignore_index=True)
    old = runs / "experiments" / "data-efficiency-20260101-000000"
    old.mkdir(parents=True)
    table.to_csv(old / "results.csv", index=False)
    outcomes.to_csv(old / "outcomes.csv", index=False)
    headline = "d log ppl (base, generated)"
    stale = versus_table(table, outcomes).drop(columns=[c for c in versus_table(table, outcomes) if "log ppl" in c])
    stale.to_csv(old / "versus.csv", index=False)
    (old / "meta.json").write_text(json.dumps({"runs": 4}))
    (old / "results.md").write_text("finished\n")
    versus = experiment_versus(old)
    assert headline in versus and versus.loc[0, "log ppl (base, generated): emd better"]
    pd.testing.assert_frame_equal(versus, versus_table(table, outcomes))

    partial = runs / "experiments" / "data-efficiency-20260102-000000"  # the newest: the page's default
    partial.mkdir()
    table.iloc[:2].to_csv(partial / "results.csv", index=False)
    (partial / "meta.json").write_text(json.dumps({"runs": 4}))
    assert experiment_progress(partial) == (1, 4, False) and experiment_versus(partial) is None
    assert experiment_progress(old) == (4, 4, True)
    # what the page shows of each: the unfinished one has no versus table or curves yet
    shown = experiment_tables(partial)
    assert len(shown["results"]) == 2 and shown["versus"] is None and shown["curves"] is None
    pd.testing.assert_frame_equal(experiment_tables(old)["versus"], versus)

    at = AppTest.from_file(str(ROOT / "pages/4_Compare.py"), default_timeout=300).run()
    assert not at.exception, at.exception
    assert any("1 of 4 runs have results" in m.value for m in at.info)
    picker = next(s for s in at.selectbox if s.label == "experiment")
    picker.select(old).run()  # the options are experiment folders (and the published run)
    assert not at.exception, at.exception
    assert not any("runs have results" in m.value for m in at.info)
    assert any(headline in df.value.columns for df in at.dataframe)


def test_default_workers_split_the_threads_and_share_a_gpu(monkeypatch):
    """Two 1-thread runs on 2 CPU threads; on a GPU machine one run per 4 threads, at most 4, each
    with its share (the GPU's step is bound by the CPU issuing operations: README, GPU)."""
    import torch

    from semsafe.experiment import default_workers

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert default_workers() == (2, 1)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert default_workers() == (1, 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for threads, expected in ((16, (4, 4)), (32, (4, 8)), (8, (2, 4)), (2, (1, 2))):
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        assert default_workers() == expected, threads


def test_stage_plan_evaluates_as_it_goes_and_ends_on_evaluations():
    """Two workers, the base model and five runs with training twice as long as evaluation:
    the base model goes first, each run is evaluated soon after its training while more than
    two runs wait, the last stages to start are evaluations, a failed training is reported
    without an evaluation, and no worker idles while a stage could start."""
    import heapq

    from semsafe.experiment import StagePlan

    tasks = [("base", "m", None, None)] + [("run", f"r{i}", {}, None) for i in range(5)]
    plan, clock, running, started, finished = StagePlan(tasks, workers=2), 0.0, [], [], []
    seconds = {"train": 2.0, "eval": 1.0}
    while True:
        while len(running) < 2 and (item := plan.pop()) is not None:
            started.append(item)
            heapq.heappush(running, (clock + seconds[item[1]], item))
        if not running:
            break
        clock, (index, stage) = heapq.heappop(running)
        error = "diverged" if (index, stage) == (3, "train") else None
        finished += plan.done(index, stage, error, True)
    assert started[0] == (0, "eval")
    assert started[-2:] == [(4, "eval"), (5, "eval")]  # the end is evaluations, not a whole run
    assert (1, "eval") in started[:4]  # rows arrive while runs still train
    assert (3, "eval") not in started and (3, "diverged", True) in finished
    assert sorted(i for i, _, _ in finished) == [0, 1, 2, 3, 4, 5] and plan.pop() is None
    assert clock == 8.0  # 15 s of whole-second stages on 2 workers: 8 is the best any order gives


def test_a_design_recorded_before_a_setting_existed_resumes_as_it_ran():
    """meta.json of an experiment started before `reference_ppl` existed has no such key: its
    remaining runs must be evaluated as its first were (with the reference perplexity), or
    every finished evaluation's key would change and it would be evaluated again."""
    from dataclasses import asdict

    from semsafe.experiment import PRESETS, recorded_design

    old = {k: v for k, v in asdict(PRESETS["cpu"]).items() if k != "reference_ppl"}
    assert recorded_design(old).reference_ppl is True
    assert recorded_design(asdict(PRESETS["cpu"])) == PRESETS["cpu"]  # a current record is itself
    assert PRESETS["cpu"].reference_ppl is False and PRESETS["gpu"].reference_ppl is True


def test_the_published_run_loads_and_draws_as_an_experiment_folder_does(tmp_path):
    """The Compare page shows the project's published run (docs/results/) where no experiment was
    run here: its tables have what the figures and the versus table need, and a stem whose files
    are missing gives None rather than an error."""
    from semsafe.experiment import PUBLISHED_RUN, curve_figures, efficiency_figures, published_experiment, table_files

    published = published_experiment()
    assert published is not None, f"{PUBLISHED_RUN}.csv is missing: update PUBLISHED_RUN with docs/results.md"
    results, versus, curves = published["results"], published["versus"], published["curves"]
    assert {"base", "emd", "sft", "ga", "npo", "emd_lb", "refusal_sft"} <= set(results["objective"])
    assert set(versus["size"]) == {10, 30, 100} and "harmful: emd better" in versus
    assert len(efficiency_figures(results)) >= 2 and len(curve_figures(curves)) >= 1
    assert published_experiment(tmp_path / "no-such-run") is None
    # what the page's cache of these tables is keyed by: the run's three files, not its outcomes
    stem = PUBLISHED_RUN.name
    assert [p.name for p in table_files(PUBLISHED_RUN)] == [f"{stem}-curves.csv", f"{stem}-versus.csv", f"{stem}.csv"]
    assert table_files(tmp_path / "no-such-run") == []
