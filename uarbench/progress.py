"""What a person sees while uarbench works: logging through the ``uarbench`` logger and one
progress display per run that works on a terminal and in a log file alike.

- On a terminal (stderr is a TTY) a run is one tqdm bar: steps of training with the stage, epoch
  and last validation BLEU-4 in its postfix, or the run's current stage (data, decoding,
  METEOR, labelling ...) for floors and for the work after training.
- Anywhere else (``> log 2>&1``, nohup, SLURM, ``| tee``, CI) there are no bars: one INFO line
  per run start, stage, epoch (with its loss, validation BLEU-4 and elapsed time), a step line
  at most once a minute within long epochs, and the finish with the wall time, like
  lm-evaluation-harness's INFO lines.

Stages come from :func:`uarbench.timing.phase`: the code already names each phase of a run for
its time accounting, and :class:`RunProgress` listens to those names, so nothing else has to
report progress. ``-v`` / ``-q`` / ``--log-file`` set levels and a log file
(:func:`setup_logging`). Hand-written: tqdm draws the bars; the rest is a few lines of
:mod:`logging`.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from uarbench.timing import listen_to_phases

LOGGER = logging.getLogger("uarbench")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
# phases worth a line of their own (the others are DEBUG): what a person waits for
MAIN_PHASES = {"data", "tokenizer", "image_tokens", "train_steps", "validation", "decode_test",
               "decode_val", "image_use_probe", "floor_fit_predict", "meteor", "labelling",
               "bootstrap", "metric:RadGraph"}
STEP_LINE_EVERY_S = 60.0


class _Handler(logging.StreamHandler):
    """Writes to the *current* sys.stderr (so tests that capture stderr see the lines)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # not setStream: that flushes the old one, which may be closed
        super().emit(record)


ENV_VERBOSITY, ENV_LOG_FILE = "UARBENCH_VERBOSITY", "UARBENCH_LOG_FILE"


def ensure_logging() -> None:
    """In a worker process: the logging its parent set up (passed through the environment), or
    the default (INFO on stderr) when nothing is set up yet."""
    if not any(getattr(h, "_uarbench", False) for h in LOGGER.handlers):
        setup_logging(int(os.environ.get(ENV_VERBOSITY, "0")),
                      os.environ.get(ENV_LOG_FILE) or None)


def setup_logging(verbosity: int = 0, log_file: str | Path | None = None) -> None:
    """Configure the ``uarbench`` logger: INFO (0), DEBUG (>= 1, ``-v``) or WARNING (< 0,
    ``-q``) on stderr, and everything from INFO (DEBUG with -v) appended to ``log_file``.
    Idempotent: calling it again replaces the handlers it installed. Worker processes inherit
    the setting (:func:`ensure_logging`)."""
    os.environ[ENV_VERBOSITY] = str(verbosity)
    os.environ[ENV_LOG_FILE] = str(log_file or "")
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    for handler in list(LOGGER.handlers):
        if getattr(handler, "_uarbench", False):
            LOGGER.removeHandler(handler)
            handler.close()
    stream = _Handler()
    stream.setLevel(level)
    handlers: list[logging.Handler] = [stream]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(log_file, encoding="utf-8")
        file.setLevel(min(level, logging.INFO))
        handlers.append(file)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
        handler._uarbench = True  # type: ignore[attr-defined]
        LOGGER.addHandler(handler)
    LOGGER.setLevel(min(h.level for h in handlers))
    LOGGER.propagate = False


def interactive() -> bool:
    """Whether to draw bars: stderr is a terminal and INFO is shown."""
    return sys.stderr.isatty() and LOGGER.getEffectiveLevel() <= logging.INFO


