"""Run stepgraph, the asyncio floor and the peer engines side by side (`make bench`).

Every (engine, workload, variant) case runs in its own process, as
shared/bench/workloads.md requires; engines are interleaved within each
workload (and their order rotates from pass to pass), so every engine is
measured seconds, not minutes, away from the floor it is compared with.
Peers (agent-framework, langgraph) run from a separate virtual environment
given by PEERS_PY=/path/to/python, else <repo>/.peers/bin/python if it exists;
without one, only stepgraph and the floor run.

Raw JSON lines go to benchmarks/results/run-<stamp>.jsonl (summarize.py of
the shared folder reads them too), the markdown table to stdout and to
run-<stamp>.md, progress to stderr. Targets are reported, never asserted; the
exit status is non-zero only when a stepgraph case failed or gave a wrong
result.

    .venv/bin/python benchmarks/run.py                  # 3 passes, full reps
    .venv/bin/python benchmarks/run.py --passes 1 --quick
    PEERS_PY=/path/to/peers/bin/python .venv/bin/python benchmarks/run.py --passes 1
"""

import argparse
import json
import os
import platform
import resource
import statistics as st
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_BENCH = REPO.parent / "shared" / "bench"
HERE = REPO / "benchmarks"
RESULTS = HERE / "results"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "W8")


@dataclass(frozen=True)
class Engine:
    label: str  # column name in the table
    script: Path
    variant: str | None = None  # None: the script's default variant
    peer: bool = False
    module: str = ""  # what a peers environment must be able to import
    src: Path | None = None  # another stepgraph checkout's src/ (the --baseline engine)


ENGINES = {
    "stepgraph": Engine("stepgraph", HERE / "bench_stepgraph.py"),
    "floor": Engine("floor", SHARED_BENCH / "bench_asyncio_floor.py", "direct"),
    "floor-gather": Engine("floor-gather", SHARED_BENCH / "bench_asyncio_floor.py", "gather"),
    "agent-framework": Engine(
        "agent-framework", SHARED_BENCH / "bench_af.py", peer=True, module="agent_framework"
    ),
    "langgraph": Engine(
        "langgraph", SHARED_BENCH / "bench_langgraph.py", peer=True, module="langgraph"
    ),
    "llama-index": Engine(
        "llama-index", SHARED_BENCH / "bench_llamaindex.py", peer=True, module="workflows"
    ),
}
DEFAULT_PEERS = "agent-framework,langgraph"

