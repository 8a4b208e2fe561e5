"""make bench: start the server on real PostgreSQL and Redis, load it with wrk, print one table.

Every figure comes from one run on this machine and is reported next to `GET /health/live`
measured in the same run, because absolute numbers on a shared machine mean little. Each
JWT_ALGORITHM of `--algorithms` (HS256 and ES256 by default) is measured alike, in rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import ALGORITHMS  # noqa: E402
from app.migrate import create_database, migrate  # noqa: E402
from bench.wrk import Result, wrk  # noqa: E402
from devtools.appserver import app_server  # noqa: E402

PASSWORD = "bench password 1"
LIVE, ME, REFRESH = (
    "GET /health/live",
    "GET /api/me (valid token)",
    "POST /auth/refresh (32 sessions)",
)
# a server log's records of failures (Sanic's format and the app's), what varies in them (time,
# process, request id), and the line that ends a traceback: the exception
LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL)\b")
LOG_VARYING = re.compile(r"^(Srv \d+ )?\d{4}-\d\d-\d\d [\d:,]+( [+-]\d{4})? |\[[0-9a-f]{8,}\] ")
LOG_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(: .*)?$")


def server(
    env: dict[str, str], workers: int, workdir: Path | None = None
) -> AbstractContextManager[str]:
    """The server as `make run` starts it, without access logs; ready once /health is ok;
    `workdir`: where its `server.log` stays (a temporary directory if None)."""
    return app_server(
        env, workers=workers, args=["--no-access-logs"], ready_path="/health", workdir=workdir
    )


async def reset_keys(dsn: str) -> None:
    """Empty `signing_keys`: a server does not switch stored keys to another algorithm at
    once, but on an empty table it creates keys of its own JWT_ALGORITHM at start."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM signing_keys")
    finally:
        await conn.close()


@contextmanager
def algorithm_server(
    algorithm: str, base_db: str, redis_url: str, workers: int, workdir: Path
) -> Iterator[tuple[str, str]]:
    """A server signing with JWT_ALGORITHM=`algorithm` (keys emptied first), its log in
    `workdir`: its base URL and the marker of its processes' environment (see `server_cpu`)."""
    asyncio.run(reset_keys(base_db))
    env = bench_env(base_db, redis_url, algorithm=algorithm)
    workdir.mkdir(parents=True)
    with server(env, workers, workdir) as base:
        yield base, env["REDIS_KEY_PREFIX"]


def server_log_errors(logs: Path, algorithm: str) -> Counter[str]:
    """The failures logged by every server that ran `algorithm`, counted by kind: the record
    without its time and request id, with the exception that ends its traceback, if any."""
    kinds: Counter[str] = Counter()
    for log in sorted(logs.glob(f"{algorithm}-*/server.log")):
        lines = log.read_text(errors="replace").splitlines()
        for index, line in enumerate(lines):
            if not LOG_ERROR.search(line) and not line.startswith("Traceback"):
                continue
            if line.startswith("Traceback") and index and LOG_ERROR.search(lines[index - 1]):
                continue  # the traceback of the record just counted
            after = (a for a in lines[index + 1 :] if a and not a.startswith((" ", "Traceback")))
            exception = next(after, "")
            kind = LOG_VARYING.sub("", line)
            if LOG_EXCEPTION.match(exception):
                kind += f" ({exception})"
            kinds[kind] += 1
    return kinds


def token_algorithm(token: str) -> str:
    """The `alg` of a JWT's header."""
    head = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["alg"])


def log_in(base: str, names: list[str], algorithm: str) -> tuple[str, list[str]]:
    """A new session for each user: the first one's access token, checked to be signed with
    `algorithm`, and every refresh token."""
    responses = asyncio.run(log_in_all(base, names))
    access = responses[0]["access_token"]
    if (signed := token_algorithm(access)) != algorithm:
        raise SystemExit(f"JWT_ALGORITHM={algorithm}, but the server signs with {signed}")
    return access, [r["refresh_token"] for r in responses]