def seconds(s: float) -> str:
    """12.3 s, 4 min 05 s, 1 h 02 min."""
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class RunProgress:
    """The progress display of one run (a context manager: while it is open, the run's phases
    show as its stage). ``position``: the bar's line when several runs share a terminal."""

    def __init__(self, name: str, *, position: int | None = None, log: logging.Logger = LOGGER,
                 bars: bool | None = None) -> None:
        self.name, self.log = name, log
        self.bars = interactive() if bars is None else bars
        self.position = position
        self.bar = None
        self.total = self.done = 0
        self.t0 = self._last_line = time.perf_counter()
        self.stage_name = ""
        self._stop_listening = None

    # --- lifetime ---
    def __enter__(self) -> RunProgress:
        self.log.info("%s: started", self.name)
        if self.bars:
            self._make_bar(None)
        self._stop_listening = listen_to_phases(self.stage)
        return self

    def __exit__(self, kind, error, tb) -> None:
        if self._stop_listening is not None:
            self._stop_listening()
        self.close("failed" if kind is not None else "done")

    def close(self, status: str = "done") -> None:
        """Close the bar and log the run's end: ``done`` (INFO) or ``failed`` (WARNING)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        level = logging.INFO if status == "done" else logging.WARNING
        self.log.log(level, "%s: %s in %s", self.name, status,
                     seconds(time.perf_counter() - self.t0))

    def _make_bar(self, total: int | None) -> None:
        from tqdm.auto import tqdm
        if self.bar is not None:
            self.bar.close()
        kw = {"position": self.position} if self.position is not None else {}
        self.bar = tqdm(total=total, desc=self.name[:28], unit="step" if total else "it",
                        dynamic_ncols=True, leave=False, **kw)

    # --- what the run reports ---
    def stage(self, phase: str) -> None:
        """Called at the start of each :func:`~uarbench.timing.phase` of the run."""
        if phase == self.stage_name:
            return
        self.stage_name = phase
        if self.bar is not None:
            self.bar.set_description_str(f"{self.name[:28]} [{phase}]", refresh=True)
        elif phase != "train_steps" and phase != "validation":  # epochs say those
            self.log.log(logging.INFO if phase in MAIN_PHASES else logging.DEBUG,
                         "%s: %s", self.name, phase)

    def training(self, total_steps: int, done: int = 0) -> None:
        """Training starts: ``total_steps`` steps, ``done`` of them already (resumed or taken)."""
        self.total, self.done = total_steps, done
        if self.bars:
            self._make_bar(total_steps)
            self.bar.update(done)
        else:
            self.log.info("%s: training, %d steps%s", self.name, total_steps,
                          f" ({done} done before)" if done else "")

    def step(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
        elif time.perf_counter() - self._last_line >= STEP_LINE_EVERY_S:
            self._last_line = time.perf_counter()
            extra = "".join(f", {k} {v}" for k, v in postfix.items())
            self.log.info("%s: step %d/%d%s (%s)", self.name, self.done, self.total, extra,
                          seconds(self._last_line - self.t0))

    def epoch(self, stage: int, epoch: int, n_epochs: int, val_bleu4: float,
              ce: float | None = None) -> None:
        """An epoch ended and was validated."""
        if self.bar is not None:
            self.bar.set_postfix({"stage": stage, "epoch": f"{epoch + 1}/{n_epochs}",
                                  **({"ce": f"{ce:.3f}"} if ce is not None else {}),
                                  "val_BLEU-4": f"{val_bleu4:.4f}"}, refresh=True)
            return
        self._last_line = time.perf_counter()
        ce_text = f"ce {ce:.4f}, " if ce is not None else ""
        self.log.info("%s: stage %d epoch %d/%d: %sval BLEU-4 %.4f (%s)", self.name, stage,
                      epoch + 1, n_epochs, ce_text, val_bleu4,
                      seconds(self._last_line - self.t0))


class SuiteProgress:
    """A suite's progress: one bar (terminal) or one line per finished run, with an ETA
    weighted by each run's expected cost (a trained row costs minutes, a floor seconds), not by
    the number of runs. ``costs``: run name -> expected seconds."""

    def __init__(self, suite: str, costs: dict[str, float], *, log: logging.Logger = LOGGER,
                 bars: bool | None = None) -> None:
        self.suite, self.costs, self.log = suite, costs, log
        self.total = sum(costs.values()) or 1.0
        self.done_cost, self.finished = 0.0, 0
        self.t0 = time.perf_counter()
        self.bar = None
        if interactive() if bars is None else bars:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=round(self.total), desc=f"suite {suite}", position=0,
                            dynamic_ncols=True,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} "
                                       "[{elapsed}<{remaining}]")
            self.bar.set_postfix_str(f"0/{len(costs)} runs")
        self.log.info("suite %s: %d run(s) to do", suite, len(costs))

    def run_done(self, run: str, status: str, wall_s: float = 0.0) -> None:
        cost = self.costs.get(run, 0.0)
        self.done_cost += cost
        self.finished += 1
        elapsed = time.perf_counter() - self.t0
        left = elapsed / self.done_cost * (self.total - self.done_cost) if self.done_cost else 0
        if self.bar is not None:
            self.bar.update(round(self.done_cost) - self.bar.n)
            self.bar.set_postfix_str(f"{self.finished}/{len(self.costs)} runs")
        else:
            self.log.info("suite %s: %s %s in %s (%d/%d runs; about %s left)", self.suite, run,
                          status, seconds(wall_s), self.finished, len(self.costs), seconds(left))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
