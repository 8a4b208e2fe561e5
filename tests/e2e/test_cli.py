"""The command line as an operator runs it: `python -m app.cli migrate` and `create-user`,
as real subprocesses against real PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from devtools.appserver import app_server
from tests import support
from tests.support import Api, run_cli

ROOT = support.ROOT
MIGRATIONS = sorted(path.stem for path in (ROOT / "migrations").glob("*.sql"))  # the source
BOSS_PASSWORD = "boss password 1"


def assert_one_clear_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _admin_dsn() -> str:
    return urlunsplit(urlsplit(support.DATABASE_URL)._replace(path="/postgres"))


@pytest.fixture
async def scratch_database() -> AsyncIterator[str]:
    """A brand-new, empty database of this test's own; dropped afterwards."""
    name = f"jwt_refresh_test_cli_{support.RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_admin_dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(urlsplit(support.DATABASE_URL)._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(_admin_dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def applied_migrations(dsn: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [row["version"] for row in rows]
    finally:
        await connection.close()


# -- migrate ----------------------------------------------------------------------------


async def test_migrate_from_several_processes_at_once(scratch_database: str) -> None:
    env = support.server_env(DATABASE_URL=scratch_database)
    results = await asyncio.gather(*(run_cli("migrate", env=env) for _ in range(4)))
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "Traceback" not in out + err
    assert MIGRATIONS, "no migrations found"
    assert await applied_migrations(scratch_database) == MIGRATIONS

    # the schema is usable: the tables the service needs are there
    connection = await asyncpg.connect(scratch_database)
    try:
        tables = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await connection.close()
    assert {"users", "sessions", "notes", "schema_migrations"} <= tables


async def test_migrate_again_is_a_no_op(scratch_database: str) -> None:
    env = support.server_env(DATABASE_URL=scratch_database)
    code, out, err = await run_cli("migrate", env=env)
    assert code == 0, (out, err)
    connection = await asyncpg.connect(scratch_database)
    try:
        await connection.execute(
            "INSERT INTO users (username, password_hash) VALUES ('keepme', 'x')"
        )
    finally:
        await connection.close()
    for _ in range(2):
        code, out, err = await run_cli("migrate", env=env)
        assert code == 0, (out, err)
        assert "Traceback" not in out + err
    # a second run again, 3 at once, on an up-to-date database
    results = await asyncio.gather(*(run_cli("migrate", env=env) for _ in range(3)))
    assert [code for code, _, _ in results] == [0, 0, 0], results
    assert await applied_migrations(scratch_database) == MIGRATIONS
    connection = await asyncpg.connect(scratch_database)
    try:
        assert await connection.fetchval("SELECT count(*) FROM users") == 1
    finally:
        await connection.close()


# -- create-user ------------------------------------------------------------------------


async def test_create_user_admin_gets_the_admin_scope(api: Api) -> None:
    code, out, err = await run_cli(
        "create-user", "boss", "--admin", "--password-stdin", stdin=BOSS_PASSWORD.encode() + b"\n"
    )
    assert code == 0, (out, err)
    assert "Traceback" not in out + err
    tokens = await api.login("boss", BOSS_PASSWORD)
    assert "admin" in tokens["scope"].split()
    assert {"notes:read", "notes:write"} <= set(tokens["scope"].split())
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200
    assert me.json["username"] == "boss"
    assert "admin" in me.json["scope"].split()

    # the admin scope works: boss disables alice, who then can't log in
    await api.user("alice", "alice password")
    disabled = await api.request(
        "POST", "/api/admin/users/alice/disable", token=tokens["access_token"]
    )
    assert disabled.status == 204, disabled.text
    refused = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": "alice password"}
    )
    assert refused.status == 401
    assert refused.json["error"] == "invalid_grant"

    # a login may ask for the admin scope alone
    only_admin = await api.login("boss", BOSS_PASSWORD, scope="admin")
    assert only_admin["scope"] == "admin"


async def test_create_user_without_admin_gets_no_admin_scope(api: Api) -> None:
    code, out, err = await run_cli(
        "create-user", "worker", "--password-stdin", stdin=b"worker password\n"
    )
    assert code == 0, (out, err)
    tokens = await api.login("worker", "worker password")
    assert tokens["scope"] == "notes:read notes:write"
    await api.user("alice", "alice password")
    denied = await api.request(
        "POST", "/api/admin/users/alice/disable", token=tokens["access_token"]
    )
    assert denied.status == 403
    assert denied.json["error"] == "insufficient_scope"
    asked = await api.request(
        "POST",
        "/auth/login",
        json={"username": "worker", "password": "worker password", "scope": "admin"},
    )
    assert asked.status == 400
    assert asked.json["error"] == "invalid_scope"


