"""Unit tests of app/config.py: the environment first, `.env` fills in, one clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, read_dotenv, shell_exports
from tests.support import ROOT

SECRET = "s" * 32


def settings(tmp_path: Path, dotenv: str = "", **environ: str) -> Settings:
    path = tmp_path / ".env"
    path.write_text(dotenv, encoding="utf-8")
    return Settings.from_env(environ, path)


def test_defaults_are_the_contracts(tmp_path: Path) -> None:
    s = settings(tmp_path, JWT_SECRET=SECRET)
    assert s.database_url == "postgresql://postgres@127.0.0.1:5432/jwt_refresh"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert (s.jwt_issuer, s.jwt_audience, s.jwt_algorithm) == (
        "jwt-refresh-api",
        "jwt-refresh-api",
        "HS256",
    )
    assert (s.access_token_ttl, s.refresh_token_ttl, s.session_max_age) == (600, 604800, 2592000)
    assert (s.host, s.port, s.workers) == ("127.0.0.1", 8000, 1)


def test_dotenv_fills_in_and_the_environment_wins(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        f"JWT_SECRET={SECRET}\nACCESS_TOKEN_TTL=120\nPORT=9000\n",
        PORT="9100",
    )
    assert (s.jwt_secret, s.access_token_ttl, s.port) == (SECRET, 120, 9100)


def test_a_missing_dotenv_is_no_error(tmp_path: Path) -> None:
    s = Settings.from_env({"JWT_SECRET": SECRET}, tmp_path / "absent")
    assert s.jwt_secret == SECRET


def test_read_dotenv_rules(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        '# a comment\n\n  A=1  \nexport B=two words\nC="quoted # not a comment"\n'
        "D='single'\nE=\nno equals sign\nF=\"unbalanced\nG=a=b\n",
        encoding="utf-8",
    )
    assert read_dotenv(path) == {
        "A": "1",
        "B": "two words",
        "C": "quoted # not a comment",
        "D": "single",
        "E": "",
        "F": '"unbalanced',
        "G": "a=b",
    }


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "JWT_SECRET"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
        ({"JWT_ALGORITHM": "PS256"}, "JWT_ALGORITHM"),
        ({"JWT_ALGORITHM": "es256"}, "JWT_ALGORITHM"),
        ({"JWKS_MAX_AGE": "100", "KEY_ROTATION_INTERVAL": "50"}, "JWKS_MAX_AGE"),
        ({"KEY_ROTATION_INTERVAL": "0"}, "KEY_ROTATION_INTERVAL"),
        ({"ACCESS_TOKEN_TTL": "ten"}, "ACCESS_TOKEN_TTL"),
        ({"ACCESS_TOKEN_TTL": "0"}, "ACCESS_TOKEN_TTL"),
        ({"REFRESH_REUSE_GRACE": "-1"}, "REFRESH_REUSE_GRACE"),
        ({"PORT": "http"}, "PORT"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"REFRESH_TOKEN_TTL": "100", "SESSION_MAX_AGE": "50"}, "REFRESH_TOKEN_TTL"),
    ],
)
def test_bad_values_name_their_variable(
    tmp_path: Path, environ: dict[str, str], named: str
) -> None:
    environ = {"JWT_SECRET": SECRET, **environ} if named != "JWT_SECRET" else environ
    with pytest.raises(ConfigError, match=named):
        settings(tmp_path, **environ)


@pytest.mark.parametrize("url", ["postgres://h/db", "postgresql://u@h:1/db"])
def test_both_postgres_schemes_are_accepted(tmp_path: Path, url: str) -> None:
    assert settings(tmp_path, JWT_SECRET=SECRET, DATABASE_URL=url).database_url == url


@pytest.mark.parametrize("url", ["redis://h:1/2", "rediss://h/0", "unix:///run/redis.sock"])
def test_redis_schemes_are_accepted(tmp_path: Path, url: str) -> None:
    assert settings(tmp_path, JWT_SECRET=SECRET, REDIS_URL=url).redis_url == url


def test_zero_grace_is_allowed(tmp_path: Path) -> None:
    assert settings(tmp_path, JWT_SECRET=SECRET, REFRESH_REUSE_GRACE="0").refresh_reuse_grace == 0


# -- the shell scripts read `.env` through this module -------------------------------------


def test_shell_exports_quote_and_leave_the_environment_alone(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=1\nB=it's $HOME `x`\nKEEP=from file\n9BAD=x\n", encoding="utf-8")
    lines = shell_exports(path, {"KEEP": "env"}).splitlines()
    assert lines == ["export A=1", "export B='it'\"'\"'s $HOME `x`'"]


def test_the_shell_sees_what_the_app_reads(tmp_path: Path) -> None:
    """`scripts/lib.sh`'s load_env, in a real bash: values arrive byte for byte."""
    path = tmp_path / ".env"
    tricky = 'it\'s a "test" with $HOME, `cmd`, \\ and ; done'
    path.write_text(f"TRICKY={tricky}\nFROM_ENV=file\n", encoding="utf-8")
    script = (
        f'source "{ROOT}/scripts/lib.sh"; PY="{sys.executable}"; load_env "{path}";'
        ' printf "%s|%s" "$TRICKY" "$FROM_ENV"'
    )
    env = {**os.environ, "FROM_ENV": "environment"}
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, env=env, timeout=30
    ).stdout
    assert out == f"{read_dotenv(path)['TRICKY']}|environment"
    assert read_dotenv(path)["TRICKY"] == tricky


