"""The dashboard's home page renders on the real embedded model (Streamlit's AppTest)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_home_renders_inspection_on_embedded_model(embedded):
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception, at.exception
    assert not at.error
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) > 5
    assert at.metric[0].label == "mean EMD over the response"


def test_home_shows_readable_errors():
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.text_area[1].set_value("   ").run()
    assert not at.exception
    assert "response is empty" in at.error[0].value
    at.sidebar.text_input[0].set_value("no-such-model").run()
    assert not at.exception
    assert "cannot load model 'no-such-model'" in at.error[0].value
