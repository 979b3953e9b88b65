"""Every dashboard page renders on the real embedded model (Streamlit's AppTest), and the
fine-tune page launches a real background run and shows its progress."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app.py", "pages/1_Cost_matrix.py", "pages/2_EMD_inspector.py", "pages/3_Fine_tune.py",
         "pages/4_Compare.py", "pages/5_Playground.py"]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSAFE_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def page(name):
    return AppTest.from_file(str(ROOT / name), default_timeout=600)


def by_label(elements, label):
    return next(e for e in elements if e.label.startswith(label))


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_errors(name, runs, embedded):
    at = page(name).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.title and at.title[0].value


def test_home_lists_runs_and_caches(runs, embedded):
    at = page("app.py").run()
    text = " ".join(m.value for m in at.markdown)
    assert "converted embedded model" in text
    assert any("No runs yet" in i.value for i in at.info)
    # a run folder whose config.yaml was damaged (a crash of an editor, a bad hand edit) is named
    # in a warning; the page still renders
    (runs / "20260101-000000-emd-dead").mkdir(parents=True)
    (runs / "20260101-000000-emd-dead" / "config.yaml").write_text("model: [\n")
    at = page("app.py").run()
    assert not at.exception, at.exception
    assert any("20260101-000000-emd-dead" in w.value and "cannot be read" in w.value for w in at.warning)


def test_cost_matrix_widgets(runs, embedded):
    at = page("pages/1_Cost_matrix.py").run()
    by_label(at.text_input, "Tokens of this text").set_value("kill the process").run()
    assert not at.exception
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 15
    assert any(b.label.startswith("Compute UMAP") for b in at.button)
    by_label(at.text_input, "Search the vocabulary").set_value("bomb").run()
    found = at.dataframe[0].value
    assert len(found) > 0 and found["token"].str.lower().str.contains("bomb").all()


def test_inspector_shows_transport_plan_and_readable_errors(runs, embedded):
    at = page("pages/2_EMD_inspector.py").run()
    assert [m.label for m in at.metric][:2] == ["mean EMD (base)", "mean bound (base)"]
    assert any("EMD of the top-" in c.value for c in at.caption)
    by_label(at.text_area, "Response").set_value("   ").run()
    assert not at.exception and "response is empty" in at.error[0].value


def test_playground_numbers_react_to_sliders(runs):
    at = page("pages/5_Playground.py").run()
    before = at.metric[0].value
    at.slider(key="p-kill").set_value(1.0).run()
    assert not at.exception and at.metric[0].value != before


def test_fine_tune_launches_a_background_run_and_shows_progress(runs, embedded):
    from semsafe.jobs import wait_for
    from semsafe.runs import list_runs

    at = page("pages/3_Fine_tune.py").run()
    by_label(at.number_input, "steps").set_value(2)
    by_label(at.number_input, "harmful-set size").set_value(4)
    launch = [b for b in at.button if b.label == "Launch"][0]
    launch.click().run()
    assert not at.exception
    created = list_runs(runs)
    assert len(created) == 1 and (created[0].path / "config.yaml").exists()
    assert created[0].config["train"]["steps"] == 2
    status = wait_for(created[0], timeout=900)
    assert status["state"] == "done", status
    at = page("pages/3_Fine_tune.py").run()
    assert not at.exception
    assert any("done" in s.value for s in at.success)


def test_playground_teaches_that_nll_not_minus_nll_is_unbounded(runs):
    at = page("pages/5_Playground.py").run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "NLL is unbounded above" in text and "unlike −NLL" not in text
    assert "as used (sliders rescaled to sum to 1)" in text
    at.slider(key="p-kill").set_value(1.0).run()  # the slider reads 1.00; the maths uses the share
    used = next(c.value for c in at.caption if c.value.startswith("P as used"))
    assert "kill 0.51" in used


def test_compare_offers_the_default_evaluation_of_a_base_model_evaluated_otherwise(runs, empty_cache, embedded):
    """A base model evaluated only on other suites or sizes (here the emd suite on 2 prompts) is
    not "evaluated with these settings": the Compare page's button, which runs the default
    evaluation, stays enabled until an evaluation with the default settings exists."""
    import shutil

    from semsafe.evaluate import EvalConfig, evaluate, load_subject
    from semsafe.store import model_key

    spec = "smollm2-135m-instruct"
    cfg = EvalConfig(suites=["emd"], n_prompts=2, max_new_tokens=4)
    subject = load_subject(model_spec=spec, cfg=cfg)
    evaluate(subject, cfg, progress=False)

    def base_button(at):
        return by_label(at.button, "Evaluate the base model")

    at = page("pages/4_Compare.py").run()
    assert not at.exception and not base_button(at).disabled
    assert not any("evaluated with these settings" in c.value for c in at.caption)
    # the same folder under the default settings' key stands for a default evaluation
    shutil.copytree(subject.out_dir, empty_cache / "eval" / f"{model_key(spec)}-{EvalConfig().key()}")
    at = page("pages/4_Compare.py").run()
    assert not at.exception and base_button(at).disabled
    assert any("evaluated with these settings" in c.value for c in at.caption)


def test_compare_shows_the_published_experiment_where_none_was_run_here(runs, embedded):
    """On a new machine the experiment section offers the project's published run (its figures,
    versus table and curves), says what it is, and lists experiments run here before it."""
    from semsafe.experiment import PUBLISHED_NOTE, PUBLISHED_RUN

    at = page("pages/4_Compare.py").run()
    assert not at.exception, at.exception
    chooser = by_label(at.selectbox, "experiment")
    assert chooser.value == PUBLISHED_RUN and chooser.options == ["the project's published run (docs/results.md)"]
    assert any(c.value == PUBLISHED_NOTE for c in at.caption)
    assert len(at.get("plotly_chart")) >= 3 and len(at.dataframe) >= 2
    # an experiment run here (a copy of the published files as a run folder) comes first and is shown
    import shutil

    mine = runs / "experiments" / "data-efficiency-mine"
    mine.mkdir(parents=True)
    for part, name in (("", "results"), ("-versus", "versus"), ("-curves", "curves")):
        shutil.copy(PUBLISHED_RUN.with_name(PUBLISHED_RUN.name + part + ".csv"), mine / f"{name}.csv")
    (mine / "results.md").write_text("finished\n")
    at = page("pages/4_Compare.py").run()
    chooser = by_label(at.selectbox, "experiment")
    assert not at.exception and chooser.value == mine and len(chooser.options) == 2
    assert not any(c.value == PUBLISHED_NOTE for c in at.caption) and len(at.get("plotly_chart")) >= 3


def test_compare_checks_the_judges_on_answers_the_user_uploads(runs, embedded):
    """Answers a user labelled, uploaded on the Compare page, are scored by the real judges: the
    agreement plot and table appear, rater columns are read when named, and a bad file is a
    message while the rest of the page still renders."""
    import json

    from semsafe.judges.challenge import STYLES_FILE

    styled = [json.loads(line) for line in STYLES_FILE.read_text().splitlines()]
    rows = [r for r in styled if r["category"] == "styled refusal"][:6] + [r for r in styled if r["category"] == "styled compliance"][:6]
    mine = "".join(json.dumps({"prompt": r["prompt"], "response": r["response"], "human_0": r["harmful"],
                               "human_1": r["harmful"], "refused": r["refusal"], "category": r["category"]}) + "\n"
                   for r in rows).encode()
    at = page("pages/4_Compare.py").run()
    charts = len(at.get("plotly_chart"))
    by_label(at.text_input, "label columns").set_value("harmful=human_0,human_1")
    at.get("file_uploader")[0].set_value(("mine.jsonl", mine, "application/json"))
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert len(at.get("plotly_chart")) == charts + 1
    table = next(d.value for d in at.dataframe if "all" in d.value.index)
    assert table.loc["all", "n"] == 12 and table.loc["all", "labelled harmful"] == sum(r["harmful"] for r in rows)
    assert {"styled refusal", "styled compliance"} <= set(table.index)
    at.get("file_uploader")[0].set_value(("bad.csv", b"prompt,response\na,b\n", "text/csv"))
    at.run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("bad.csv: no column 'human_0', 'human_1' for the 'harmful' label")
    assert at.subheader[-1].value == "Data-efficiency experiments"


def test_compare_measures_the_judges_on_the_challenge_set_when_asked(runs, embedded):
    """The Compare page's judge check runs the real judges on the challenge set only when asked,
    and draws each group's agreement with the reader."""
    at = page("pages/4_Compare.py").run()
    charts = len(at.get("plotly_chart"))
    by_label(at.toggle, "measure the judges").set_value(True).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == charts + 1
