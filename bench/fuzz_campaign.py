"""A long fuzz campaign of the CLI: tens of thousands of cases, their outcomes counted.

    uv run python bench/fuzz_campaign.py                    # 21,000 cases, 2 workers
    uv run python bench/fuzz_campaign.py --cases 2000 --workers 1 --out /tmp/fuzz

The cases come from the hypothesis strategies of the test suite: mutated example networks
(tests/test_fuzz.py `cases`), mutated answer sheets (`answer_sheets`), `bpcalc new` options,
networks with huge sizes and counts and hostile data files (tests/test_fuzz_sizes.py). Each
worker process runs its share in-process (bpcalc.cli.run) under an address-space cap
(--cap, 4 GiB by default) with a per-case alarm (--timeout). Nothing stops at a failure:
every outcome is counted, and the first few cases of each bad kind are saved to --out.

Outcomes: exit codes, and these flags (each must be 0): exit 70, a traceback, "out of
memory" (the budget should refuse first), an exit 2 whose message names no file:line:column
nor option, stray stderr (a library's warning), JSON that is not strict, a timeout.
The exit status is 1 when any flag is set.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import re
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARES = {"examples": 6, "sheets": 3, "new": 2, "sizes": 5, "data": 5}  # of 21
BAD = ("exit 70", "traceback", "out of memory", "unlocated", "stray stderr", "bad json", "timeout")
LOCATED = re.compile(r"bpcalc: error: ((<stdin>|\S+\.yaml):\d+:\d+: \S|--[a-z-]+\b|bpcalc new \S)")
CLICK = re.compile(r"Error: (Invalid value for '|No such option|Missing argument|Got unexpected)")


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that bpcalc's boundary does not catch it."""


def classify(args: list[str], code: int, out: str, err: str) -> list[str]:
    """The outcome's labels: 'exit N' and any bad flags."""
    labels = [f"exit {code}"]  # "exit 70" is one of the BAD labels
    if "Traceback" in out + err:
        labels.append("traceback")
    if "out of memory" in err:
        labels.append("out of memory")
    lines = err.strip().splitlines()
    if code == 2:
        if err.startswith("Usage: bpcalc"):
            if not lines or not CLICK.match(lines[-1]):
                labels.append("unlocated")
        elif not lines or not LOCATED.match(lines[-1]):
            labels.append("unlocated")
        body = lines[:-1] if not err.startswith("Usage:") else []
    else:
        body = lines
    ours = ("bpcalc: warning: ", "bpcalc: wrote", "bpcalc: saved", "bpcalc: internal error")
    if any(not line.startswith(ours) for line in body):
        labels.append("stray stderr")
    if code == 0 and args and args[0] == "step" and "--json" in args:
        try:
            json.loads(out, parse_constant=_reject)
        except ValueError:
            labels.append("bad json")
    if code == 0 and args and args[0] == "train" and "--json" in args:
        try:
            for line in out.splitlines():
                json.loads(line, parse_constant=_reject)
        except ValueError:
            labels.append("bad json")
    return labels