def login_phase(base: str, names: list[str], seconds: int) -> list[Result]:
    """Logins and a light /health/live load at the same time: hashing must not stall the loop."""
    login_env = {"BENCH_USERS": ",".join(names), "BENCH_PASSWORD": PASSWORD}
    with ThreadPoolExecutor(2) as pool:
        logins = pool.submit(
            wrk,
            "POST /auth/login",
            base + "/auth/login",
            seconds=seconds,
            connections=8,
            script="login.lua",
            env=login_env,
        )
        live = pool.submit(
            wrk,
            "GET /health/live during logins",
            base + "/health/live",
            seconds=seconds,
            connections=4,
        )
        return [logins.result(), live.result()]


def algorithm_list(text: str) -> list[str]:
    """`--algorithms`: comma-separated JWT_ALGORITHM values, each once."""
    algorithms = list(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    unknown = [a for a in algorithms if a not in ALGORITHMS]
    if unknown or not algorithms:
        raise argparse.ArgumentTypeError(
            f"not JWT_ALGORITHM values: {', '.join(unknown) or repr(text)}"
            f" (each one of {', '.join(ALGORITHMS)})"
        )
    return algorithms


def _address(index: int) -> dict[str, str]:
    # each user from an address of its own (PROXIES_COUNT=1): the per-address limits are for
    # clients, not for the bench's set-up
    return {"X-Forwarded-For": f"10.99.{index // 256}.{index % 256}"}


async def log_in_all(base: str, names: list[str]) -> list[dict[str, str]]:
    """A new session for each user, each from its own address: their token responses."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(index: int, name: str) -> dict[str, str]:
            credentials = {"username": name, "password": PASSWORD}
            r = await client.post("/auth/login", json=credentials, headers=_address(index))
            r.raise_for_status()
            return r.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))


async def prepare_users(base: str, count: int) -> tuple[str, list[str], list[str]]:
    """Register `count` users; the access token of the first, a refresh token for each, and
    their names."""
    run = secrets.token_hex(3)
    names = [f"bench_{run}_{i}" for i in range(count)]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def register(index: int, name: str) -> None:
            credentials = {"username": name, "password": PASSWORD}
            r = await client.post("/auth/register", json=credentials, headers=_address(index))
            r.raise_for_status()

        await asyncio.gather(*(register(i, name) for i, name in enumerate(names)))
    responses = await log_in_all(base, names)
    return responses[0]["access_token"], [r["refresh_token"] for r in responses], names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (a git worktree of an earlier commit, say): measure /api/me and"
        " refresh on both, interleaved, and print what this one costs against it",
    )
    parser.add_argument(
        "--algorithms",
        type=algorithm_list,
        default=["HS256", "ES256"],
        help="JWT_ALGORITHM values to measure side by side (default HS256,ES256; not with"
        " --baseline, which measures HS256)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the comparison, or of the algorithms"
    )
    parser.add_argument(
        "--no-topologies",
        dest="topologies",
        action="store_false",
        help="skip /api/me and refresh on a local Redis Cluster next to the single Redis",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)"
        )

    base_db = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jwt_refresh_bench"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    asyncio.run(create_database(base_db))
    try:
        asyncio.run(migrate(base_db))
        # a database left by a run that was stopped, or by bench.overhead: its keys are
        # encrypted under another run's JWT_SECRET
        asyncio.run(reset_keys(base_db))
        if args.baseline is not None:
            compare(args, base_db, redis_url)
        else:
            run(args, base_db, redis_url)
    finally:
        asyncio.run(cleanup(base_db, redis_url))


async def cleanup(dsn: str, redis_url: str) -> None:
    """Leave nothing behind: drop the bench database and its Redis keys."""
    import asyncpg
    from redis.asyncio import Redis

    admin = await asyncpg.connect(urlunsplit(urlsplit(dsn)._replace(path="/postgres")))
    try:
        await admin.execute(
            f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path.lstrip("/")}" WITH (FORCE)'
        )
    finally:
        await admin.close()
    redis = Redis.from_url(redis_url)
    keys = [k async for k in redis.scan_iter(match="jwt-refresh-api-bench:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def bench_env(
    base_db: str, redis_url: str, root: Path = ROOT, *, algorithm: str | None = None
) -> dict[str, str]:
    """The server's environment: metrics on (a METRICS_TOKEN), the access log off, as before;
    JWT_ALGORITHM=`algorithm` if given (else the server's default, HS256)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "DATABASE_", "REDIS_", "PROMETHEUS_"))
    }
    env.update(
        JWT_SECRET=secrets.token_urlsafe(48),
        DATABASE_URL=base_db,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=f"jwt-refresh-api-bench:{secrets.token_hex(3)}:",
        PYTHONPATH=str(root),
        PROXIES_COUNT="1",
        METRICS_TOKEN=secrets.token_urlsafe(24),
        ACCESS_LOG="false",
    )
    if algorithm is not None:
        env["JWT_ALGORITHM"] = algorithm
    return env


def refresh_phase(name: str, base: str, tokens: list[str], seconds: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as tokens_file:
        tokens_file.write("\n".join(tokens) + "\n")
    try:
        return wrk(
            name,
            base + "/auth/refresh",
            seconds=seconds,
            connections=32,
            threads=32,
            script="refresh.lua",
            env={"BENCH_TOKENS": tokens_file.name},
        )
    finally:
        os.unlink(tokens_file.name)


def server_cpu(marker: str) -> float:
    """CPU seconds used so far by the server processes whose environment holds `marker`."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker.encode() not in Path(f"/proc/{entry}/environ").read_bytes():
                continue
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def per_request(marker: str, phase: Callable[[], Result]) -> tuple[Result, float]:
    """Run a wrk phase; its result and the server's CPU microseconds per request: far less
    noisy than throughput on a shared machine (a neighbour's load takes time, not CPU)."""
    before = server_cpu(marker)
    result = phase()
    return result, (server_cpu(marker) - before) / max(result.requests, 1) * 1e6


def compare(args: argparse.Namespace, base_db: str, redis_url: str) -> None:
    """This checkout against `--baseline`, one worker each, phases interleaved round by round
    so that the machine's noise falls on both alike: the medians of throughput and of the
    server's CPU time per request, and their ratios."""

    s, c = args.seconds, args.connections
    rows: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    this_env = bench_env(base_db, redis_url)
    # one JWT_SECRET for both: they share the database's signing keys, encrypted under it
    envs = {
        "this": this_env,
        "baseline": bench_env(base_db, redis_url, args.baseline.resolve())
        | {"JWT_SECRET": this_env["JWT_SECRET"]},
    }
    with (
        server(envs["this"], workers=1) as this,
        server(envs["baseline"], workers=1) as baseline,
    ):
        bases = {"this": this, "baseline": baseline}
        prepared = {key: asyncio.run(prepare_users(base, 32)) for key, base in bases.items()}
        for key, base in bases.items():
            bearer = {"Authorization": f"Bearer {prepared[key][0]}"}
            wrk("warm-up", base + "/api/me", seconds=2, connections=c, headers=bearer)
        for turn in range(args.rounds):
            order = list(bases.items()) if turn % 2 == 0 else list(reversed(bases.items()))
            for key, base in order:
                marker = envs[key]["REDIS_KEY_PREFIX"]
                bearer = {"Authorization": f"Bearer {prepared[key][0]}"}
                tokens = [
                    r["refresh_token"] for r in asyncio.run(log_in_all(base, prepared[key][2]))
                ]
                phases: list[tuple[str, Callable[[], Result]]] = [
                    (
                        "GET /health/live",
                        partial(wrk, "live", base + "/health/live", seconds=s, connections=c),
                    ),
                    (
                        "GET /api/me",
                        partial(
                            wrk, "me", base + "/api/me", seconds=s, connections=c, headers=bearer
                        ),
                    ),
                    ("POST /auth/refresh", partial(refresh_phase, "refresh", base, tokens, s)),
                ]
                for label, phase in phases:
                    result, micros = per_request(marker, phase)
                    rows.setdefault(f"{label} {key}", []).append(result.rps)
                    cpu.setdefault(f"{label} {key}", []).append(micros)
    print()
    print(
        f"{'what':<20} {'req/s':>7} {'base':>7} {'ratio':>6}  {'CPU µs/req':>10}"
        f" {'base':>6} {'ratio':>6}   (medians of the rounds)"
    )
    for label in ("GET /health/live", "GET /api/me", "POST /auth/refresh"):
        m, t = (statistics.median(rows[f"{label} {k}"]) for k in ("this", "baseline"))
        cm, ct = (statistics.median(cpu[f"{label} {k}"]) for k in ("this", "baseline"))
        print(
            f"{label:<20} {m:>7.0f} {t:>7.0f} {m / t:>6.3f}  {cm:>10.1f} {ct:>6.1f} {cm / ct:>6.3f}"
        )
    for label in ("GET /health/live", "GET /api/me", "POST /auth/refresh"):
        print(
            f"  rounds {label}: req/s {' '.join(f'{v:.0f}' for v in rows[f'{label} this'])}"
            f" | {' '.join(f'{v:.0f}' for v in rows[f'{label} baseline'])};"
            f" CPU µs {' '.join(f'{v:.1f}' for v in cpu[f'{label} this'])}"
            f" | {' '.join(f'{v:.1f}' for v in cpu[f'{label} baseline'])}"
        )


def core_phases(
    base: str, marker: str, access: str, tokens: list[str], seconds: int, connections: int
) -> list[tuple[Result, float]]:
    """After a warm-up, /health/live, /api/me with `access` and refresh from `tokens`: each
    result and the server's CPU microseconds per request (see `per_request`)."""
    bearer = {"Authorization": f"Bearer {access}"}
    wrk("warm-up", base + "/api/me", seconds=2, connections=connections, headers=bearer)
    s, c = seconds, connections
    phases: list[Callable[[], Result]] = [
        partial(wrk, LIVE, base + "/health/live", seconds=s, connections=c),
        partial(wrk, ME, base + "/api/me", seconds=s, connections=c, headers=bearer),
        partial(refresh_phase, REFRESH, base, tokens, s),
    ]
    return [per_request(marker, phase) for phase in phases]


def reference(algorithms: list[str]) -> str:
    """What refresh throughput is relative to: HS256 when measured, else the first one."""
    return "HS256" if "HS256" in algorithms else algorithms[0]


def run(args: argparse.Namespace, base_db: str, redis_url: str) -> None:
    """Each of `--algorithms` in `--rounds` rounds, the order alternating round by round, a
    fresh one-worker server each time (keys emptied first): /health/live, /api/me and refresh;
    logins in the last round; then two workers once each. A table a phase, then one a row per
    algorithm: medians of the rounds, ratios the medians of each round's ratios."""
    s, c, algorithms = args.seconds, args.connections, args.algorithms
    logs = Path(tempfile.mkdtemp(prefix="jwt-refresh-bench-"))
    rounds: dict[tuple[str, str], list[Result]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    others: list[tuple[str, Result]] = []
    names: list[str] = []
    try:
        for turn in range(args.rounds):
            for algorithm in algorithms if turn % 2 == 0 else algorithms[::-1]:
                with algorithm_server(
                    algorithm, base_db, redis_url, 1, logs / f"{algorithm}-round{turn + 1}"
                ) as (base, marker):
                    if not names:
                        names = asyncio.run(prepare_users(base, 32))[2]
                    access, tokens = log_in(base, names, algorithm)
                    for result, micros in core_phases(base, marker, access, tokens, s, c):
                        rounds.setdefault((result.name, algorithm), []).append(result)
                        cpu.setdefault((result.name, algorithm), []).append(micros)
                    if turn == args.rounds - 1:
                        others += [(algorithm, r) for r in login_phase(base, names, s)]
        for algorithm in algorithms:
            with algorithm_server(
                algorithm, base_db, redis_url, 2, logs / f"{algorithm}-2-workers"
            ) as (base, _):
                access, _ = log_in(base, names[:1], algorithm)
                bearer = {"Authorization": f"Bearer {access}"}
                wrk("warm-up", base + "/api/me", seconds=2, connections=c, headers=bearer)
                for label, path, headers in (
                    ("GET /health/live, 2 workers", "/health/live", None),
                    ("GET /api/me, 2 workers", "/api/me", bearer),
                ):
                    result = wrk(
                        label, base + path, seconds=s, connections=c, threads=2, headers=headers
                    )
                    others.append((algorithm, result))
    except BaseException:
        print(f"server logs kept in {logs}", file=sys.stderr)
        raise
    log_errors = {a: server_log_errors(logs, a) for a in algorithms}
    if any(log_errors.values()):
        print(f"server logs kept in {logs}")
    else:
        shutil.rmtree(logs)
    report(args, rounds, cpu, others, log_errors)
    if args.topologies:
        topologies(args, base_db, redis_url)


def topologies(args: argparse.Namespace, base_db: str, redis_url: str) -> None:
    """HS256 on one Redis and on a local 3-master Redis Cluster (devtools.redis_topologies),
    alternating round by round, one worker each: /health/live, /api/me and refresh, and the
    cluster's figures against the single Redis's of the same round."""
    from devtools.redis_topologies import local_redis_cluster

    s, c = args.seconds, args.connections
    rounds: dict[tuple[str, str], list[Result]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    logs = Path(tempfile.mkdtemp(prefix="jwt-refresh-bench-topologies-"))
    with local_redis_cluster() as cluster:
        extra = {"single": {}, "cluster": {"REDIS_CLUSTER_NODES": cluster.startup_nodes}}
        names: list[str] = []
        for turn in range(args.rounds):
            for kind in ("single", "cluster") if turn % 2 == 0 else ("cluster", "single"):
                asyncio.run(reset_keys(base_db))
                env = bench_env(base_db, redis_url) | extra[kind]
                workdir = logs / f"{kind}-round{turn + 1}"
                workdir.mkdir(parents=True)
                with server(env, 1, workdir) as base:
                    if not names:
                        names = asyncio.run(prepare_users(base, 32))[2]
                    access, tokens = log_in(base, names, "HS256")
                    marker = env["REDIS_KEY_PREFIX"]
                    for result, micros in core_phases(base, marker, access, tokens, s, c):
                        rounds.setdefault((result.name, kind), []).append(result)
                        cpu.setdefault((result.name, kind), []).append(micros)
    errors = {kind: server_log_errors(logs, kind) for kind in ("single", "cluster")}
    if any(errors.values()):
        print(f"server logs kept in {logs}")
    else:
        shutil.rmtree(logs)

    def median(label: str, kind: str) -> float:
        return statistics.median(r.rps for r in rounds[label, kind])

    def ratio(a: tuple[str, str], b: tuple[str, str]) -> float:
        return statistics.median(x.rps / y.rps for x, y in zip(rounds[a], rounds[b], strict=True))

    print()
    print(
        f"Redis topologies (HS256, 1 worker), req/s medians of {args.rounds} rounds; ratios:"
        " medians of each round's"
    )
    print(
        f"{'redis':<8} {'/health/live':>12} {'/api/me':>8} {'me/live':>8} {'refresh':>8}"
        f" {'vs single':>9} {'CPU me':>7} {'CPU refresh':>11} {'errors':>7} {'logged':>7}"
    )
    for kind in ("single", "cluster"):
        wrk_errors = sum(r.errors for label in (LIVE, ME, REFRESH) for r in rounds[label, kind])
        print(
            f"{kind:<8} {median(LIVE, kind):>12.0f} {median(ME, kind):>8.0f}"
            f" {ratio((ME, kind), (LIVE, kind)):>8.3f} {median(REFRESH, kind):>8.0f}"
            f" {ratio((REFRESH, kind), (REFRESH, 'single')):>9.3f}"
            f" {statistics.median(cpu[ME, kind]):>7.1f}"
            f" {statistics.median(cpu[REFRESH, kind]):>11.1f} {wrk_errors:>7}"
            f" {errors[kind].total():>7}"
        )


def report(
    args: argparse.Namespace,
    rounds: dict[tuple[str, str], list[Result]],
    cpu: dict[tuple[str, str], list[float]],
    others: list[tuple[str, Result]],
    log_errors: dict[str, Counter[str]],
) -> None:
    """Every phase (medians of the rounds, errors summed), then one row per algorithm."""
    algorithms, ref = args.algorithms, reference(args.algorithms)

    def median(label: str, algorithm: str, field: str) -> float:
        return statistics.median(float(getattr(r, field)) for r in rounds[label, algorithm])

    def ratios(a: tuple[str, str], b: tuple[str, str]) -> float:
        return statistics.median(x.rps / y.rps for x, y in zip(rounds[a], rounds[b], strict=True))

    print()
    print(
        f"{'what':<36} {'alg':<6} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'errors':>7}   (ratio: to /health/live of the same algorithm)"
    )
    for label in (LIVE, ME, REFRESH):
        for a in algorithms:
            rps = median(label, a, "rps")
            print(
                f"{label:<36} {a:<6} {rps:>9.0f} {ratios((label, a), (LIVE, a)):>6.2f}"
                f" {median(label, a, 'p50_ms'):>8.2f} {median(label, a, 'p99_ms'):>8.2f}"
                f" {sum(r.errors for r in rounds[label, a]):>7}"
            )
    live = {a: median(LIVE, a, "rps") for a in algorithms}
    for a, r in others:
        print(
            f"{r.name:<36} {a:<6} {r.rps:>9.0f} {r.rps / live[a]:>6.2f} {r.p50_ms:>8.2f}"
            f" {r.p99_ms:>8.2f} {r.errors:>7}"
        )
    for a in algorithms:
        two = {r.name: r.rps for b, r in others if b == a}
        print(
            f"{a} 2 workers: /api/me / /health/live = "
            f"{two['GET /api/me, 2 workers'] / two['GET /health/live, 2 workers']:.2f}"
        )
    for label in (LIVE, ME, REFRESH):
        for a in algorithms:
            print(
                f"  rounds {label} {a}: req/s"
                f" {' '.join(f'{r.rps:.0f}' for r in rounds[label, a])};"
                f" server CPU µs/req {' '.join(f'{v:.1f}' for v in cpu[label, a])}"
            )
    for a in algorithms:
        for kind, count in log_errors[a].most_common():
            print(f"  server logs {a}: {count} × {kind}")

    print()
    print(
        f"req/s, medians of {args.rounds} rounds of {args.seconds} s (ratios: medians of each"
        " round's); server CPU µs per request; errors: wrk's (non-2xx, socket), the server logs'"
    )
    print(
        f"{'algorithm':<9} {'/health/live':>12} {'/api/me':>8} {'me/live':>8} {'refresh':>8}"
        f" {'vs ' + ref:>9} {'CPU me':>7} {'CPU refresh':>11} {'errors':>7} {'logged':>7}"
    )
    for a in algorithms:
        errors = sum(r.errors for label in (LIVE, ME, REFRESH) for r in rounds[label, a])
        errors += sum(r.errors for b, r in others if b == a)
        print(
            f"{a:<9} {median(LIVE, a, 'rps'):>12.0f} {median(ME, a, 'rps'):>8.0f}"
            f" {ratios((ME, a), (LIVE, a)):>8.3f} {median(REFRESH, a, 'rps'):>8.0f}"
            f" {ratios((REFRESH, a), (REFRESH, ref)):>9.3f} {statistics.median(cpu[ME, a]):>7.1f}"
            f" {statistics.median(cpu[REFRESH, a]):>11.1f} {errors:>7} {log_errors[a].total():>7}"
        )


if __name__ == "__main__":
    main()
