"""Load: 200 officers answering questionnaires at once, for 60 s, against PostgreSQL.

A real server (`policetrial serve --workers 2`) on loopback, its records in a fresh
PostgreSQL schema. Each of the 200 simulated officers takes the next unused link, opens it
on a new connection, as a new phone would (GET, which also gives the form's CSRF token),
spends a think time filling it in, submits every answer (POST, on the same connection),
and takes the next link, until the time is up.

The think time is 3 s on average (`--think`), drawn for every link uniformly between half
and one and a half times that, and each officer starts at a random moment within the first
think time, so the officers never move in lockstep. That is a stress, not a day's work:
an officer takes minutes over 31 items, and 200 of them at four minutes apiece would send
under one submission a second; at 3 s they offer up to 200 / 3 = 67 links a second, 133
requests a second (an open and a submit for each), about three quarters of what the same
server did flat out on the project's 2-core machine while other work kept it busy. This
run's latencies answer "how fast is it for 200 officers"; the capacity run after it
answers "how much can it take".

The capacity run (`--capacity-seconds`, 30 s; 0 leaves it out) is the same officers with
no think time, a closed loop: each sends its next request the moment the last is
answered, so the server is always saturated and latency is only queueing, by Little's law
officers / throughput; its throughput is the server's capacity. `--think 0` makes the
main run that closed loop (as this benchmark measured before it had a think time).

Each request is timed from sending it to the last byte of the response (`open_*`,
`submit_*`), and from the start, connecting first where the phone has no connection yet
(`*_with_connect`; for opening a link, always). Connecting costs this generator several
turns of its own busy event loop; a plain connection made 20 times a second from a process
of its own (`plain_connect_*`) shows what it costs the server: well under a millisecond.
The bars are judged on the first and shown on both. The generator runs on uvloop, as the
server does, and reports how late its event loop wakes (latencies include that too).

Afterwards the database is checked: every acknowledged submission stored once with all
its answers (lost = acknowledged but not stored; duplicated = a link or an officer with
two submissions). The baseline is the library's own `submit()` called in-process by 8
threads for a few seconds: what the HTTP layer costs on top of the database work.

The machine is shared, so the result says how busy it was: the load average at the start
and the end, and the CPU the machine spent, in cores, split into the server, PostgreSQL
(the whole cluster: other databases too), this generator and other work, both during the
run and in the 5 s before it while the server waited (`background_cpu_before_run`: the
500 ms bar is for an idle machine, taken as under 0.25 cores busy then).

Usage: python benchmarks/bench_web_load.py [--users 200] [--seconds 60] [--think 3]
       [--capacity-seconds 30] [--workers 2]
Writes benchmarks/results/web_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import platform
import pwd
import random
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import psycopg
import uvloop
from sqlalchemy import func, insert, select

from policetrial.records import db
from policetrial.records.workspace import init_workspace
from policetrial.survey import submit, workspace_questionnaire
from policetrial.survey.invitations import hash_token

HERE = Path(__file__).resolve().parent
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = f"pt_bench_web_load_{os.getpid()}"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
IDLE_CORES = 0.25
"""Background CPU (in cores) below which the machine counts as idle for the 500 ms bar."""


def fresh_schema() -> str:
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        c.execute(f"CREATE SCHEMA {SCHEMA}")
    return f"{PG}?options=-csearch_path%3D{SCHEMA}"


def make_links(root: Path, url: str, n: int) -> tuple[list[str], dict[str, str]]:
    """A workspace on PostgreSQL with `n` open links (synthetic officer keys)."""
    ws = init_workspace(root, database_url=url)
    questionnaire = workspace_questionnaire(ws)
    versions = json.dumps(questionnaire.versions, sort_keys=True)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    tokens = [secrets.token_urlsafe(32) for _ in range(n)]
    rows = [
        {
            "token_hash": hash_token(t),
            "officer_key": f"synthetic-officer-{i:06d}",
            "time": "pre",
            "instruments": versions,
            "status": "issued",
            "issued_at": now,
            "issued_by": "benchmark",
        }
        for i, t in enumerate(tokens)
    ]
    with ws.engine.begin() as connection:
        connection.execute(insert(db.survey_invitations), rows)
    answers = {
        item.id: str(instrument.response_range(item)[0])
        for instrument in questionnaire.instruments
        for item in instrument.items
    }
    ws.engine.dispose()
    return tokens, answers


def start_server(root: Path, url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "POLICETRIAL_DATABASE_URL": url,
        "POLICETRIAL_SECRET_KEY": secrets.token_hex(32),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "policetrial", "serve", "--workspace", str(root),
         "--port", str(port), "--workers", str(workers)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return process, base
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


# ------------------------------------------------------------------ how busy the machine is

_TICK = os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores) since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _processes() -> list[tuple[int, int, float, float]]:
    """(process group, owner, own CPU seconds, reaped children's CPU seconds) of each process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            owner = stat.parent.stat().st_uid
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        own = (int(fields[11]) + int(fields[12])) / _TICK
        children = (int(fields[13]) + int(fields[14])) / _TICK
        found.append((int(fields[2]), owner, own, children))
    return found


def _postgres_uid() -> int | None:
    try:
        return pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return None


@dataclass
class CpuMeter:
    """CPU over an interval, in cores: the machine's, and the server's, PostgreSQL's (every
    database of the cluster) and this generator's share of it."""

    server_group: int
    start: tuple[float, ...] = ()

    def _now(self) -> tuple[float, ...]:
        postgres = _postgres_uid()
        server = pg = 0.0
        for group, owner, own, children in _processes():
            if group == self.server_group:
                server += own
            elif owner == postgres:
                # The postmaster's reaped children are the backends that have exited.
                pg += own + children
        generator = os.times()
        return (
            time.monotonic(),
            _machine_busy_s(),
            server,
            pg,
            generator.user + generator.system,
        )

    def begin(self) -> None:
        self.start = self._now()

    def end(self) -> dict[str, float]:
        wall, machine, server, pg, generator = (
            b - a for a, b in zip(self.start, self._now(), strict=True)
        )
        return {
            "machine_cores_busy": round(machine / wall, 2),
            "server_cores": round(server / wall, 2),
            "postgresql_cores": round(pg / wall, 2),
            "load_generator_cores": round(generator / wall, 2),
            "other_work_cores": round((machine - server - pg - generator) / wall, 2),
        }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------ the officers


class Timed:
    """One request's times: from the start (connecting first if the phone has no
    connection yet) and from sending the request, each to the response's last byte."""

    def __init__(self) -> None:
        self.sent: float | None = None

    async def trace(self, event: str, _info: dict[str, Any]) -> None:
        if event == "http11.send_request_headers.started":
            self.sent = time.perf_counter()


async def officers(
    base: str,
    tokens: list[str],
    answers: dict[str, str],
    *,
    users: int,
    seconds: float,
    think: float,
    seed: int,
) -> dict[str, Any]:
    """`users` officers, each opening a link, thinking, submitting, for `seconds`.

    With `think` 0 each officer sends its next request as soon as the last is answered (a
    closed loop that saturates the server)."""
    queue = iter(tokens)
    rng = random.Random(seed)
    acknowledged: list[str] = []
    refused: list[tuple[str, int]] = []
    times: dict[str, list[float]] = {
        "open": [], "open_with_connect": [], "submit": [], "submit_with_connect": []
    }  # fmt: skip
    done_at: list[float] = []
    lag: list[float] = []
    started = time.monotonic()
    end = started + seconds
    running = True

    # One TLS context for every client: building one per client (httpx does, even for
    # plain http) costs the load generator more CPU than the server spends on the request.
    context = ssl.create_default_context()

    async def timed(name: str, request: Any) -> httpx2.Response:
        clock = Timed()
        t0 = time.perf_counter()
        response: httpx2.Response = await request(extensions={"trace": clock.trace})
        t1 = time.perf_counter()
        times[f"{name}_with_connect"].append(t1 - t0)
        times[name].append(t1 - (clock.sent or t0))
        return response

    async def officer() -> None:
        if think:
            await asyncio.sleep(rng.uniform(0, think))
        while time.monotonic() < end:
            token = next(queue, None)
            if token is None:
                return
            # Each link is a new officer on their own phone: a new connection, no cookies.
            async with httpx2.AsyncClient(base_url=base, timeout=60, verify=context) as client:
                url = f"/survey/{token}"
                page = await timed("open", partial(client.get, url))
                match = CSRF.search(page.text)
                if page.status_code != 200 or match is None:
                    refused.append((token, page.status_code))
                    continue
                if think:
                    await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))
                form = {"csrf_token": match.group(1), "action": "submit", **answers}
                response = await timed("submit", partial(client.post, url, data=form))
                if response.status_code == 303:
                    acknowledged.append(token)
                    done_at.append(time.monotonic() - started)
                else:
                    refused.append((token, response.status_code))

    async def watch_lag() -> None:
        # How late this process's event loop wakes: a late wake-up is time the latencies
        # above include although the server had already answered.
        while running:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            lag.append(time.perf_counter() - t0 - 0.01)

    watcher = asyncio.create_task(watch_lag())
    await asyncio.gather(*(officer() for _ in range(users)))
    running = False
    await watcher
    return {
        "acknowledged": acknowledged,
        "refused": refused,
        "elapsed_s": time.monotonic() - started,
        "seconds": seconds,
        "done_at_s": done_at,
        "times_s": times,
        "lag_s": lag,
    }


