"""How long each dashboard page takes to render on a warm cache (the model already loaded).

    .venv/bin/python bench/pages.py

Each page is run once to warm Streamlit's caches, then timed over three more runs in the same
process (Streamlit's AppTest runs the page script exactly as a browser session would).
Targets: every page interactive within 3 s on a warm cache on 2 cores; `semsafe --help` and
argument errors within 1 s; the EMD inspector's position / top-k changes within 1 s warm.
"""

import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app.py", "pages/1_Cost_matrix.py", "pages/2_EMD_inspector.py", "pages/3_Fine_tune.py",
         "pages/4_Compare.py", "pages/5_Playground.py"]


def cli_timings():
    """Wall time of `semsafe --help` and of an argument error (target <= 1 s each): the command
    line imports heavy libraries only inside the commands that need them."""
    import subprocess

    exe = str(Path(sys.executable).with_name("semsafe"))
    for label, args in (("semsafe --help", ["--help"]),
                        ("semsafe train --set train.steps=abc", ["train", "--set", "train.steps=abc"]),
                        ("semsafe eval --n -1", ["eval", "--n", "-1"])):
        times = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([exe, *args], capture_output=True)
            times.append(time.perf_counter() - t)
        print(f"{label:<40}{statistics.median(times):8.2f} s (median of 3; target <= 1 s)")


def main():
    cli_timings()
    print(f"{'page':<28}{'first run s':>12}{'warm median s':>15}{'warm max s':>12}")
    worst = 0.0
    for name in PAGES:
        t = time.perf_counter()
        at = AppTest.from_file(str(ROOT / name), default_timeout=600).run()
        first = time.perf_counter() - t
        if at.exception:
            sys.exit(f"{name} raised: {at.exception}")
        times = []
        for _ in range(3):
            t = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - t)
        worst = max(worst, max(times))
        print(f"{name:<28}{first:12.2f}{statistics.median(times):15.2f}{max(times):12.2f}")
    print(f"slowest warm render: {worst:.2f} s (target <= 3 s)")
    inspector_interaction()


def inspector_interaction():
    """EMD inspector: moving the position or the top-k re-renders from the cached forward pass
    (target <= 1 s warm); a new response runs the model once."""
    at = AppTest.from_file(str(ROOT / "pages/2_EMD_inspector.py"), default_timeout=600).run()
    times = {}
    for label, widget in (("position", lambda: at.slider[0]), ("support (top-k", lambda: at.slider[1])):
        runs = []
        for value in (2, 3, 4):
            t = time.perf_counter()
            widget().set_value(value).run()
            runs.append(time.perf_counter() - t)
        times[label] = statistics.median(runs)
    t = time.perf_counter()
    at.text_area[1].set_value("Sure, the first step is to buy a tension wrench").run()
    new_response = time.perf_counter() - t
    print(f"inspector: move position {times['position']:.2f} s, change top-k {times['support (top-k']:.2f} s "
          f"(target <= 1 s warm); new response (runs the model) {new_response:.2f} s")


if __name__ == "__main__":
    main()
