"""Crash soak: SIGKILL checkpointed runs thousands of times, then check every store.

The procedure of `tests/test_crash.py` at scale. For each store kind, sessions
are started in child processes (`tests/crash_child.py`), killed with SIGKILL
after random delays (before the first checkpoint, mid-superstep, mid-save,
around the end) 1 to 4 times each, then left to complete; each session's
store is then checked: every checkpoint loads and decodes, the checkpoints
form one unbroken chain (no superstep lost or committed twice), and the
output equals an uninterrupted run's, recorded exactly once.

Usage::

    .venv/bin/python scripts/crash_soak.py --kills 1000 --store both --seed 1

Prints progress every 100 kills and a summary per store; exits 1 when any
checkpoint was corrupt or unreadable, any output mismatched, or any other
guarantee broke (the failing sessions' stores are kept for inspection).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import crash_child as cc


@dataclass
class Tally:
    """Counts for one store kind."""

    kind: str
    kills: int = 0
    sessions: int = 0
    completed: int = 0
    launches: int = 0
    checkpoints: int = 0
    corrupt: int = 0
    mismatched: int = 0
    other: int = 0
    reruns: int = 0
    finished_reruns: int = 0
    single_reruns: int = 0
    early: int = 0
    mid: int = 0
    late: int = 0
    failures: list[str] = field(default_factory=list[str])

    @property
    def ok(self) -> bool:
        """True when no guarantee broke."""
        return not (self.corrupt or self.mismatched or self.other)


def soak(kind: str, kills: int, seed: int, workers: int, root: Path) -> Tally:
    """Crash sessions of one store kind until `kills` kills have landed."""
    root.mkdir(parents=True, exist_ok=True)
    ref = cc.reference()
    timing = cc.calibrate(kind, root, ref.outputs, workers)
    print(f"{kind}: calibration {timing}", flush=True)
    tally = Tally(kind)
    lock = threading.Lock()
    next_session = iter(range(10**9))
    started = time.perf_counter()

    def worker() -> None:
        while True:
            with lock:
                if tally.kills >= kills:
                    return
                n = next(next_session)
            rng = random.Random(f"{seed}-{kind}-{n}")
            path = root / f"s{n}" / ("db.sqlite" if kind == "sqlite" else "ckpt")
            path.parent.mkdir()
            max_kills = rng.randint(1, 4)
            cycle, verdict = cc.crash_and_verify(
                kind, path, f"soak-{n}", rng, timing, max_kills, ref
            )
            problems = cycle.problems + verdict.problems
            early, mid, late = cycle.where()
            with lock:
                before = tally.kills
                tally.kills += cycle.kills
                tally.sessions += 1
                tally.completed += bool(cycle.completed)
                tally.launches += cycle.launches
                tally.checkpoints += verdict.checkpoints
                tally.corrupt += len(verdict.corrupt)
                tally.mismatched += len(verdict.mismatched)
                tally.other += len(problems)
                tally.reruns += verdict.reruns
                tally.finished_reruns += verdict.finished_reruns
                tally.single_reruns += verdict.single_reruns
                tally.early += early
                tally.mid += mid
                tally.late += late
                failed = problems + verdict.corrupt + verdict.mismatched
                if failed:
                    tally.failures.append(f"session {n} ({path}): " + "; ".join(failed))
                if before // 100 != tally.kills // 100:
                    print(
                        f"{kind}: {tally.kills} kills, {tally.sessions} sessions, "
                        f"{tally.corrupt} corrupt, {tally.mismatched} mismatched, "
                        f"{tally.other} other problems, {time.perf_counter() - started:.0f} s",
                        flush=True,
                    )
            if not failed:
                shutil.rmtree(path.parent)

    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(worker) for _ in range(workers)]:
            future.result()
    return tally


def main() -> int:
    """Parse the arguments, soak each store, print the summary; 1 on any failure."""
    parser = argparse.ArgumentParser(
        description="SIGKILL checkpointed runs at random moments, then check every store."
    )
    parser.add_argument("--kills", type=int, default=1000, help="kills per store (default 1000)")
    parser.add_argument("--store", choices=["sqlite", "file", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="sessions crashed at once")
    parser.add_argument("--dir", type=Path, default=None, help="where stores go (default: temp)")
    args = parser.parse_args()
    kinds = ["file", "sqlite"] if args.store == "both" else [args.store]
    root = Path(tempfile.mkdtemp(prefix="crash-soak-", dir=args.dir))
    started = time.perf_counter()
    tallies = [soak(kind, args.kills, args.seed, args.workers, root / kind) for kind in kinds]
    elapsed = time.perf_counter() - started
    print(f"\nsummary (seed {args.seed}, {elapsed:.0f} s):")
    for t in tallies:
        print(
            f"  {t.kind}: {t.kills} kills ({t.early} before the child's first checkpoint, "
            f"{t.mid} mid-run, {t.late} after the last checkpoint), {t.sessions} sessions, "
            f"{t.completed} completed runs, {t.launches} child runs, {t.checkpoints} checkpoints "
            f"verified, corrupt checkpoints {t.corrupt}, mismatched outputs {t.mismatched}, "
            f"other problems {t.other}, handler re-runs {t.reruns}; re-runs of finished "
            f"activations: {t.finished_reruns} in supersteps of several (the record window), "
            f"{t.single_reruns} in supersteps of one (their record is the checkpoint)"
        )
        for failure in t.failures[:20]:
            print(f"    FAIL {failure}")
    ok = all(t.ok for t in tallies)
    if ok:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"failing stores kept under {root}")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