def connect_probe(port: int, seconds: float) -> list[float]:
    """Plain TCP connections to the server, 20 a second, timed, from a process of its own:
    what connecting costs where no busy event loop stands in the way."""
    took = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port)):
            took.append(time.perf_counter() - t0)
        time.sleep(0.05)
    return took


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values) * 1000, q)), 1)


def summarise(load: dict[str, Any], *, users: int, think: float) -> dict[str, Any]:
    """Throughput and latency of one run, as the result file gives them."""
    times = load["times_s"]
    rate = len(load["acknowledged"]) / load["elapsed_s"]
    # The second half of the run: every officer is past their staggered start by then.
    half = load["seconds"] / 2
    steady = sum(1 for t in load["done_at_s"] if half <= t < load["seconds"]) / half
    latency = {
        f"{name}_p{q}_ms": _ms(times[name], q)
        for name in ("open", "submit", "open_with_connect", "submit_with_connect")
        for q in (50, 95, 99)
    }
    return {
        "users": users,
        "think_s": think,
        "think_distribution": (
            f"uniform {0.5 * think:g}-{1.5 * think:g} s per link, first start uniform 0-{think:g} s"
            if think
            else "none: closed loop"
        ),
        "offered_links_per_second": round(users / think, 1) if think else None,
        "offered_requests_per_second": round(2 * users / think, 1) if think else None,
        "seconds": round(load["elapsed_s"], 1),
        "acknowledged": len(load["acknowledged"]),
        "refused": len(load["refused"]),
        "submissions_per_second": round(rate, 1),
        "submissions_per_second_second_half": round(steady, 1),
        "requests_per_second": round(
            (len(times["open"]) + len(times["submit"])) / load["elapsed_s"], 1
        ),
        **latency,
        "submit_p95_over_open_p95": round(latency["submit_p95_ms"] / latency["open_p95_ms"], 2),
        "load_generator_loop_lag_p95_ms": _ms(load["lag_s"], 95),
        "load_generator_loop_lag_max_ms": _ms(load["lag_s"], 100),
    }