def _reject(name: str) -> None:
    raise ValueError(name)


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def worker(
    index: int, plan: dict[str, int], cap: int, timeout: int, out_dir: str, base_seed: int
) -> dict:
    """Run `plan` (campaign -> cases) in this process; return the counts and timings."""
    if cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np
    from hypothesis import HealthCheck, settings

    from tests import test_fuzz as F
    from tests import test_fuzz_sizes as S

    counts: collections.Counter[str] = collections.Counter()
    by_campaign: dict[str, collections.Counter[str]] = {}
    saved: collections.Counter[str] = collections.Counter()
    work = Path(tempfile.mkdtemp(prefix=f"bpcalc-fuzz-{index}-"))
    rng = np.random.default_rng(0)  # the data files test_fuzz's DATA_NETS read
    np.savez(work / "data.npz", x=rng.integers(0, 5, (6, 2, 2)), y=np.array([0, 1, 2, 0, 1, 2]))
    rows = rng.integers(0, 5, (6, 5))
    (work / "data.csv").write_text(
        "a,b,c,d,t\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    )
    S.make_bombs(work)
    case_dir = work / "case"
    case_dir.mkdir()
    signal.signal(signal.SIGALRM, _alarm)

    def one(campaign: str, raw: bytes, args: list[str], files: dict[str, bytes] | None) -> None:
        signal.alarm(timeout)
        try:
            if campaign in ("sizes", "data"):
                code, out, err = S.run_case(case_dir, raw, args, files)
            elif campaign == "examples":
                code, out, err = F.run_cli(raw, args, work)
            else:
                code, out, err = F.run_cli(raw, args)
            labels = classify(args, code, out, err)
        except CaseTimeout:
            code, out, err, labels = -1, "", "", ["timeout"]
        finally:
            signal.alarm(0)
        counts.update(labels)
        counts["cases"] += 1
        by_campaign.setdefault(campaign, collections.Counter()).update(labels[:1])
        for label in labels:
            if label in BAD and saved[label] < 20:
                saved[label] += 1
                name = f"{label.replace(' ', '_')}-{index}-{saved[label]}"
                Path(out_dir, name + ".json").write_text(
                    json.dumps({"campaign": campaign, "args": args, "stderr": err[-2000:]})
                )
                Path(out_dir, name + ".input").write_bytes(raw)
                for fname, data in (files or {}).items():
                    Path(out_dir, f"{name}.{fname}").write_bytes(data)

    cfg = settings(
        max_examples=1,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    strategies = {
        "examples": F.cases(),
        "sheets": F.answer_sheets(),
        "new": S.st.tuples(
            S.st.sampled_from(["mlp", "cnn", "rnn"]),
            S.st.lists(F.new_options, max_size=3),
            S.st.sampled_from(F.NEW_VALID["--sizes"]) | F.new_values,
        ),
        "sizes": S.sized_networks(),
        "data": S.data_cases(),
    }
    started = time.perf_counter()
    for campaign, n in plan.items():
        if n > 0:
            _campaign(
                campaign,
                strategies[campaign],
                n,
                base_seed + 1000 * index + len(campaign),
                cfg,
                one,
            )
    return {
        "counts": dict(counts),
        "by_campaign": {k: dict(v) for k, v in by_campaign.items()},
        "seconds": time.perf_counter() - started,
    }


def _campaign(campaign: str, strategy: Any, n: int, seed_: int, cfg: Any, one: Any) -> None:
    """Draw `n` cases of `strategy` (hypothesis, seeded) and run each with `one`."""
    from hypothesis import given, seed, settings

    @seed(seed_)
    @settings(cfg, max_examples=n)
    @given(strategy)
    def run_all(case: Any) -> None:
        if campaign == "new":
            kind, options, sizes = case
            if kind == "mlp":
                options = [("--sizes", sizes), *options]
            one(campaign, b"", ["new", kind] + [f"{o}={v}" for o, v in options], None)
        elif campaign == "data":
            files, raw, args = case
            one(campaign, raw, args, files)
        else:
            raw, args = case
            one(campaign, raw, args, None)

    run_all()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=21000, help="cases in all (default 21000)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--cap", type=float, default=4, help="GiB of address space a worker may use"
    )
    parser.add_argument("--timeout", type=int, default=60, help="seconds a case may take")
    parser.add_argument("--out", default="fuzz-campaign", help="folder for the bad cases found")
    parser.add_argument("--seed", type=int, default=0, help="another seed, other cases")
    opts = parser.parse_args()
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    total = sum(SHARES.values())
    plans = []
    for w in range(opts.workers):
        plan = {}
        for name, share in SHARES.items():
            n = opts.cases * share // total
            plan[name] = n // opts.workers + (1 if w < n % opts.workers else 0)
        plans.append(plan)
    cap = int(opts.cap * (1 << 30))
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(opts.workers) as pool:
        results = pool.starmap(
            worker,
            [
                (i, plan, cap, opts.timeout, opts.out, 10**6 * opts.seed)
                for i, plan in enumerate(plans)
            ],
        )
    wall = time.perf_counter() - started
    counts: collections.Counter[str] = collections.Counter()
    campaigns: dict[str, collections.Counter[str]] = {}
    for r in results:
        counts.update(r["counts"])
        for k, v in r["by_campaign"].items():
            campaigns.setdefault(k, collections.Counter()).update(v)
    print(
        f"{counts['cases']} cases in {wall:.0f} s with {opts.workers} workers "
        f"(cap {opts.cap:g} GiB, timeout {opts.timeout} s)"
    )
    exits = sorted((k for k in counts if k.startswith("exit ")), key=lambda k: int(k.split()[1]))
    print("exit codes:", ", ".join(f"{k}: {counts[k]}" for k in exits))
    for name, c in sorted(campaigns.items()):
        print(f"  {name:9s} " + ", ".join(f"{k}: {v}" for k, v in sorted(c.items())))
    print("flags:", ", ".join(f"{k}: {counts.get(k, 0)}" for k in BAD))
    summary = {
        "cases": counts["cases"],
        "seconds": round(wall, 1),
        "counts": dict(counts),
        "campaigns": {k: dict(v) for k, v in campaigns.items()},
    }
    Path(opts.out, "summary.json").write_text(json.dumps(summary, indent=1))
    return 1 if any(counts.get(k, 0) for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
