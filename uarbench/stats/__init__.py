"""Test-sample uncertainty and significance on per-report sufficient statistics.

- :mod:`~uarbench.stats.resample`: the shared seeded bootstrap indices and AR swap masks;
- :mod:`~uarbench.stats.bootstrap`: paired bootstrap percentile CIs (Koehn 2004);
- :mod:`~uarbench.stats.randomization`: paired approximate randomization (Riezler & Maxwell 2005);
- :mod:`~uarbench.stats.holm`: Holm-Bonferroni across the comparisons of one table;
- :mod:`~uarbench.stats.compare`: the one significance engine (per-seed-mean CIs and paired AR
  tests of rows against a baseline, one Holm step, one test signature) and
  :func:`compare_systems` on top of it;
- :mod:`~uarbench.stats.seeds`: mean +/- sd over training seeds (seed variance, not a CI) and
  the seed-level paired test.
"""
from uarbench.stats.bootstrap import BootstrapResult, Interval, paired_bootstrap
from uarbench.stats.compare import Comparison, ComparisonRow, compare_systems, stats_from_frame
from uarbench.stats.holm import holm_adjust, holm_reject
from uarbench.stats.randomization import (RandomizationTest, paired_randomization,
                                          randomization_tests)
from uarbench.stats.resample import bootstrap_indices, swap_masks
from uarbench.stats.seeds import SeedSummary, seed_variance

__all__ = ["BootstrapResult", "Comparison", "ComparisonRow", "Interval", "RandomizationTest",
           "SeedSummary", "bootstrap_indices", "compare_systems", "holm_adjust", "holm_reject",
           "paired_bootstrap", "paired_randomization", "randomization_tests", "seed_variance",
           "stats_from_frame", "swap_masks"]
