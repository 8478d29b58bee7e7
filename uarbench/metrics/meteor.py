"""METEOR 1.5 (Denkowski & Lavie, WMT 2014) through the jar that ships inside pycocoevalcap 1.2.

The jar is launched exactly as pycocoevalcap launches it (``java -jar -Xmx2G meteor-1.5.jar - -
-stdio -l en -norm``, working directory = the jar's folder) but by this small wrapper:

- one long-lived JVM per process (lazy, guarded by a lock, closed at exit);
- statistics: one ``SCORE ||| reference ||| hypothesis`` line per report; the jar answers with
  the report's sufficient statistics (23 numbers), which are the rows of ``stats``. The lines
  are pipelined (all written, then all answers read) instead of one round trip per report;
- score: ``EVAL ||| stats_1 ||| stats_2 ...``; the jar answers one line per report and then the
  corpus METEOR, which is the score (as pycocoevalcap's ``compute_score``);
- inputs are made safe for the line protocol: ``\\r`` and ``\\n`` become spaces (the jar reads
  its input with Java's ``readLine``, which ends a line at exactly these two; a line break makes
  the jar answer an error line, pycocoevalcap then raises and hangs at exit). Every other
  character (``\\x0b``, ``\\x85``, ``\\u2028``, ...) is sent unchanged, as pycocoevalcap sends
  it: the jar answers normally and tokenises it its own way. The hypothesis gets
  pycocoevalcap's transform ``replace('|||', '').replace('  ', ' ')`` and ``|||`` is also
  removed from references (pycocoevalcap would read it as a second reference);
- every answer is awaited with a timeout, so a stuck JVM raises :class:`MeteorError` (and is
  killed) instead of hanging.

Empty hypotheses or references: the jar (Java 17) answers them normally (test length 0, score
0.0), and pycocoevalcap gives the same 0.0, so they are sent unchanged.

Scoring from statistics needs no JVM. The 23 numbers of a ``SCORE`` answer are (0) test
length, (1) reference length, (2) test and (3) reference function words, then for each matching
stage (exact, stem, synonym, paraphrase) the test content, reference content, test function and
reference function matches (4-19), then (20) chunks, (21) test and (22) reference word matches.
The jar's ``EVAL`` scores a corpus from the column sums of its segments' statistics, with one
exception: a segment matched perfectly (every word of both sides matched, in one chunk) adds no
chunk. :func:`corpus_rows` applies that rule row by row, so the corpus METEOR of any subset or
resample of reports is a function of the column sums of those rows, and :func:`meteor_scores`
is the jar's formula on them (Denkowski & Lavie 2014 with the jar's English ``rank`` parameters,
written here from the formula and checked against the jar's ``EVAL`` answers: equal to 1 ulp on
the ablation suite's runs, tests/metrics/test_meteor_sums.py). :class:`MeteorJar` keeps the
previous, jar-bound scoring (every row set sent to the jar as one segment of summed statistics,
which counts the chunks of perfect segments) for benchmarks and checks.
"""
from __future__ import annotations

import atexit
import importlib.util
import math
import queue
import shutil
import subprocess
import threading
from collections import deque
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from uarbench.metrics.base import NLG_METRICS, MetricFamily, MetricUnavailable

JAR_NAME = "meteor-1.5.jar"
N_STATS = 23                    # numbers per SCORE answer for one reference, language "en"
READ_TIMEOUT_S = 180.0          # per answer line; the first one includes JVM start-up (~5-10 s)
# only what Java's readLine ends a line at; replacing more would change the statistics
_LINE_BREAKS = str.maketrans({c: " " for c in "\r\n"})


class MeteorError(MetricUnavailable):
    """The METEOR jar failed, answered something unexpected or did not answer in time."""


def jar_path() -> Path | None:
    """The meteor jar inside the installed pycocoevalcap package, or None."""
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        jar = Path(folder) / "meteor" / JAR_NAME
        if jar.is_file():
            return jar
    return None