@pytest.mark.parametrize("second", ["boss", "BOSS", "Boss"])
async def test_duplicate_create_user_fails_with_one_line(api: Api, second: str) -> None:
    code, out, err = await run_cli(
        "create-user", "boss", "--admin", "--password-stdin", stdin=BOSS_PASSWORD.encode() + b"\n"
    )
    assert code == 0, (out, err)
    code, out, err = await run_cli(
        "create-user", second, "--password-stdin", stdin=b"another password\n"
    )
    assert code != 0
    line = assert_one_clear_line(err + out)
    assert "boss" in line.lower()
    # the first account is untouched: its password and admin scope still hold
    tokens = await api.login("boss", BOSS_PASSWORD)
    assert "admin" in tokens["scope"].split()
    wrong = await api.request(
        "POST", "/auth/login", json={"username": "boss", "password": "another password"}
    )
    assert wrong.status == 401


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("ab", "long enough pw"),
        ("bad name", "long enough pw"),
        ("shorty", "short"),
        ("samesame", "samesame"),
        ("longpw", "x" * 129),
    ],
)
async def test_create_user_refuses_the_policy_with_one_line(
    api: Api, db: asyncpg.Connection, username: str, password: str
) -> None:
    code, out, err = await run_cli(
        "create-user", username, "--password-stdin", stdin=password.encode() + b"\n"
    )
    assert code != 0
    assert_one_clear_line(err + out)
    assert await db.fetchval("SELECT count(*) FROM users") == 0


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("secret", [None, "", "too-short-secret"])
@pytest.mark.parametrize("command", [["migrate"], ["create-user", "boss", "--password-stdin"]])
async def test_bad_jwt_secret_stops_with_one_line_naming_it(
    db: asyncpg.Connection, secret: str | None, command: list[str]
) -> None:
    env = support.server_env()
    if secret is None:
        del env["JWT_SECRET"]
    else:
        env["JWT_SECRET"] = secret
    # a scratch working directory: no .env of the checkout fills the secret in
    with tempfile.TemporaryDirectory() as cwd:
        code, out, err = await run_cli(
            *command, env=env, cwd=Path(cwd), stdin=BOSS_PASSWORD.encode() + b"\n"
        )
    assert code != 0
    assert out.strip() == ""
    line = assert_one_clear_line(err)
    assert "JWT_SECRET" in line
    assert await db.fetchval("SELECT count(*) FROM users") == 0


# -- installed as a product: a wheel, another directory ----------------------------------

DOCS_FILES = (
    "/docs",
    "/docs/assets/docs.js",
    "/docs/assets/swagger-ui-bundle.js",
    "/docs/assets/swagger-ui.css",
    "/docs/oauth2-redirect.html",
)
DEMO_FILES = ("/demo", "/demo/app.js", "/demo/style.css", "/demo/favicon.svg")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the service installed from a wheel (not editable):
    its python, run from a directory that holds no checkout."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    wheels = root / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    wheel = next(wheels.glob("jwt_refresh_api-*.whl"))
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)], check=True, timeout=600
    )
    return python


async def test_a_wheel_installed_elsewhere_migrates_and_serves(
    installed: Path, scratch_database: str, tmp_path: Path
) -> None:
    """`pip install` (not editable) ships the migrations: from any directory, `migrate`
    applies them all, the console script works, and a server answers on the result."""
    env = support.server_env(DATABASE_URL=scratch_database)
    del env["PYTHONPATH"]  # nothing of the checkout
    script = installed.parent / "jwt-refresh-api"

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *args],
            cwd=tmp_path,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    migrated = await asyncio.to_thread(run, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == f"applied {', '.join(MIGRATIONS)}"
    assert await applied_migrations(scratch_database) == MIGRATIONS
    again = await asyncio.to_thread(run, "migrate")
    assert again.stdout.strip() == "migrations: up to date"
    created = await asyncio.to_thread(
        run, "create-user", "boss", "--password-stdin", stdin=BOSS_PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr

    def serve() -> tuple[int, ...]:
        with app_server(env, workers=1, python=str(installed)) as base:
            health = httpx.get(base + "/health", timeout=10)
            login = httpx.post(
                base + "/auth/login",
                json={"username": "boss", "password": BOSS_PASSWORD},
                timeout=10,
            )
            # /docs: its own files (package data) and Swagger UI's (swagger-ui-bundle);
            # /demo: its files (package data)
            pages = [httpx.get(base + path, timeout=10) for path in DOCS_FILES + DEMO_FILES]
        return health.status_code, login.status_code, *(page.status_code for page in pages)

    assert await asyncio.to_thread(serve) == (200,) * (2 + len(DOCS_FILES) + len(DEMO_FILES))
    purged = await asyncio.to_thread(run, "purge")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "purge: 0 sessions and 0 events deleted"

    # a broken install (its migrations gone) says so, and never "up to date"
    site = next((installed.parent.parent / "lib").glob("python3*/site-packages"))
    shutil.rmtree(site / "app" / "migrations")
    broken = await asyncio.to_thread(run, "migrate")
    assert broken.returncode != 0
    assert "migrations" in broken.stderr and "up to date" not in broken.stdout, broken
    assert "Traceback" not in broken.stderr


async def test_purge_from_the_command_line(api: Api) -> None:
    tokens = await api.user("alice", "correct horse")
    old = await api.login("alice", "correct horse")
    async with api.app.ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '30 days' WHERE id = $1",
            old["session_id"],
        )
        await conn.execute(
            "UPDATE events SET at = now() - interval '100 days' WHERE session_id = $1",
            old["session_id"],
        )
    code, out, err = await run_cli("purge")
    assert (code, err) == (0, "")
    assert out.strip() == "purge: 1 sessions and 1 events deleted"
    assert (await api.refresh(tokens["refresh_token"])).status == 200


async def test_health_reports_a_database_that_is_not_migrated(scratch_database: str) -> None:
    def health() -> httpx.Response:
        with support.live_server(workers=1, DATABASE_URL=scratch_database) as base:
            return httpx.get(base + "/health", timeout=10)

    answer = await asyncio.to_thread(health)
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["postgres"] == "not_migrated" and body["redis"] == "ok", body
    assert "not migrated" in body["error_description"], body