def test_the_shell_keeps_its_own_variables(tmp_path: Path) -> None:
    """A `.env` naming a variable the script already has (exported or not, read-only or not)
    does not replace it, nor stop the script."""
    path = tmp_path / ".env"
    path.write_text("PY=/nowhere\nROOT=/nowhere\nUID=12345\nNEW=yes\n", encoding="utf-8")
    script = (
        f'source "{ROOT}/scripts/lib.sh"; PY="{sys.executable}"; load_env "{path}";'
        ' printf "%s|%s|%s|%s" "$PY" "$ROOT" "$UID" "$NEW"'
    )
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    assert out == f"{sys.executable}|{ROOT}|{os.getuid()}|yes"


def test_redis_topologies(tmp_path: Path) -> None:
    single = settings(tmp_path, JWT_SECRET=SECRET)
    assert (single.redis_cluster_nodes, single.redis_sentinels, single.redis_wait_replicas) == (
        (),
        (),
        0,
    )
    cluster = settings(
        tmp_path, JWT_SECRET=SECRET, REDIS_CLUSTER_NODES="10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002"
    )
    assert cluster.redis_cluster_nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002))
    sentinel = settings(
        tmp_path,
        JWT_SECRET=SECRET,
        REDIS_SENTINELS="s1:26379,s2:26379",
        REDIS_SENTINEL_MASTER="mymaster",
    )
    assert sentinel.redis_sentinels == (("s1", 26379), ("s2", 26379))
    assert sentinel.redis_sentinel_master == "mymaster"
    assert sentinel.redis_wait_replicas == 1  # a failover must not lose a revocation
    relaxed = settings(
        tmp_path,
        JWT_SECRET=SECRET,
        REDIS_SENTINELS="s1:26379",
        REDIS_SENTINEL_MASTER="mymaster",
        REDIS_WAIT_REPLICAS="0",
    )
    assert relaxed.redis_wait_replicas == 0


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"REDIS_CLUSTER_NODES": "host-without-port"}, "REDIS_CLUSTER_NODES"),
        ({"REDIS_CLUSTER_NODES": "h:99999"}, "REDIS_CLUSTER_NODES"),
        ({"REDIS_SENTINELS": "h:1"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINELS"),
        ({"REDIS_CLUSTER_NODES": "h:1", "REDIS_SENTINELS": "h:2"}, "REDIS_SENTINELS"),
        ({"REDIS_CLUSTER_NODES": "h:1", "REDIS_WAIT_REPLICAS": "1"}, "REDIS_WAIT_REPLICAS"),
        ({"REDIS_WAIT_REPLICAS": "-1"}, "REDIS_WAIT_REPLICAS"),
    ],
)
def test_bad_redis_topologies_name_their_variable(
    tmp_path: Path, environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        settings(tmp_path, JWT_SECRET=SECRET, **environ)