def check_database(url: str, acknowledged: list[str], n_answers: int) -> dict[str, int]:
    from policetrial.records.db import connect

    engine = connect(url)
    inv, sub, ans = db.survey_invitations, db.survey_submissions, db.survey_answers
    hashes = {hash_token(t) for t in acknowledged}
    with engine.connect() as connection:
        stored = connection.execute(
            select(inv.c.token_hash, func.count(func.distinct(sub.c.id)), func.count(ans.c.item_id))
            .select_from(inv.join(sub, sub.c.invitation_id == inv.c.id).join(
                ans, ans.c.submission_id == sub.c.id))
            .group_by(inv.c.token_hash)
        ).all()  # fmt: skip
        twice = connection.execute(
            select(func.count()).select_from(
                select(sub.c.officer_key, sub.c.time)
                .group_by(sub.c.officer_key, sub.c.time)
                .having(func.count() > 1)
                .subquery()
            )
        ).scalar_one()
    engine.dispose()
    by_hash = {h: (n_sub, n_ans) for h, n_sub, n_ans in stored}
    return {
        "submissions_stored": len(by_hash),
        "lost": sum(1 for h in hashes if h not in by_hash),
        "incomplete": sum(1 for h in hashes if h in by_hash and by_hash[h][1] != n_answers),
        "duplicated": int(twice) + sum(1 for n_sub, _ in by_hash.values() if n_sub > 1),
        "stored_not_acknowledged": sum(1 for h in by_hash if h not in hashes),
    }


