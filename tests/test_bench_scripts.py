"""The bench scripts still run against the package: every figure the docs quote comes with the
command that reproduces it, so a script that no longer imports, or that reaches for a name the
package has since renamed, is a broken promise. Each script is imported (their work sits behind
``if __name__ == "__main__"``) in one fresh process, and every ``module.name`` a script reads off
a semsafe module it imported must exist there."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

CHECK = r"""
import ast, importlib, importlib.util, json, sys, types
from pathlib import Path
bench = Path(sys.argv[1])
sys.path.insert(0, str(bench))
problems = []
for path in sorted(bench.glob("*.py")):
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as err:  # noqa: BLE001 - any failure to import is the finding
        problems.append(f"{path.name}: importing it fails: {type(err).__name__}: {err}")
        continue
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {}  # local name -> a semsafe module the script bound to it
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("semsafe"):
            for alias in node.names:
                value = getattr(importlib.import_module(node.module), alias.name, None)
                if isinstance(value, types.ModuleType):
                    modules[alias.asname or alias.name] = value
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("semsafe") and alias.asname:
                    modules[alias.asname] = importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and not hasattr(modules[node.value.id], node.attr)):
            problems.append(f"{path.name}:{node.lineno}: {modules[node.value.id].__name__} has no {node.attr!r}")
print(json.dumps(problems))
"""


def test_every_bench_script_imports_and_names_only_what_the_package_has(tmp_path):
    assert len(list(BENCH.glob("*.py"))) >= 20
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEMSAFE_CACHE": str(tmp_path / "cache"),
           "SEMSAFE_RUNS": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, "-c", CHECK, str(BENCH)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    problems = json.loads(out.stdout.strip().splitlines()[-1])
    assert problems == [], "\n".join(problems)