def unavailable_reason() -> str | None:
    if shutil.which("java") is None:
        return "unavailable: java not found on PATH"
    if jar_path() is None:
        return f"unavailable: {JAR_NAME} not found (is pycocoevalcap 1.2 installed?)"
    return None


@lru_cache(maxsize=1)
def java_version() -> str:
    """First line of ``java -version`` or "not found"."""
    java = shutil.which("java")
    if java is None:
        return "not found"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"not runnable ({err})"
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if lines else "unknown"


class _JarProcess:
    """One JVM speaking the jar's line protocol, with timed reads."""

    def __init__(self, command: list[str], cwd: str | None, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._proc = subprocess.Popen(command, cwd=cwd, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=20)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        for raw in self._proc.stdout:  # type: ignore[union-attr]
            self._lines.put(raw)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        for raw in self._proc.stderr:  # type: ignore[union-attr]
            self._stderr.append(raw.decode(errors="replace").rstrip())

    def _why(self) -> str:
        tail = " | ".join(list(self._stderr)[-5:])
        return f" (jar stderr: {tail})" if tail else ""

    def request(self, lines: list[str], n_answers: int) -> list[str]:
        """Write ``lines`` and return the next ``n_answers`` answer lines."""
        payload = "".join(line + "\n" for line in lines).encode()
        failure: list[BaseException] = []

        def write() -> None:
            try:
                self._proc.stdin.write(payload)  # type: ignore[union-attr]
                self._proc.stdin.flush()  # type: ignore[union-attr]
            except OSError as err:       # the JVM died; the reader reports it
                failure.append(err)

        # written from a thread so that answers are read while a long input is still going in
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        answers = []
        for _ in range(n_answers):
            try:
                raw = self._lines.get(timeout=self.timeout_s)
            except queue.Empty:
                raise MeteorError(f"the METEOR jar gave no answer within {self.timeout_s:.0f} s"
                                  f"{self._why()}") from None
            if raw is None:
                try:
                    code: int | str = self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    code = "?"
                raise MeteorError(f"the METEOR jar exited with code {code}{self._why()}")
            answers.append(raw.decode(errors="replace").strip())
        writer.join(self.timeout_s)
        if failure:
            raise MeteorError(f"could not write to the METEOR jar: {failure[0]}{self._why()}")
        return answers

    def kill(self) -> None:
        self._proc.kill()
        self.close()

    def close(self) -> None:
        try:
            self._proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


_LOCK = threading.Lock()
_JVM: _JarProcess | None = None


def _jvm() -> _JarProcess:
    """The process-wide JVM, started on first use (call with _LOCK held)."""
    global _JVM
    if _JVM is None:
        reason = unavailable_reason()
        if reason is not None:
            raise MeteorError(reason)
        java, jar = shutil.which("java"), jar_path()
        command = [java, "-jar", "-Xmx2G", jar.name, "-", "-", "-stdio", "-l", "en", "-norm"]
        try:
            _JVM = _JarProcess(command, str(jar.parent), READ_TIMEOUT_S)  # type: ignore[union-attr]
        except OSError as err:
            raise MeteorError(f"could not start java for METEOR: {err}") from err
    return _JVM


def _ask(lines: list[str], n_answers: int) -> list[str]:
    global _JVM
    with _LOCK:
        proc = _jvm()
        try:
            return proc.request(lines, n_answers)
        except MeteorError:
            _JVM = None                  # protocol state unknown: start afresh next time
            proc.kill()
            raise


@atexit.register
def shutdown() -> None:
    """Stop the JVM (also registered at exit)."""
    global _JVM
    # a request stuck in another thread must not block interpreter exit: then just kill
    locked = _LOCK.acquire(timeout=5)
    try:
        if _JVM is not None:
            if locked:
                _JVM.close()
            else:
                _JVM.kill()
            _JVM = None
    finally:
        if locked:
            _LOCK.release()


def score_line(prediction: str, reference: str) -> str:
    """The ``SCORE`` line pycocoevalcap would send, made safe for the line protocol."""
    hyp = prediction.translate(_LINE_BREAKS).replace("|||", "").replace("  ", " ")
    ref = reference.translate(_LINE_BREAKS).replace("|||", "")
    return " ||| ".join(("SCORE", ref, hyp))


def _java_double(x: float) -> str:
    # repr is the shortest round-tripping text, which Java parses back to the same double
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def _floats(answer: str, what: str) -> list[float]:
    try:
        return [float(v) for v in answer.split()]
    except ValueError:
        raise MeteorError(f"the METEOR jar answered {answer[:200]!r} to {what}") from None


SUM_ROWS = 2000   # row sets per EVAL request of MeteorJar.score_from_sums

# The jar's scoring parameters for ``-l en`` (default task "rank"), as it prints them without
# -stdio: "Parameters: 0.85 0.2 0.6 0.75" (alpha beta gamma delta), "Weights: 1.0 0.6 0.8 0.6"
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.2, 0.6, 0.75
STAGE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)          # exact, stem, synonym, paraphrase
CHUNKS = 20                                   # column of the chunk count
_TEST_MATCHES = [4 + 4 * k + j for k in range(4) for j in (0, 2)]   # content, function
_REF_MATCHES = [5 + 4 * k + j for k in range(4) for j in (0, 2)]


