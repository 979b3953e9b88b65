"""Judges: refusal, harmfulness, toxicity, fluency. Each reports its measured validation.

Every judge has a ``name`` and ``version``; every eval result records both.
"""


def builtin_versions() -> dict:
    """Name and version of each built-in judge ("harm-v5"), as results record them."""
    from . import degenerate, fluency, harm, refusal, toxicity

    return {"refusal": f"{refusal.NAME}-v{refusal.VERSION}", "harm": f"{harm.NAME}-v{harm.VERSION}",
            "toxicity": f"{toxicity.NAME}-{toxicity.VERSION}", "fluency": f"{fluency.NAME}-v{fluency.VERSION}",
            "degenerate": f"{degenerate.NAME}-v{degenerate.VERSION}"}
