"""Settings: read once from the environment, then `.env`, into one frozen object."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ALGORITHMS = ("HS256", "HS384", "HS512", "ES256", "EdDSA", "RS256")


class ConfigError(Exception):
    """A configuration value is missing or invalid; the message names the variable."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; `#` comments, `export` prefixes and quotes are allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shell_exports(path: Path, environ: Mapping[str, str]) -> str:
    """`export KEY='value'` lines for what `.env` sets and `environ` does not: how the shell
    scripts load `.env`, so that it is read by this one implementation."""
    return "\n".join(
        f"export {key}={shlex.quote(value)}"
        for key, value in read_dotenv(path).items()
        if _NAME.fullmatch(key) and key not in environ
    )


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def location(url: str) -> str:
    """host:port of a URL or DSN for a log line: never its user or password."""
    return urlsplit(url).netloc.rpartition("@")[2] or "the local socket"


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if urlsplit(value).scheme not in schemes:
        raise ConfigError(f"{name} must be a {' or '.join(schemes)} URL, got {value!r}")
    return value


def _addresses(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    """`host:port,host:port,...` (an IPv6 host in brackets: `[::1]:7000`)."""
    raw = env.get(name, "").strip()
    found = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        host, sep, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name} must be host:port,host:port,...; got {item!r}")
        found.append((host, int(port)))
    return tuple(found)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


MIN_METRICS_TOKEN = 16