# W4 runs several variants per engine, named as shared/bench/run_all.sh names them, grouped by
# kind of storage so that each stepgraph store is measured next to its counterparts; the order
# rotates within a group from pass to pass. (column, variant); None: the script's default.
W4_GROUPS: tuple[tuple[tuple[str, str | None], ...], ...] = (
    (
        ("stepgraph", "mem"),
        ("floor", "mem"),
        ("agent-framework", "mem"),
        ("langgraph", "mem"),
        ("langgraph", "mem-sync"),
        ("llama-index", None),  # reports n/a: no built-in per-step checkpoint storage
    ),
    (("stepgraph", "file"), ("floor", "disk"), ("agent-framework", "disk")),
    (
        ("stepgraph", "sqlite"),
        ("floor", "sqlite"),
        ("langgraph", "disk"),
        ("langgraph", "disk-sync"),
        ("langgraph", "disk-invoke"),
    ),
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- environment
def find_peers_python() -> Path | None:
    env = os.environ.get("PEERS_PY")
    if env:
        py = Path(env)
        if not py.exists():
            log(f"warning: PEERS_PY={env} does not exist; running without peers")
            return None
        return py
    default = REPO / ".peers" / "bin" / "python"
    return default if default.exists() else None


def peer_version(py: Path, engine: Engine) -> str | None:
    """Import the peer's package in the peers environment; its version, or None if it fails."""
    dist = {"agent_framework": "agent-framework-core", "workflows": "llama-index-workflows"}
    code = (
        f"import {engine.module}; from importlib.metadata import version; "
        f"print(version({dist.get(engine.module, engine.module)!r}))"
    )
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        log(f"warning: {py} cannot import {engine.module}: {r.stderr.strip()[-300:]}")
        return None
    return r.stdout.strip()


def git(*args: str) -> str:
    try:
        r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def stat_sample() -> tuple[int, int] | None:
    """(total, idle + iowait) jiffies of all CPUs from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(v[:8]), v[3] + v[4]


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cpu_busy(interval: float = 0.25) -> float | None:
    """CPU cores busy over `interval` seconds (every process; this one sleeps meanwhile)."""
    a = stat_sample()
    time.sleep(interval)
    b = stat_sample()
    if a is None or b is None or b[0] == a[0]:
        return None
    return (1 - (b[1] - a[1]) / (b[0] - a[0])) * (os.cpu_count() or 1)


def disturbance(rec: dict[str, Any]) -> float:
    """Cores other processes kept busy just before or during a case."""
    return max(rec.get("busy_cores_before") or 0.0, rec.get("others_busy_cores") or 0.0)


def wait_quiet(limit: float, busy_max: float) -> float | None:
    """Wait up to `limit` seconds for other processes to leave the CPUs; the last reading."""
    deadline = time.monotonic() + limit
    busy = cpu_busy()
    while busy is not None and busy > busy_max and time.monotonic() < deadline:
        time.sleep(1.0)
        busy = cpu_busy()
    return busy


# ---------------------------------------------------------------- running cases
def cases(workload: str, labels: list[str], p: int) -> list[tuple[str, str | None]]:
    """(column, variant) of every case of `workload` in pass `p`, in the order they run."""
    if workload == "W8":  # stepgraph measures its floor (asyncio.gather) in its own process
        return [("stepgraph", None)] if "stepgraph" in labels else []
    if workload != "W4":
        k = (p - 1) % len(labels)
        return [(lb, ENGINES[lb].variant) for lb in labels[k:] + labels[:k]]
    out: list[tuple[str, str | None]] = []
    for group in W4_GROUPS:
        here = [c for c in group if c[0] in labels]
        k = (p - 1) % len(here) if here else 0
        out += here[k:] + here[:k]
    return out


def run_case(
    py: Path, engine: Engine, workload: str, variant: str | None, reps: list[str], timeout: float
) -> dict[str, Any]:
    cmd = [str(py), str(engine.script), workload, *reps]
    if variant:
        cmd += ["--variant", variant]
    st0, ch0 = stat_sample(), children_cpu()
    t0 = time.perf_counter()
    env = None if engine.src is None else {**os.environ, "PYTHONPATH": str(engine.src)}
    cwd = REPO if engine.src is None else engine.src.parent
    try:
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = -1, "", f"timed out after {timeout:.0f} s: {e}"
    wall = time.perf_counter() - t0
    st1, ch1 = stat_sample(), children_cpu()
    others = None
    if st0 is not None and st1 is not None and st1[0] > st0[0]:
        # CPU time of everything but the case itself, spread over the case's wall time.
        busy_s = ((st1[0] - st0[0]) - (st1[1] - st0[1])) / os.sysconf("SC_CLK_TCK")
        others = max(0.0, (busy_s - (ch1 - ch0)) / wall)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    rec: dict[str, Any] | None = None
    if lines:
        try:
            rec = json.loads(lines[-1])
        except json.JSONDecodeError:
            rec = None
    if rc != 0 or rec is None or not rec.get("verified"):
        reason = (rec or {}).get("error") or err.strip()[-600:] or f"exit status {rc}"
        rec = {
            "engine": engine.label,
            "workload": workload,
            "variant": variant,
            "verified": False,
            "rc": rc,
            "error": reason,
        }
    elif err.strip():  # warnings or other noise on stderr of a passing case
        rec["stderr"] = err.strip()[-600:]
    rec["case"] = engine.label
    rec["case_variant"] = variant if workload == "W4" else None  # W4 runs several per engine
    rec["cmd"] = " ".join(cmd)
    rec["wall_seconds"] = round(wall, 3)
    rec["others_busy_cores"] = None if others is None else round(others, 2)
    return rec


def case_name(rec: dict[str, Any]) -> str:
    v = rec.get("case_variant")
    return f"{rec['case']} {v}" if v else str(rec["case"])


def headline(rec: dict[str, Any]) -> str:
    if not rec.get("verified"):
        return f"FAILED: {str(rec.get('error'))[:200]}"
    w = rec["workload"]
    if w in ("W1", "W3"):
        return f"{rec['per_superstep_us']:.1f} µs/superstep"
    if w == "W4":
        if rec.get("per_superstep_us") is None:
            return f"n/a: {rec.get('reason', 'no per-step checkpoints')}"
        size = rec.get("log_bytes_per_checkpoint") or rec.get("record_bytes_per_checkpoint")
        return f"{rec['per_superstep_us']:,.1f} µs/superstep" + (
            f", {size:,.0f} B stored/checkpoint" if size else ""
        )
    if w == "W2":
        return f"{rec['seconds'] * 1e3:.2f} ms/run"
    if w == "W5":
        return f"{rec['runs_per_sec']:,.0f} runs/s"
    if w == "W8":
        return (
            f"w8a {rec['w8a_ms']:.1f} ms, w8b {rec['w8b_ms']:.1f} ms "
            f"({rec['w8b_ratio']:.2f}x asyncio.gather)"
        )
    return (
        f"first event {rec['first_user_event_ms']:.2f} ms, "
        f"w6b {rec['w6b_overhead_per_superstep_us']:.0f} µs/superstep"
    )


# ---------------------------------------------------------------- the table
@dataclass(frozen=True)
class Row:
    workload: str
    name: str
    get: Callable[[dict[str, Any]], float | None]
    ratio: str | None  # "time": bigger is slower; "rate": bigger is faster; None: no ratio
    fmt: Callable[[float], str]
    target: str = ""
    # (stepgraph, floor) -> met? (None: cannot tell)
    meets: Callable[[float, float | None], bool | None] | None = None
    # W4: the variant each column shows (column -> variant); a column not listed stays blank.
    variants: dict[str, str | None] | None = None
    needs: str | None = None  # shown only when this column runs (rows about one peer's variant)


def f_num(x: float) -> str:
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def field(*names: str, scale: float = 1.0) -> Callable[[dict[str, Any]], float | None]:
    """The first of `names` the record has (engines name the same figure differently)."""

    def get(r: dict[str, Any]) -> float | None:
        for name in names:
            v = r.get(name)
            if v is not None and not isinstance(v, bool):
                return float(v) * scale
        return None

    return get


BUSY_MAX = 0.5  # cores busy with other processes above which a case counts as disturbed
W6B_SLACK_US = 100.0  # "near the floor": at most this much more overhead per superstep
# W6b times 20 sleeps of 5 ms; this VM's timer overshoots each by 120-300 µs from run to
# run, so the default 5 reps give medians too noisy to compare (for every engine alike).
W6_REPS = ["--reps", "25"]
KIB = 1024
W4_MEM = {"stepgraph": "mem", "floor": "mem"}
W4_SQLITE = {"stepgraph": "sqlite", "floor": "sqlite"}

ROWS = [
    Row(
        "W1",
        "chain N=100: µs / superstep",
        field("per_superstep_us"),
        "time",
        f_num,
        "≤ 10 µs",
        lambda sg, fl: sg <= 10,
    ),
    Row(
        "W1", "chain: event-loop iterations / superstep", field("loop_iters_per_step"), None, f_num
    ),
    Row("W1", "chain: asyncio Tasks / superstep", field("tasks_per_step"), None, f_num),
    Row(
        "W1",
        "chain: peak RSS of the process, MB",
        field("peak_rss_mb"),
        "time",
        f_num,
        "≤ 35 MB",
        lambda sg, fl: sg <= 35,
    ),
    Row(
        "W2",
        "fan-out/in W=100: ms / run",
        field("seconds", scale=1e3),
        "time",
        f_num,
        "≤ 1 ms",
        lambda sg, fl: sg <= 1.0,
    ),
    Row(
        "W3",
        "ping-pong N=1000: µs / superstep",
        field("per_superstep_us"),
        "time",
        f_num,
        "≤ 10 µs",
        lambda sg, fl: sg <= 10,
    ),
    Row("W3", "loop: event-loop iterations / superstep", field("loop_iters_per_step"), None, f_num),
    Row("W3", "loop: asyncio Tasks / superstep", field("tasks_per_step"), None, f_num),
    Row(
        "W4",
        "in memory: µs / superstep",
        field("per_superstep_us"),
        "time",
        f_num,
        "≤ 30 µs",
        lambda sg, fl: sg <= 30,
        {**W4_MEM, "agent-framework": "mem", "langgraph": "mem", "llama-index": None},
    ),
    Row(
        "W4",
        "in memory, langgraph mem-sync: µs / superstep",
        field("per_superstep_us"),
        "time",
        f_num,
        variants={**W4_MEM, "langgraph": "mem-sync"},
        needs="langgraph",
    ),
    Row(
        "W4",
        "file: µs / superstep (floor, agent-framework: disk, no fsync)",
        field("per_superstep_us"),
        "time",
        f_num,
        "≤ 300 µs",
        lambda sg, fl: sg <= 300,
        {"stepgraph": "file", "floor": "disk", "agent-framework": "disk"},
    ),
    Row(
        "W4",
        "SQLite, fsync per commit: µs / superstep (langgraph: disk)",
        field("per_superstep_us"),
        "time",
        f_num,
        "≤ 400 µs",
        lambda sg, fl: sg <= 400,
        {**W4_SQLITE, "langgraph": "disk"},
    ),
    Row(
        "W4",
        "SQLite, langgraph disk-sync: µs / superstep",
        field("per_superstep_us"),
        "time",
        f_num,
        variants={**W4_SQLITE, "langgraph": "disk-sync"},
        needs="langgraph",
    ),
    Row(
        "W4",
        "SQLite, langgraph disk-invoke: µs / superstep",
        field("per_superstep_us"),
        "time",
        f_num,
        variants={**W4_SQLITE, "langgraph": "disk-invoke"},
        needs="langgraph",
    ),
    Row(
        "W4",
        "checkpoints per run of 100 supersteps",
        field("checkpoints_per_run"),
        None,
        f_num,
        variants={**W4_MEM, "agent-framework": "mem", "langgraph": "mem"},
    ),
    Row(
        "W4",
        "file: bytes stored / checkpoint",
        field("log_bytes_per_checkpoint", "avg_checkpoint_file_bytes"),
        "time",
        f_num,
        "≤ 1 KiB",
        lambda sg, fl: sg <= KIB,
        {"stepgraph": "file", "agent-framework": "disk"},
    ),
    Row(
        "W4",
        "SQLite: record bytes / checkpoint",
        field("record_bytes_per_checkpoint"),
        "time",
        f_num,
        "≤ 1 KiB",
        lambda sg, fl: sg <= KIB,
        {"stepgraph": "sqlite"},
    ),
    Row(
        "W4",
        "SQLite: WAL bytes / checkpoint (whole pages)",
        field("wal_bytes_per_checkpoint"),
        None,
        f_num,
        variants={"stepgraph": "sqlite"},
    ),
    Row(
        "W5",
        "1000 concurrent 3-node runs: runs / s",
        field("runs_per_sec"),
        "rate",
        f_num,
        "≥ 40,000",
        lambda sg, fl: sg >= 40_000,
    ),
    Row(
        "W6",
        "a: first user event, ms",
        field("first_user_event_ms"),
        "time",
        f_num,
        "≤ 0.2 ms",
        lambda sg, fl: sg <= 0.2,
    ),
    Row(
        "W6",
        "b: overhead above 5 ms sleep, µs / superstep",
        field("w6b_overhead_per_superstep_us"),
        "time",
        f_num,
        f"≤ floor + {W6B_SLACK_US:.0f} µs",
        lambda sg, fl: None if fl is None else sg - fl <= W6B_SLACK_US,
    ),
    Row(
        "W8",
        "a: 100 items awaiting 10 ms each, wall ms",
        field("w8a_ms"),
        None,
        f_num,
        "≤ 20 ms",
        lambda sg, fl: sg <= 20.0,
    ),
    Row("W8", "b: 1,000 no-op items, ms / run", field("w8b_ms"), None, f_num),
    Row(
        "W8",
        "b: ratio to asyncio.gather of 1,000 tasks (same process)",
        field("w8b_ratio"),
        None,
        f_num,
        "≤ 3x",
        lambda sg, fl: sg <= 3.0,
    ),
]

W4_NOTES = [
    "",
    "W4 (a checkpoint after every superstep; 10 KiB payload set once, counter bumped by every "
    "node): stepgraph mem = MemoryCheckpointStore; file = FileCheckpointStore, one append-only "
    "log per session, fdatasync per checkpoint; sqlite = SqliteCheckpointStore, WAL, "
    "synchronous=FULL (fsync per commit). stepgraph's saves run inline: the next superstep waits "
    "for the fsync. floor disk = pickle to a temp file + rename per checkpoint, no fsync; floor "
    "sqlite = INSERT + COMMIT per checkpoint, WAL, synchronous=FULL. agent-framework disk = one "
    "JSON file per checkpoint, no fsync. langgraph disk = AsyncSqliteSaver (WAL, default "
    "synchronous=FULL) with durability async (the write overlaps the next step), disk-sync = "
    "durability sync, disk-invoke = sync SqliteSaver under graph.invoke.",
    "W4 bytes: stepgraph file = growth of the session's log ÷ its checkpoints (frames of the "
    "records: a delta with only the changed parts, a full record at least every 32); "
    "agent-framework = mean size of its checkpoint files; SQLite record = "
    "sum(length(record)) of the session's rows ÷ checkpoints; SQLite WAL = growth of the -wal "
    "file in one extra untimed run started from an empty WAL ÷ checkpoints (SQLite writes "
    "whole pages per commit, 4 KiB each plus a 24-byte frame header, whatever the record's "
    "size). The 1 KiB target applies to the records, not to the WAL pages.",
]


def med(xs: list[float]) -> float | None:
    return st.median(xs) if xs else None


def ratio(a: float | None, b: float | None, kind: str) -> float | None:
    """Time ratio a/b (> 1: a is slower/bigger); for rates the inverse."""
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return a / b if kind == "time" else b / a


def build_table(
    recs: list[dict[str, Any]], labels: list[str], passes: int, workloads: list[str]
) -> tuple[list[str], list[str]]:
    ok: dict[tuple[str, str, str | None, int], dict[str, Any]] = {}
    for r in recs:
        if r.get("verified"):
            ok[(r["workload"], r["case"], r.get("case_variant"), r["pass"])] = r
    peers = [lb for lb in labels if ENGINES[lb].peer]
    floors = [lb for lb in ("floor", "floor-gather") if lb in labels]

    head = ["workload", "metric", *labels]
    head += [f"stepgraph ÷ {f}" for f in floors] + [f"{p} ÷ stepgraph" for p in peers]
    head += ["target", "stepgraph vs target"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * 2 + "---:|" * (len(head) - 4) + "---|---|",
    ]
    verdicts: list[str] = []

    def shown(row: Row, label: str) -> bool:
        return row.variants is None or label in row.variants

    def vals(row: Row, label: str) -> dict[int, float]:
        out: dict[int, float] = {}
        if not shown(row, label):
            return out
        variant = row.variants[label] if row.variants is not None else None
        for p in range(1, passes + 1):
            r = ok.get((row.workload, label, variant, p))
            v = row.get(r) if r is not None else None
            if v is not None:
                out[p] = v
        return out

    def per_pass_ratio(row: Row, num: str, den: str) -> float | None:
        assert row.ratio is not None
        a, b = vals(row, num), vals(row, den)
        rs = [x for p in a if p in b and (x := ratio(a[p], b[p], row.ratio)) is not None]
        return med(rs)

    for row in ROWS:
        if row.workload not in workloads or (row.needs and row.needs not in labels):
            continue
        cells = [row.workload, row.name]
        medians = {lb: med(list(vals(row, lb).values())) for lb in labels}
        cells += [
            row.fmt(m) if m is not None else "n/a" if shown(row, lb) else ""
            for lb, m in medians.items()
        ]
        for f in floors:
            x = per_pass_ratio(row, "stepgraph", f) if row.ratio else None
            cells.append(f"{x:.2f}\u00d7" if x is not None else "")
        for p in peers:
            x = per_pass_ratio(row, p, "stepgraph") if row.ratio else None
            cells.append(f"{x:.1f}\u00d7" if x is not None else "")
        verdict = ""
        sg_v, fl_v = medians.get("stepgraph"), medians.get("floor")
        if row.meets is not None:
            met = None if sg_v is None else row.meets(sg_v, fl_v)
            verdict = "n/a" if met is None else "met" if met else "**missed**"
            verdicts.append(f"{row.workload} {row.name}: {verdict.strip('*').upper()}")
        cells += [row.target, verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return lines, verdicts


# ---------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="stepgraph vs the asyncio floor vs peer engines, W1-W6 of "
        "shared/bench/workloads.md.",
        epilog="Peers: PEERS_PY=/path/to/python, else <repo>/.peers/bin/python when it exists.",
    )
    p.add_argument("--passes", type=int, default=3, help="passes over all cases (default 3)")
    p.add_argument(
        "--quick", action="store_true", help="3 timed reps per case instead of the defaults"
    )
    p.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    p.add_argument(
        "--peers",
        default=DEFAULT_PEERS,
        help=f"comma-separated peer engines (default {DEFAULT_PEERS}; also llama-index)",
    )
    p.add_argument(
        "--no-peers", action="store_true", help="skip peers even if an environment exists"
    )
    p.add_argument("--timeout", type=float, default=240, help="seconds per case (default 240)")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=10,
        help="before each case wait up to this many seconds while other processes keep more "
        f"than {BUSY_MAX} CPU cores busy (default 10; 0: never wait)",
    )
    p.add_argument("--out", type=Path, default=None, help="results .jsonl path")
    p.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of stepgraph (e.g. a git worktree of the commit before a "
        "change), run as engine 'baseline' beside this one: 'baseline ÷ stepgraph' > 1 "
        "means this checkout is faster",
    )
    a = p.parse_args()
    a.workloads = [w.strip().upper() for w in a.workloads.split(",") if w.strip()]
    bad = [w for w in a.workloads if w not in WORKLOADS]
    if bad:
        p.error(f"unknown workloads {bad}")
    if a.passes < 1:
        p.error("--passes must be >= 1")
    a.peers = [] if a.no_peers else [x.strip() for x in a.peers.split(",") if x.strip()]
    for x in a.peers:
        if x not in ENGINES or not ENGINES[x].peer:
            p.error(f"unknown peer {x!r}")
    return a


def add_peers(
    names: list[str], labels: list[str], pythons: dict[str, Path], versions: dict[str, str]
) -> Path | None:
    """Add the peer engines whose package the peers environment imports; its python."""
    peers_py = find_peers_python() if names else None
    if names and peers_py is None:
        log("note: no peers environment (PEERS_PY or .peers/bin/python): stepgraph and floor only")
    for name in names:
        if peers_py is None:
            break
        v = peer_version(peers_py, ENGINES[name])
        if v is not None:
            labels.append(name)
            pythons[name] = peers_py
            versions[name] = v
    return peers_py


def add_baseline(
    base: Path, labels: list[str], pythons: dict[str, Path], versions: dict[str, str], py: Path
) -> None:
    """Run the checkout `base` too, as engine 'baseline' (compared like a peer)."""
    ENGINES["baseline"] = Engine(
        "baseline", base / "benchmarks" / "bench_stepgraph.py", peer=True, src=base / "src"
    )
    labels.append("baseline")
    pythons["baseline"] = py
    versions["baseline"] = git("-C", str(base), "rev-parse", "--short", "HEAD")


def main() -> int:
    a = parse_args()
    if not (SHARED_BENCH / "benchcommon.py").is_file():
        log(f"error: the shared benchmarks are missing: {SHARED_BENCH} (expected beside the repo)")
        return 2
    own_py = Path(sys.executable)
    labels = ["stepgraph", "floor", "floor-gather"]
    pythons = dict.fromkeys(labels, own_py)
    versions: dict[str, str] = {}
    peers_py = add_peers(a.peers, labels, pythons, versions)

    if a.baseline is not None:
        add_baseline(a.baseline.resolve(), labels, pythons, versions, own_py)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = a.out or RESULTS / f"run-{stamp}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    md_path = out.with_suffix(".md")
    reps = ["--reps", "3"] if a.quick else []
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "src"))
    load0 = os.getloadavg()
    meta = {
        "stamp": stamp,
        "commit": commit,
        "src_dirty": dirty,
        "passes": a.passes,
        "quick": a.quick,
        "workloads": a.workloads,
        "engines": labels,
        "peer_versions": versions,
        "python": platform.python_version(),
        "peers_python": str(peers_py) if peers_py else None,
        "cpus": os.cpu_count(),
        "loadavg_start": load0,
    }
    out.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"results -> {out}")
    log(
        f"# python {meta['python']}, {os.cpu_count()} cpus, commit {commit}"
        f"{' (src has uncommitted changes)' if dirty else ''}, engines: {', '.join(labels)}"
    )
    if os.getloadavg()[0] > 1.0:
        log(f"warning: load average {os.getloadavg()[0]:.2f}: the machine is busy, expect noise")

    recs: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    with out.open("w") as f:
        for p in range(1, a.passes + 1):
            for w in a.workloads:
                for label, variant in cases(w, labels, p):  # the order rotates from pass to pass
                    busy = wait_quiet(a.wait_quiet, BUSY_MAX)
                    case_reps = (reps or W6_REPS) if w == "W6" else reps
                    rec = run_case(pythons[label], ENGINES[label], w, variant, case_reps, a.timeout)
                    rec["pass"] = p
                    rec["busy_cores_before"] = None if busy is None else round(busy, 2)
                    recs.append(rec)
                    f.write(json.dumps(rec) + "\n")
                    f.flush()
                    log(
                        f"[pass {p}/{a.passes}] {w} {case_name(rec):<28} "
                        f"{rec['wall_seconds']:6.1f}s  "
                        f"{headline(rec)}"
                        + (
                            f"  (others busy: {disturbance(rec):.1f} cores)"
                            if disturbance(rec) > BUSY_MAX
                            else ""
                        )
                    )
    log(f"total wall: {time.perf_counter() - t_start:.0f} s")
    load1 = os.getloadavg()
    meta["loadavg_end"] = load1
    out.with_suffix(".meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    lines, verdicts = build_table(recs, labels, a.passes, a.workloads)
    failures = [r for r in recs if not r.get("verified")]
    peer_desc = ", ".join(f"{k} {v}" for k, v in versions.items()) or "none"
    notes = [
        "",
        f"Medians over {a.passes} pass(es){' (--quick: 3 reps per case)' if a.quick else ''}, "
        f"one process per case, engines interleaved per workload; commit {commit}"
        f"{' + uncommitted src changes' if dirty else ''}; Python {meta['python']}, "
        f"{os.cpu_count()} cpus; peers: {peer_desc}.",
        "Ratios are medians of per-pass ratios of time (for W5 of 1/throughput): > 1 means "
        "the numerator is slower (or bigger, for RSS). floor = plain-asyncio Pregel loop that "
        "awaits a lone target inline; floor-gather = one Task per delivery.",
        f"Load average (1 min) {load0[0]:.2f} at the start, {load1[0]:.2f} at the end.",
        f"Raw results: {out}",
    ]
    if "W4" in a.workloads:
        notes += W4_NOTES
    disturbed = [r for r in recs if disturbance(r) > BUSY_MAX]
    if disturbed:
        notes.append(
            f"Noise: during {len(disturbed)} of {len(recs)} cases (or just before), other "
            f"processes kept more than {BUSY_MAX} CPU cores busy ("
            + ", ".join(f"{r['workload']} {case_name(r)}" for r in disturbed[:12])
            + (", ..." if len(disturbed) > 12 else "")
            + "); treat their numbers with care."
        )
    chatty = [r for r in recs if r.get("stderr")]
    if chatty:
        notes.append("")
        notes.append("Passing cases that wrote to stderr (warnings?):")
        notes += [
            f"* pass {r['pass']} {r['workload']} {case_name(r)}: {r['stderr'][-300:]!r}"
            for r in chatty
        ]
    if failures:
        notes.append("")
        notes.append("Failures:")
        notes += [
            f"* pass {r['pass']} {r['workload']} {case_name(r)}: {r.get('error')}" for r in failures
        ]
    text = "\n".join(lines + notes)
    print(text, flush=True)
    md_path.write_text(text + "\n")
    for v in verdicts:
        log(f"target {v}")
    return 1 if any(r["case"] == "stepgraph" for r in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
