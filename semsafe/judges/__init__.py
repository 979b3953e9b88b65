"""Judges: refusal, harmfulness, toxicity, fluency. Each reports its measured validation.

Every judge has a ``name`` and ``version``; every eval result records both.
"""