def _check_stats(stats: np.ndarray) -> np.ndarray:
    stats = np.asarray(stats, dtype=np.float64)
    if stats.ndim != 2 or stats.shape[1] != N_STATS or len(stats) == 0:
        raise ValueError(f"METEOR needs a non-empty (n, {N_STATS}) statistics matrix, "
                         f"got shape {stats.shape}")
    return stats


def _perfect(stats: np.ndarray) -> np.ndarray:
    """Rows matched perfectly: all test and all reference words matched, in one chunk (the
    test the jar makes on a segment before adding its chunks, and on a corpus before scoring)."""
    return ((stats[:, _TEST_MATCHES].sum(axis=1) == stats[:, 0])
            & (stats[:, _REF_MATCHES].sum(axis=1) == stats[:, 1]) & (stats[:, CHUNKS] == 1))


def corpus_rows(stats: np.ndarray) -> np.ndarray:
    """The rows whose column sums are the jar's corpus statistics: a copy of ``stats`` with the
    chunk of perfectly matched rows set to 0 (the jar adds no chunk for them). A row's own
    score is unchanged (its fragmentation is 0 either way) and applying it twice changes
    nothing."""
    rows = np.array(stats, dtype=np.float64)
    rows[_perfect(rows), CHUNKS] = 0.0
    return rows


def meteor_scores(sums: np.ndarray) -> np.ndarray:
    """METEOR of each row of summed statistics (R, 23) -> (R,): the jar's scoring of one
    statistics record, operation for operation (a NaN score becomes 0, as in the jar)."""
    s = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    test_len, ref_len, test_fn, ref_fn = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
    test_w = np.zeros(len(s))
    ref_w = np.zeros(len(s))
    for k, w in enumerate(STAGE_WEIGHTS):         # the jar's order: content stages first
        test_w = test_w + s[:, 4 + 4 * k] * w * DELTA
    for k, w in enumerate(STAGE_WEIGHTS):
        ref_w = ref_w + s[:, 5 + 4 * k] * w * DELTA
    for k, w in enumerate(STAGE_WEIGHTS):
        test_w = test_w + s[:, 6 + 4 * k] * w * (1 - DELTA)
    for k, w in enumerate(STAGE_WEIGHTS):
        ref_w = ref_w + s[:, 7 + 4 * k] * w * (1 - DELTA)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = test_w / (DELTA * (test_len - test_fn) + (1 - DELTA) * test_fn)
        recall = ref_w / (DELTA * (ref_len - ref_fn) + (1 - DELTA) * ref_fn)
        f_mean = 1.0 / ((1 - ALPHA) / precision + ALPHA / recall)
        frag = np.where(_perfect(s), 0.0, s[:, CHUNKS] / ((s[:, 21] + s[:, 22]) / 2.0))
        score = f_mean * (1 - GAMMA * np.power(frag, BETA))
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


