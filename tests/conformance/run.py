#!/usr/bin/env python3
"""Run the official MCP conformance suite's client auth scenarios against mcp-oauth.

Suite: @modelcontextprotocol/conformance@0.2.0-alpha.12 (pinned in tests/node/package.json),
run with the pinned Node 22 from tests/node/node_modules/.bin/node (the bundle needs
Node >= 22). Install both with scripts/bootstrap.

Three runs ("wires"), each scenario one `conformance client --scenario` process:

  natural     every client scenario named auth/* in `conformance list --client`, at the
              scenario's own default wire (no --spec-version)
  2026-07-28  the client scenarios of `conformance list --client --requirements 2026-07-28`
  2025-11-25  the same for 2025-11-25

Why not `conformance client --requirements REV` directly: in 0.2.0-alpha.12 it refuses
--scenario/--suite/--spec-version, so nothing can be left out; --expected-failures is a
baseline (listed failures are tolerated but an entry that passes is "stale" and fails
the run, and it only covers scored scenarios), not an exclusion; and it starts every
scenario of the set at once (Promise.all), far too many for 2 cores. For each scenario
it calls exactly what we call: runClient(cmd, scenario, timeout, outdir,
specVersion=REV, force=true), i.e. `--scenario S --spec-version REV --force`. So we
take the set from `list --requirements REV`, drop exclusions, and run it that way with
bounded parallelism.

By default only auth/* scenarios are run in the requirement runs too; --all-scenarios adds
the set's non-auth client scenarios (initialize, tools_call, sse-retry, http-*, ...).

Exclusions: tests/conformance/excluded.txt (one scenario per line, # comments), plus
--exclude NAME (repeatable) and $CONFORMANCE_EXCLUDE (comma/space separated).

Scoring: each scenario's checks.json is read and SUCCESS/FAILURE/WARNING counted (INFO
and SKIPPED are not scored). A scenario is bad if it has any FAILURE or WARNING, if it
produced no checks.json / no checks, or if the client was killed by the suite's timeout.
The client's exit code is shown but not scored, as in --requirements mode (negative
scenarios expect an error exit); a non-zero exit in a scenario that does not allow one
(the suite's single-scenario "OVERALL: FAILED") is listed separately, and --strict-exit
(or CONFORMANCE_STRICT_EXIT=1) makes it fatal.

Exit status: 0 all good; 1 some scenario bad; 2 setup problem (node/suite/client missing).
Results: <output-dir>/<run>/<scenario>/ (checks.json, stdout.txt, stderr.txt from the suite,
conformance.log = the suite's own output) and <output-dir>/summary.json.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
SUITE_VERSION = "0.2.0-alpha.12"
SCORED = ("SUCCESS", "FAILURE", "WARNING")


@dataclass
class Job:
    run: str  # "natural" | "2026-07-28" | "2025-11-25"
    scenario: str
    note: str = ""  # e.g. "not scored: extension" (as listed by the suite)
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    problem: str = ""  # "no checks", "timeout", ...
    client_exit: str = ""
    # The suite's own single-scenario verdict also fails a non-zero client exit, except in
    # scenarios that expect the client to give up (allowClientError). Not scored by
    # --requirements (nor by us unless --strict-exit), but reported.
    exit_not_allowed: bool = False
    wire: str = ""
    seconds: float = 0.0

    strict_exit: bool = False

    @property
    def bad(self) -> bool:
        return (
            bool(self.problem)
            or self.counts.get("FAILURE", 0) > 0
            or self.counts.get("WARNING", 0) > 0
            or (self.strict_exit and self.exit_not_allowed)
        )


def die(msg: str) -> None:
    print(f"conformance: {msg}", file=sys.stderr)
    sys.exit(2)


def suite_argv(node: str) -> list[str]:
    entry = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    if not entry.is_file():
        die(f"{entry} not found: run scripts/bootstrap first")
    return [node, str(entry)]


def list_scenarios(suite: list[str], requirements: str | None) -> list[tuple[str, str, str]]:
    """(name, note, wire) of client scenarios, from `list --client [--requirements REV]`.

    wire: the MCP_CONFORMANCE_PROTOCOL_VERSION the scenario runs at. With --spec-version
    that is the version; without it (natural), 0.2.0-alpha.12 uses 2026-07-28 for scenarios
    introduced in 2026-07-28 (tagged only [2026-07-28]) and 2025-11-25 for everything else,
    the 2025-03-26 back-compat and extension scenarios included."""
    argv = suite + ["list", "--client"] + (["--requirements", requirements] if requirements else [])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if out.returncode != 0:
        die(f"`{' '.join(argv[1:])}` failed:\n{out.stderr}")
    result: list[tuple[str, str, str]] = []
    section = ""
    reason = ""
    for line in out.stdout.splitlines():
        if line.startswith("Client scenarios"):
            section = "client"
        elif line.startswith("Server scenarios"):
            section = "server"
        elif line.startswith("Run and reported, but never scored"):
            section = "not_scored"
        elif section == "not_scored" and (m := re.match(r"^  (\S[^(]*?) \(\d+\):$", line)):
            reason = m.group(1)
        elif section == "client" and (m := re.match(r"^  - (\S+)(?: \[(.*)\])?$", line)):
            tags = (m.group(2) or "").split(",")
            wire = requirements or ("2026-07-28" if tags == ["2026-07-28"] else "2025-11-25")
            result.append((m.group(1), "", wire))
        elif section == "not_scored" and (m := re.match(r"^    - (\S+) \[client\]$", line)):
            result.append((m.group(1), f"not scored: {reason}", requirements or "2025-11-25"))
    if not result:
        die(f"`{' '.join(argv[1:])}` listed no client scenarios:\n{out.stdout}")
    return result


def read_excludes(path: Path | None, extra: list[str]) -> list[str]:
    names: list[str] = []
    if path is not None:
        if not path.is_file():
            die(f"exclusion file {path} not found")
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    for item in extra:
        names.extend(x for x in re.split(r"[,\s]+", item) if x)
    return names


def safe(name: str) -> str:
    return name.replace("/", "__")


_procs: set[subprocess.Popen] = set()
_procs_lock = threading.Lock()


def kill_group_except(pgid: int, keep: int | None) -> None:
    """SIGKILL every process of process group `pgid` (which we created) except `keep`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == keep:
            continue
        try:
            stat = (entry / "stat").read_text()
            # fields after the ")" that ends the command name: state ppid pgrp ...
            pgrp = int(stat.rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if pgrp == pgid:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_job(job: Job, suite: list[str], command: str, out_root: Path, timeout_ms: int) -> Job:
    outdir = out_root / job.run / safe(job.scenario)
    outdir.mkdir(parents=True, exist_ok=True)
    argv = suite + ["client", "--command", command, "--scenario", job.scenario, "--timeout", str(timeout_ms), "-o", str(outdir)]
    if job.run != "natural":
        argv += ["--spec-version", job.run, "--force"]
    t0 = time.monotonic()
    with open(outdir / "conformance.log", "w") as log:
        log.write(f"$ {shlex.join(argv)}\n")
        log.flush()
        # Own process group, so a stuck suite (and the client it spawned) can be killed whole.
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        with _procs_lock:
            _procs.add(p)
        try:
            try:
                p.wait(timeout=timeout_ms / 1000 + 10)
            except subprocess.TimeoutExpired:
                # The suite SIGTERMs only the shell it spawned; a client's leftover children
                # keep its stdout pipe open and the suite waits for them forever. Kill
                # everything in the group except the suite itself, so it can score and write
                # checks.json; kill the suite too if it still does not finish.
                kill_group_except(p.pid, keep=p.pid)
                job.problem = "client timeout (lingering child processes killed)"
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    kill_group_except(p.pid, keep=None)
                    p.wait()
                    job.problem = "suite hung (killed)"
        finally:
            with _procs_lock:
                _procs.discard(p)
    job.seconds = time.monotonic() - t0
    text = (outdir / "conformance.log").read_text(errors="replace")
    if "Client timed out" in text:
        job.problem = job.problem or "client timeout"
    if m := re.search(r"Client exited with code (-?\d+|null)", text):
        job.client_exit = m.group(1)
    job.exit_not_allowed = "CLIENT EXITED WITH ERROR" in text
    checks_files = sorted(outdir.rglob("checks.json"))
    if not checks_files:
        job.problem = job.problem or "no checks.json"
        return job
    checks = json.loads(checks_files[-1].read_text())
    if not checks:
        job.problem = job.problem or "no checks"
    for c in checks:
        job.counts[c.get("status", "?")] = job.counts.get(c.get("status", "?"), 0) + 1
        if c.get("status") in ("FAILURE", "WARNING"):
            msg = c.get("errorMessage") or c.get("description") or ""
            job.failures.append(f"{c.get('status')} {c.get('id')}: {' '.join(str(msg).split())[:300]}")
    return job


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--command", default=os.environ.get("CONFORMANCE_COMMAND", str(ROOT / "target/debug/mcp-oauth-conformance")),
                    help="client command; the suite appends the server URL (default: target/debug/mcp-oauth-conformance)")
    ap.add_argument("--runs", default=os.environ.get("CONFORMANCE_RUNS", "natural,2026-07-28,2025-11-25"),
                    help="comma-separated subset of natural,2026-07-28,2025-11-25")
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("CONFORMANCE_JOBS", "4")),
                    help="scenarios run at once (default 4)")
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("CONFORMANCE_TIMEOUT_MS", "30000")),
                    help="per-scenario client timeout in ms, passed to the suite (default 30000)")
    ap.add_argument("--exclude-file", default=os.environ.get("CONFORMANCE_EXCLUDE_FILE", str(ROOT / "tests/conformance/excluded.txt")))
    ap.add_argument("--no-exclude-file", action="store_true", help="ignore the exclusion file")
    ap.add_argument("--exclude", action="append", default=[], help="also exclude this scenario (repeatable)")
    ap.add_argument("--only", default=os.environ.get("CONFORMANCE_ONLY", ""), help="regex: run only matching scenarios")
    ap.add_argument("--all-scenarios", action="store_true", default=os.environ.get("CONFORMANCE_ALL_SCENARIOS") == "1",
                    help="requirement runs: include the set's non-auth client scenarios")
    ap.add_argument("--strict-exit", action="store_true", default=os.environ.get("CONFORMANCE_STRICT_EXIT") == "1",
                    help="also fail scenarios where the client exited non-zero although the scenario does "
                         "not expect it to (the suite's single-scenario verdict; --requirements ignores it)")
    ap.add_argument("-o", "--output-dir", default=os.environ.get("CONFORMANCE_OUTPUT_DIR", str(ROOT / "results/conformance")))
    ap.add_argument("--node", default=os.environ.get("MCP_OAUTH_NODE", str(NODE_DIR / "node_modules/.bin/node")))
    ap.add_argument("--list", action="store_true", help="print the planned scenario runs and exit")
    args = ap.parse_args()

    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    for r in runs:
        if r not in ("natural", "2026-07-28", "2025-11-25"):
            die(f"unknown run {r!r}")
    if not os.access(args.node, os.X_OK):
        die(f"{args.node} not found: run scripts/bootstrap first")
    node_version = subprocess.run([args.node, "--version"], capture_output=True, text=True).stdout.strip()
    if not node_version.startswith("v22."):
        die(f"{args.node} is {node_version or 'broken'}, expected v22.x")
    suite = suite_argv(args.node)
    version = subprocess.run(suite + ["--version"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if version != SUITE_VERSION:
        die(f"conformance suite is {version!r}, expected {SUITE_VERSION}: run scripts/bootstrap")
    exe = shlex.split(args.command)[0] if args.command.strip() else ""
    if not args.list and not (os.access(exe, os.X_OK) or (os.sep not in exe and exe)):
        die(f"client {exe!r} not found or not executable: build it first (cargo build --workspace)")

    excludes = read_excludes(None if args.no_exclude_file else Path(args.exclude_file),
                             args.exclude + [os.environ.get("CONFORMANCE_EXCLUDE", "")])
    only = re.compile(args.only) if args.only else None

    known_all = {n for n, _, _ in list_scenarios(suite, None)}
    unknown = sorted(set(excludes) - known_all)
    if unknown:
        print(f"conformance: warning: excluded names not in this suite version: {', '.join(unknown)}", file=sys.stderr)

    jobs: list[Job] = []
    skipped: dict[str, list[str]] = {}
    for run in runs:
        for name, note, wire in list_scenarios(suite, None if run == "natural" else run):
            if run == "natural" or not args.all_scenarios:
                if not name.startswith("auth/"):
                    continue
            if name in excludes:
                skipped.setdefault(run, []).append(name)
                continue
            if only and not only.search(name):
                continue
            jobs.append(Job(run=run, scenario=name, note=note, wire=wire, strict_exit=args.strict_exit))

    out_root = Path(args.output_dir).resolve()
    print(f"conformance: suite {version}, node {node_version}, client `{args.command}`")
    print(f"conformance: {len(jobs)} scenario runs ({', '.join(f'{r}: {sum(j.run == r for j in jobs)}' for r in runs)}), "
          f"{args.jobs} at a time, timeout {args.timeout} ms; excluded: {', '.join(excludes) or 'none'}")
    print(f"conformance: results in {out_root}")
    if args.list:
        for j in jobs:
            print(f"  {j.run:10} {j.wire:10} {j.scenario} {j.note}")
        return 0
    # Clear only what a previous run of this script wrote there.
    for run in ("natural", "2026-07-28", "2025-11-25"):
        shutil.rmtree(out_root / run, ignore_errors=True)
    (out_root / "summary.json").unlink(missing_ok=True)
    out_root.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    done = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_job, j, suite, args.command, out_root, args.timeout) for j in jobs]
            for fut in concurrent.futures.as_completed(futures):
                j = fut.result()
                done += 1
                mark = "FAIL" if j.bad else "ok"
                print(f"  [{done:3}/{len(jobs)}] {mark:4} {j.run:10} {j.scenario} ({j.seconds:.1f}s)", flush=True)
    except KeyboardInterrupt:
        with _procs_lock:
            for p in list(_procs):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        raise
    elapsed = time.monotonic() - t0

    # Report
    width = max([len(j.scenario) for j in jobs] + [8])
    totals_all = {"SUCCESS": 0, "FAILURE": 0, "WARNING": 0}
    bad_jobs: list[Job] = []
    for run in runs:
        rj = [j for j in jobs if j.run == run]
        if not rj:
            continue
        title = "natural wire (each scenario's default)" if run == "natural" else f"{run} wire (requirement set {run})"
        print(f"\n=== {title} ===")
        print(f"  {'scenario':<{width}}  {'wire':<10}  {'pass':>4} {'fail':>4} {'warn':>4}  {'secs':>5}  result")
        tot = {"SUCCESS": 0, "FAILURE": 0, "WARNING": 0}
        for j in sorted(rj, key=lambda j: j.scenario):
            for k in tot:
                tot[k] += j.counts.get(k, 0)
            extra = []
            if j.problem:
                extra.append(j.problem)
            if j.client_exit:
                extra.append(f"client exit {j.client_exit}" + (" NOT expected" if j.exit_not_allowed else ""))
            if j.note:
                extra.append(j.note)
            res = ("FAIL" if j.bad else "ok") + (f" ({'; '.join(extra)})" if extra else "")
            print(f"  {j.scenario:<{width}}  {j.wire:<10}  {j.counts.get('SUCCESS', 0):>4} {j.counts.get('FAILURE', 0):>4} "
                  f"{j.counts.get('WARNING', 0):>4}  {j.seconds:>5.1f}  {res}")
            if j.bad:
                bad_jobs.append(j)
        nbad = sum(j.bad for j in rj)
        print(f"  {'TOTAL':<{width}}  {'':<10}  {tot['SUCCESS']:>4} {tot['FAILURE']:>4} {tot['WARNING']:>4}         "
              f"{len(rj) - nbad}/{len(rj)} scenarios clean")
        if skipped.get(run):
            print(f"  excluded: {', '.join(skipped[run])}")
        for k in totals_all:
            totals_all[k] += tot[k]

    if bad_jobs:
        print("\n=== failures and warnings ===")
        for j in bad_jobs:
            print(f"- [{j.run}] {j.scenario}{' — ' + j.problem if j.problem else ''}  "
                  f"(see {out_root / j.run / safe(j.scenario)})")
            for f in j.failures[:12]:
                print(f"    {f}")
            if len(j.failures) > 12:
                print(f"    ... {len(j.failures) - 12} more")

    unexpected_exits = [j for j in jobs if j.exit_not_allowed]
    if unexpected_exits:
        print(f"\n=== client exited non-zero where the scenario does not expect it "
              f"({'fatal: --strict-exit' if args.strict_exit else 'not scored, like --requirements; --strict-exit makes it fatal'}) ===")
        for j in unexpected_exits:
            err = sorted((out_root / j.run / safe(j.scenario)).rglob("stderr.txt"))
            last = ""
            if err:
                lines = [x for x in err[-1].read_text(errors="replace").splitlines() if x.strip()]
                last = re.sub(r"\x1b\[[0-9;]*m", "", lines[-1])[:200] if lines else ""
            print(f"- [{j.run}] {j.scenario}: exit {j.client_exit}; last stderr line: {last}")

    summary = {
        "suite": version,
        "node": node_version,
        "command": args.command,
        "elapsed_seconds": round(elapsed, 1),
        "excluded": excludes,
        "totals": totals_all,
        "scenarios": [
            {"run": j.run, "scenario": j.scenario, "wire": j.wire, "counts": j.counts, "problem": j.problem, "client_exit": j.client_exit, "exit_not_allowed": j.exit_not_allowed,
             "note": j.note, "seconds": round(j.seconds, 1), "bad": j.bad, "failures": j.failures}
            for j in jobs
        ],
    }
    (out_root / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    verdict = "PASS" if not bad_jobs else "FAIL"
    print(f"\nconformance: {verdict}: {len(jobs) - len(bad_jobs)}/{len(jobs)} scenario runs clean; "
          f"{totals_all['SUCCESS']} passed, {totals_all['FAILURE']} failed, {totals_all['WARNING']} warnings "
          f"checks; {elapsed:.0f}s with {args.jobs} jobs")
    return 0 if not bad_jobs else 1


if __name__ == "__main__":
    sys.exit(main())
