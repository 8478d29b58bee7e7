"""The suite runner behind ``uarbench run``: suites from benchmark.toml expanded into runs, one
self-describing folder per run, skipped when complete, resumed when interrupted, executed
locally (one process per run) or as Ray tasks."""
from uarbench.runner.suite import RunSpec, Suite, expand_suite, load_suites
from uarbench.runner.execute import RunOutcome, execute_run
from uarbench.runner.runner import SuiteReport, run_suite

__all__ = ["RunSpec", "Suite", "expand_suite", "load_suites", "RunOutcome", "execute_run",
           "SuiteReport", "run_suite"]