@NLG_METRICS.register("METEOR")
class Meteor(MetricFamily):
    """METEOR 1.5: statistics from the jar, scores from statistics in numpy (module docstring)."""

    family = "METEOR"
    names = ("METEOR",)
    stat_names = tuple(f"s{i}" for i in range(N_STATS))
    impl = "meteor-1.5.jar(pycocoevalcap-1.2)"

    def unavailable_reason(self) -> str | None:
        return unavailable_reason()

    def resampling_unavailable_reason(self) -> str | None:
        return None                    # scoring statistics needs no JVM

    def stats(self, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        lines = [score_line(p, r) for p, r in zip(predictions, references)]
        answers = _ask(lines, len(lines))
        out = np.zeros((len(lines), N_STATS), dtype=np.float64)
        for i, answer in enumerate(answers):
            values = _floats(answer, f"report {i}")
            if len(values) != N_STATS:
                raise MeteorError(f"the METEOR jar answered {len(values)} numbers for report {i},"
                                  f" expected {N_STATS}: {answer[:200]!r}")
            out[i] = values
        return out

    def segment_and_corpus(self, stats: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-report METEOR and the corpus METEOR of a statistics matrix, asked of the jar
        (``EVAL``): the reference that :meth:`score_from_stats` is checked against."""
        stats = _check_stats(stats)
        line = "EVAL ||| " + " ||| ".join(" ".join(map(_java_double, row))
                                          for row in stats.tolist())
        answers = _ask([line], len(stats) + 1)
        values = [_floats(a, "EVAL") for a in answers]
        if any(len(v) != 1 for v in values):
            raise MeteorError(f"unexpected EVAL answer from the METEOR jar: {answers[:3]!r}")
        return np.array([v[0] for v in values[:-1]]), values[-1][0]

    def segment_scores(self, stats: np.ndarray) -> np.ndarray:
        """Per-report METEOR (what the jar's ``EVAL`` answers per segment)."""
        return meteor_scores(_check_stats(stats))

    def summable_stats(self, stats: np.ndarray) -> np.ndarray:
        return corpus_rows(stats)

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        stats = _check_stats(stats)
        return {"METEOR": float(meteor_scores(corpus_rows(stats).sum(axis=0))[0])}

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        """``sums``: column sums of :meth:`summable_stats` rows (:func:`corpus_rows`)."""
        return {"METEOR": meteor_scores(sums)}

    def resampling_fields(self) -> tuple[tuple[str, str], ...]:
        # resampled scores: this module's formula on summed corpus rows (= the jar's EVAL
        # corpus score of the resampled reports); before: the jar on one summed segment
        return (("resample", "sums=meteor-1.5-corpus"),)


class MeteorJar(Meteor):
    """The previous scoring, kept for benchmarks and checks (not registered): every score asked
    of the jar, a row set of resampled statistics sent as one segment holding their column sums
    (which, unlike the jar's corpus score, counts the chunks of perfectly matched reports)."""

    def resampling_unavailable_reason(self) -> str | None:
        return self.unavailable_reason()

    def summable_stats(self, stats: np.ndarray) -> np.ndarray:
        return np.asarray(stats, dtype=np.float64)

    def score_from_stats(self, stats: np.ndarray) -> dict[str, float]:
        return {"METEOR": self.segment_and_corpus(stats)[1]}

    def score_from_sums(self, sums: np.ndarray, n: int) -> dict[str, np.ndarray]:
        sums = np.atleast_2d(sums)
        parts = [self.segment_and_corpus(sums[lo:lo + SUM_ROWS])[0]
                 for lo in range(0, len(sums), SUM_ROWS)]
        return {"METEOR": np.concatenate(parts)}

    def resampling_fields(self) -> tuple[tuple[str, str], ...]:
        return ()