@dataclass(frozen=True)
class Settings:
    jwt_secret: str
    database_url: str = "postgresql://postgres@127.0.0.1:5432/jwt_refresh"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = "jwt-refresh-api:"
    # A Redis Cluster (its nodes) or a Sentinel set-up (its Sentinels and the master's name):
    # either one wins over redis_url. Revocation writes wait for this many replicas.
    redis_cluster_nodes: tuple[tuple[str, int], ...] = ()
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    redis_wait_replicas: int = 0
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "jwt-refresh-api"
    jwt_audience: str = "jwt-refresh-api"
    access_token_ttl: int = 600
    refresh_token_ttl: int = 604800
    session_max_age: int = 2592000
    refresh_reuse_grace: int = 60
    clock_skew: int = 30
    # Behind a reverse proxy, where the client's address comes from (Sanic's own settings);
    # all unset by default: the peer address, and forwarding headers are ignored.
    proxies_count: int | None = None
    real_ip_header: str | None = None
    forwarded_secret: str | None = None
    # Operations: logs, metrics, the audit trail and the purge of what is no longer needed.
    log_format: str = "text"
    access_log: bool = True
    metrics_token: str | None = None  # unset: no /metrics at all
    cookie_secure: bool = True  # the refresh and CSRF cookies are `Secure` (false: local http)
    cors_origins: tuple[str, ...] = ()  # origins allowed to call with credentials
    audit_retention: int = 90  # days
    max_sessions_per_user: int = 100
    purge_interval: int = 3600  # seconds; 0: only `jwt-refresh-api purge`
    # Signing keys: the current one signs this long; a new key is published this long (the
    # JWKS's max-age) before it may sign.
    key_rotation_interval: int = 2592000
    jwks_max_age: int = 300
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        """Environment first; `.env` fills in only what the environment leaves unset."""
        env = dict(read_dotenv(dotenv)) if dotenv is not None else {}
        env.update(os.environ if environ is None else environ)

        secret = env.get("JWT_SECRET", "")
        if not secret:
            raise ConfigError("JWT_SECRET is not set: give it a random value of at least 32 bytes")
        if len(secret.encode()) < 32:
            raise ConfigError("JWT_SECRET is too short: it must be at least 32 bytes")
        algorithm = env.get("JWT_ALGORITHM", "").strip() or "HS256"
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"JWT_ALGORITHM must be one of {', '.join(ALGORITHMS)}")

        settings = cls(
            jwt_secret=secret,
            database_url=_url(env, "DATABASE_URL", cls.database_url, ("postgresql", "postgres")),
            redis_url=_url(env, "REDIS_URL", cls.redis_url, ("redis", "rediss", "unix")),
            redis_key_prefix=env.get("REDIS_KEY_PREFIX", cls.redis_key_prefix),
            redis_cluster_nodes=_addresses(env, "REDIS_CLUSTER_NODES"),
            redis_sentinels=_addresses(env, "REDIS_SENTINELS"),
            redis_sentinel_master=env.get("REDIS_SENTINEL_MASTER", "").strip() or None,
            redis_wait_replicas=_int(
                env,
                "REDIS_WAIT_REPLICAS",
                1 if env.get("REDIS_SENTINELS", "").strip() else 0,
                0,
            ),
            jwt_algorithm=algorithm,
            jwt_issuer=env.get("JWT_ISSUER", "").strip() or cls.jwt_issuer,
            jwt_audience=env.get("JWT_AUDIENCE", "").strip() or cls.jwt_audience,
            access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", cls.access_token_ttl),
            refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", cls.refresh_token_ttl),
            session_max_age=_int(env, "SESSION_MAX_AGE", cls.session_max_age),
            refresh_reuse_grace=_int(env, "REFRESH_REUSE_GRACE", cls.refresh_reuse_grace, 0),
            clock_skew=_int(env, "CLOCK_SKEW", cls.clock_skew, 1),
            proxies_count=_int(env, "PROXIES_COUNT", 0, 0) or None,
            real_ip_header=env.get("REAL_IP_HEADER", "").strip() or None,
            forwarded_secret=env.get("FORWARDED_SECRET", "").strip() or None,
            log_format=_choice(env, "LOG_FORMAT", cls.log_format, ("text", "json")),
            access_log=_bool(env, "ACCESS_LOG", cls.access_log),
            metrics_token=_metrics_token(env),
            cookie_secure=_bool(env, "COOKIE_SECURE", cls.cookie_secure),
            cors_origins=_origins(env, "CORS_ORIGINS"),
            audit_retention=_int(env, "AUDIT_RETENTION", cls.audit_retention),
            max_sessions_per_user=_int(env, "MAX_SESSIONS_PER_USER", cls.max_sessions_per_user),
            purge_interval=_int(env, "PURGE_INTERVAL", cls.purge_interval, 0),
            key_rotation_interval=_int(env, "KEY_ROTATION_INTERVAL", cls.key_rotation_interval),
            jwks_max_age=_int(env, "JWKS_MAX_AGE", cls.jwks_max_age),
            host=env.get("HOST", "").strip() or cls.host,
            port=_int(env, "PORT", cls.port, 0),
            workers=_int(env, "WORKERS", cls.workers),
        )
        if settings.redis_cluster_nodes and settings.redis_sentinels:
            raise ConfigError("set REDIS_CLUSTER_NODES or REDIS_SENTINELS, not both")
        if settings.redis_sentinels and not settings.redis_sentinel_master:
            raise ConfigError("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER, the master's name")
        if settings.redis_sentinel_master and not settings.redis_sentinels:
            raise ConfigError("REDIS_SENTINEL_MASTER needs REDIS_SENTINELS (host:port,...)")
        if settings.redis_cluster_nodes and settings.redis_wait_replicas:
            raise ConfigError(
                "REDIS_WAIT_REPLICAS is for one Redis or Sentinel; a cluster's masters are"
                " not waited for"
            )
        if settings.refresh_token_ttl > settings.session_max_age:
            raise ConfigError("REFRESH_TOKEN_TTL must not be longer than SESSION_MAX_AGE")
        if settings.jwks_max_age > settings.key_rotation_interval:
            raise ConfigError("JWKS_MAX_AGE must not be longer than KEY_ROTATION_INTERVAL")
        return settings


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """`scheme://host[:port],...`, each exactly as a browser sends it in `Origin` (lower
    case, no path, no default port); `*` is refused: credentials need named origins."""
    found: list[str] = []
    for item in env.get(name, "").split(","):
        raw = item.strip()
        if not raw:
            continue
        parts = urlsplit(raw.lower())
        try:
            port = parts.port
        except ValueError:
            port = -1
        default = {"http": 80, "https": 443}.get(parts.scheme)
        if (
            default is None
            or not parts.hostname
            or port == -1
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ConfigError(
                f"{name}: {raw!r} is not an origin like https://app.example.com or"
                " http://127.0.0.1:5173 (a scheme, a host, a port if not the default; no path)"
            )
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        if port == default:
            origin = origin.rsplit(":", 1)[0]
        if origin not in found:
            found.append(origin)
    return tuple(found)


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = env.get("METRICS_TOKEN", "").strip()
    if token and len(token) < MIN_METRICS_TOKEN:
        raise ConfigError(
            f"METRICS_TOKEN is too short: give it at least {MIN_METRICS_TOKEN} characters"
        )
    return token or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.config")
    parser.add_argument(
        "--exports", metavar="DOTENV", type=Path, required=True, help="print shell exports"
    )
    args = parser.parse_args(argv)
    print(shell_exports(args.exports, os.environ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