def baseline(root: Path, url: str, tokens: list[str], answers: dict[str, str], users: int,
             seconds: float) -> dict[str, Any]:  # fmt: skip
    """The library's submit() called in-process by `users` threads: no HTTP at all."""
    from policetrial.records.workspace import open_workspace

    ws = open_workspace(root, database_url=url)
    questionnaire = workspace_questionnaire(ws)
    queue = iter(tokens)
    lock = threading.Lock()
    done: list[float] = []
    end = time.monotonic() + seconds

    def worker() -> None:
        while time.monotonic() < end:
            with lock:
                token = next(queue, None)
            if token is None:
                return
            t0 = time.perf_counter()
            submit(ws, token, answers, questionnaire=questionnaire)
            done.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker) for _ in range(users)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ws.engine.dispose()
    return {
        "threads": users,
        "submissions": len(done),
        "per_second": round(len(done) / elapsed, 1),
        "p95_ms": _ms(done, 95) if done else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--think", type=float, default=3.0, help="mean seconds between opening and submitting"
    )
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--links", type=int, default=40_000)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "web_load.json")
    args = parser.parse_args()
    if args.think < 0:
        parser.error("--think must be 0 (a closed loop) or more")
    url = fresh_schema()
    capacity_run = args.think > 0 and args.capacity_seconds > 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        tokens, answers = make_links(root, url, args.links)
        # Links for the main run, the capacity run and the in-process baseline, apart.
        cut, cut2 = int(args.links * 0.45), int(args.links * 0.8)
        main_links, capacity_links, baseline_links = tokens[:cut], tokens[cut:cut2], tokens[cut2:]
        process, base = start_server(root, url, args.workers)
        meter = CpuMeter(process.pid)
        port = int(base.rsplit(":", 1)[1])
        try:
            meter.begin()
            time.sleep(5)  # the server waits: what the machine spends meanwhile is others' work
            background = meter.end()
            load_before = load_average()
            meter.begin()
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                probe = pool.submit(connect_probe, port, args.seconds)
                # uvloop, as the server uses: the generator's own event loop is part of every
                # latency it measures, and asyncio's slower loop made connecting look slow.
                load = uvloop.run(
                    officers(base, main_links, answers, users=args.users,
                             seconds=args.seconds, think=args.think, seed=args.seed)
                )  # fmt: skip
                probed = probe.result()
            cpu = meter.end()
            load_after = load_average()
            capacity, saturated = None, None
            if capacity_run:
                meter.begin()
                saturated = uvloop.run(
                    officers(base, capacity_links, answers, users=args.users,
                             seconds=args.capacity_seconds, think=0, seed=args.seed)
                )  # fmt: skip
                capacity = {
                    **summarise(saturated, users=args.users, think=0),
                    "cpu": meter.end(),
                    "load_average_end": load_average(),
                }
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        acknowledged = load["acknowledged"] + (saturated["acknowledged"] if saturated else [])
        checked = check_database(url, acknowledged, len(answers))
        reference = baseline(root, url, baseline_links, answers, 8, args.baseline_seconds)
    run = {
        **summarise(load, users=args.users, think=args.think),
        "plain_connect_p50_ms": _ms(probed, 50),
        "plain_connect_p95_ms": _ms(probed, 95),
    }
    idle = background["machine_cores_busy"] < IDLE_CORES

    def within(open_p95: float, submit_p95: float) -> dict[str, bool]:
        return {
            "within_1_5x": max(open_p95, submit_p95) <= 1.5 * min(open_p95, submit_p95),
            "at_most_500_ms": max(open_p95, submit_p95) <= 500,
        }

    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "database": "PostgreSQL on 127.0.0.1 (loopback)",
        "server_workers": args.workers,
        "load_average_start": load_before,
        "load_average_end": load_after,
        "background_cpu_before_run": background,
        "cpu_during_run": cpu,
        "officers": run,
        "capacity_closed_loop": capacity,
        "checked_in_database": checked,
        "baseline_in_process_submit": reference,
        "bars": {
            # Issue 19's load bar, on the run with think time (the 200 officers). The p95s
            # are from sending the request to the last byte; `counting_connect` also counts
            # the generator's connecting (see the docstring), which a plain connect from
            # another process shows the server does not cause.
            "no_loss": checked["lost"] == 0 and checked["incomplete"] == 0,
            "no_duplicates": checked["duplicated"] == 0,
            "p95": within(run["open_p95_ms"], run["submit_p95_ms"]),
            "p95_counting_connect": within(
                run["open_with_connect_p95_ms"], run["submit_with_connect_p95_ms"]
            ),
            "machine_idle": idle,
            "idle_rule": f"background CPU before the run under {IDLE_CORES} cores",
        },
    }
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
