"""Metric families (NLG: BLEU, METEOR, ROUGE-L, CIDEr; clinical efficacy; RadGraph) and
:func:`family_of`, the family that reports a metric name."""
from __future__ import annotations


def family_of(metric: str):
    """(family key, family instance) of a reported metric name (``BLEU-4``, ``CIDEr``,
    ``CE-F1[macro-14-unc0]``), or None for a name no family reports (RadGraph, unknown). The
    key is the family's registry name (NLG) or its CE convention key."""
    from uarbench.metrics.base import NLG_METRICS
    from uarbench.metrics.ce import ce_family_of
    from uarbench.metrics.nlg import NLG_FAMILIES   # importing it registers the NLG families
    ce = ce_family_of(metric)
    if ce is not None:
        return ce.convention.key, ce
    for name in NLG_FAMILIES:
        family = NLG_METRICS.get(name)()
        if metric in family.names:
            return name, family
    return None
