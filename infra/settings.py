"""Configuration, read once from the environment and validated at start.

A bad value raises ``ConfigError`` whose message is one line naming the
variable and what is wrong with it; the CLI prints it and exits.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from domain.limits import BudgetSpec, RoleBudgets
from infra.redis_url import RedisAddress

ENVIRONMENTS = ("development", "production")
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TRUST_MODES = ("off", "required")


class ConfigError(Exception):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    redis_url: str | None
    # (key id, secret) pairs: the first signs, every one verifies (key rotation).
    jwt_keys: tuple[tuple[str, str], ...]
    environment: str
    trusted_proxies: tuple[str, ...]
    graphiql: bool
    introspection: bool
    log_level: str
    log_format: str
    data_dir: Path
    access_token_ttl_seconds: int = 900
    jwt_issuer: str = "marketgraph"
    jwt_audience: str = "marketgraph-api"
    max_body_bytes: int = 1_000_000
    starting_balance: Decimal = Decimal(1000)
    db_pool_size: int = 16
    redis_key_prefix: str = "mg:"
    refresh_token_ttl_seconds: int = 30 * 86_400
    signin_account_limit: int = 5
    signin_client_limit: int = 20
    signup_client_limit: int = 10
    positions_public: bool = True
    query_max_cost: int = 1_000
    query_max_depth: int = 12
    query_max_introspection_depth: int = 15
    query_max_aliases: int = 30
    query_max_directives: int = 50
    query_max_selections: int = 10_000
    query_max_tokens: int = 2_000
    query_max_operations: int = 20
    operation_name_max_chars: int = 100
    compiled_reads: bool = True
    # Query plans of the compiled read path kept per process (least recently used go first).
    plan_cache_size: int = 1_024
    redis_pool_size: int = 64
    signin_account_ceiling: int = 100
    refresh_reuse_grace_seconds: int = 10
    session_lifetime_seconds: int = 90 * 86_400
    rate_limits: bool = True
    budgets: RoleBudgets = field(default_factory=RoleBudgets)
    db_pool_overflow: int = 0
    # The compiled read path's own pool (infra/db/compiled_reads.py): most reads use it.
    db_read_pool_size: int = 16
    db_pool_timeout_seconds: float = 5.0
    # Exact origins allowed to call the API from a browser ("*" for any), and whether
    # http://localhost, 127.0.0.1 and [::1] on any port are allowed too (development).
    cors_origins: tuple[str, ...] = ()
    cors_localhost: bool = False
    max_header_bytes: int = 32_768
    graphiql_assets_dir: Path | None = None
    # Jobs (see README, "Trading, lifecycle and jobs").
    job_queue: str = "mg:jobs"
    jobs_in_process: bool = True
    worker_concurrency: int = 10
    job_max_attempts: int = 5
    job_retry_delay_seconds: int = 1
    job_retry_max_delay_seconds: int = 300
    job_timeout_seconds: int = 3600
    job_heartbeat_seconds: int = 60
    worker_sweep_seconds: int = 30
    settlement_batch_size: int = 500
    market_close_cron: str = "* * * * *"
    # Caching and persisted queries (see README, "Caching and persisted queries").
    response_cache: bool = True
    cache_max_age_seconds: int = 60
    cache_stale_seconds: int = 10
    cache_wait_seconds: float = 5.0
    cache_timeout_seconds: float = 0.25
    cache_max_entries: int = 10_000
    cache_max_bytes: int = 256_000_000
    cache_max_entry_bytes: int = 1_000_000
    cache_near_bytes: int = 64_000_000
    apq: bool = True
    apq_ttl_seconds: int = 86_400
    trusted_documents: str = "off"
    trusted_documents_admin: bool = False

    @property
    def jwt_secret(self) -> str:
        """The key new tokens are signed with."""
        return self.jwt_keys[0][1]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        environment = _choice(env, "MARKETGRAPH_ENV", "development", ENVIRONMENTS)
        production = environment == "production"
        data_dir = Path(env.get("MARKETGRAPH_DATA_DIR") or ".marketgraph")
        if production and not env.get("DATABASE_URL"):
            # The embedded default would serve production traffic from a local file,
            # with the demo data's published passwords: refuse rather than guess.
            raise ConfigError(
                "DATABASE_URL: required when MARKETGRAPH_ENV=production"
                " (postgresql://user:password@host:5432/database)"
            )
        database_url = _database_url(
            env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'marketgraph.db'}"
        )
        cors_raw = env.get("CORS_ORIGINS")
        return cls(
            database_url=database_url,
            redis_url=_redis_url(env.get("REDIS_URL") or None),
            jwt_keys=_jwt_keys(env.get("JWT_KEYS"))
            or (("primary", _jwt_secret(env.get("JWT_SECRET"), production, data_dir)),),
            environment=environment,
            trusted_proxies=_proxies(env.get("TRUSTED_PROXIES", "127.0.0.1")),
            graphiql=_flag(env, "GRAPHIQL_ENABLED", default=not production),
            introspection=_flag(env, "INTROSPECTION_ENABLED", default=not production),
            log_level=_choice(env, "LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
            log_format=_choice(env, "LOG_FORMAT", "json", LOG_FORMATS),
            data_dir=data_dir,
            access_token_ttl_seconds=_int(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 30, 86_400),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_000_000, 1_000, 100_000_000),
            starting_balance=_decimal(env, "STARTING_BALANCE", Decimal(1000)),
            db_pool_size=_int(env, "DB_POOL_SIZE", 16, 1, 200),
            redis_key_prefix=env.get("REDIS_KEY_PREFIX", "mg:"),
            refresh_token_ttl_seconds=_int(
                env, "REFRESH_TOKEN_TTL_SECONDS", 30 * 86_400, 300, 365 * 86_400
            ),
            signin_account_limit=_int(env, "SIGNIN_ACCOUNT_LIMIT", 5, 1, 1000),
            signin_client_limit=_int(env, "SIGNIN_CLIENT_LIMIT", 20, 1, 100_000),
            signup_client_limit=_int(env, "SIGNUP_CLIENT_LIMIT", 10, 1, 1_000_000),
            positions_public=_flag(env, "POSITIONS_PUBLIC", default=True),
            query_max_cost=_int(env, "QUERY_MAX_COST", 1_000, 1, 10_000_000),
            query_max_depth=_int(env, "QUERY_MAX_DEPTH", 12, 1, 100),
            query_max_introspection_depth=_int(env, "QUERY_MAX_INTROSPECTION_DEPTH", 15, 1, 100),
            query_max_aliases=_int(env, "QUERY_MAX_ALIASES", 30, 0, 10_000),
            query_max_directives=_int(env, "QUERY_MAX_DIRECTIVES", 50, 0, 10_000),
            query_max_selections=_int(env, "QUERY_MAX_SELECTIONS", 10_000, 1, 1_000_000),
            query_max_tokens=_int(env, "QUERY_MAX_TOKENS", 2_000, 10, 1_000_000),
            query_max_operations=_int(env, "QUERY_MAX_OPERATIONS", 20, 1, 1_000),
            operation_name_max_chars=_int(env, "OPERATION_NAME_MAX_CHARS", 100, 1, 10_000),
            compiled_reads=_flag(env, "COMPILED_READS", default=True),
            plan_cache_size=_int(env, "PLAN_CACHE_SIZE", 1_024, 1, 1_000_000),
            redis_pool_size=_int(env, "REDIS_POOL_SIZE", 64, 4, 10_000),
            signin_account_ceiling=_int(env, "SIGNIN_ACCOUNT_CEILING", 100, 1, 1_000_000),
            refresh_reuse_grace_seconds=_int(env, "REFRESH_REUSE_GRACE_SECONDS", 10, 0, 300),
            session_lifetime_seconds=_int(
                env, "SESSION_LIFETIME_SECONDS", 90 * 86_400, 300, 3_650 * 86_400
            ),
            rate_limits=_flag(env, "RATE_LIMITS", default=True),
            budgets=_budgets(env),
            db_pool_overflow=_int(env, "DB_POOL_OVERFLOW", 0, 0, 200),
            db_read_pool_size=_int(env, "DB_READ_POOL_SIZE", 16, 1, 200),
            db_pool_timeout_seconds=_seconds(env, "DB_POOL_TIMEOUT_SECONDS", 5.0, 0.1, 300.0),
            cors_origins=_origins(cors_raw) if cors_raw else (),
            cors_localhost=not production and not cors_raw,
            max_header_bytes=_int(env, "MAX_HEADER_BYTES", 32_768, 1_024, 1_048_576),
            graphiql_assets_dir=Path(env["GRAPHIQL_ASSETS_DIR"])
            if env.get("GRAPHIQL_ASSETS_DIR")
            else None,
            job_queue=env.get("JOB_QUEUE") or f"{env.get('REDIS_KEY_PREFIX', 'mg:')}jobs",
            jobs_in_process=_jobs_in_process(env),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", 10, 1, 1000),
            job_max_attempts=_int(env, "JOB_MAX_ATTEMPTS", 5, 1, 100),
            job_retry_delay_seconds=_int(env, "JOB_RETRY_DELAY_SECONDS", 1, 0, 3600),
            job_retry_max_delay_seconds=_int(env, "JOB_RETRY_MAX_DELAY_SECONDS", 300, 1, 86_400),
            job_timeout_seconds=_int(env, "JOB_TIMEOUT_SECONDS", 3600, 1, 86_400),
            job_heartbeat_seconds=_int(env, "JOB_HEARTBEAT_SECONDS", 60, 1, 3600),
            worker_sweep_seconds=_int(env, "WORKER_SWEEP_SECONDS", 30, 1, 3600),
            settlement_batch_size=_int(env, "SETTLEMENT_BATCH_SIZE", 500, 1, 10_000),
            market_close_cron=_cron(env, "MARKET_CLOSE_CRON", "* * * * *"),
            response_cache=_flag(env, "RESPONSE_CACHE", default=True),
            cache_max_age_seconds=_int(env, "CACHE_MAX_AGE_SECONDS", 60, 1, 86_400),
            cache_stale_seconds=_int(env, "CACHE_STALE_SECONDS", 10, 0, 3_600),
            cache_wait_seconds=_seconds(env, "CACHE_WAIT_SECONDS", 5.0, 0.01, 60.0),
            cache_timeout_seconds=_int(env, "CACHE_TIMEOUT_MS", 250, 1, 10_000) / 1000,
            cache_max_entries=_int(env, "CACHE_MAX_ENTRIES", 10_000, 1, 10_000_000),
            cache_max_bytes=_int(env, "CACHE_MAX_BYTES", 256_000_000, 1_000, 100_000_000_000),
            cache_max_entry_bytes=_int(env, "CACHE_MAX_ENTRY_BYTES", 1_000_000, 100, 100_000_000),
            cache_near_bytes=_int(env, "CACHE_NEAR_BYTES", 64_000_000, 0, 100_000_000_000),
            apq=_flag(env, "APQ", default=True),
            apq_ttl_seconds=_int(env, "APQ_TTL_SECONDS", 86_400, 1, 365 * 86_400),
            trusted_documents=_choice(env, "TRUSTED_DOCUMENTS", "off", TRUST_MODES),
            trusted_documents_admin=_flag(env, "TRUSTED_DOCUMENTS_ADMIN", default=False),
        )


def _budgets(env: Mapping[str, str]) -> RoleBudgets:
    """``BUDGET_<ROLE>=capacity:restore_per_second`` overrides a role's default budget."""
    defaults = RoleBudgets()
    return RoleBudgets(
        anonymous=_budget(env, "BUDGET_ANONYMOUS", defaults.anonymous),
        user=_budget(env, "BUDGET_USER", defaults.user),
        moderator=_budget(env, "BUDGET_MODERATOR", defaults.moderator),
        admin=_budget(env, "BUDGET_ADMIN", defaults.admin),
    )


def _budget(env: Mapping[str, str], name: str, default: BudgetSpec) -> BudgetSpec:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    capacity, sep, rate = raw.strip().partition(":")
    try:
        spec = BudgetSpec(capacity=int(capacity), restore_per_second=float(rate))
    except ValueError:
        spec = None
    if not sep or spec is None or spec.capacity > 10_000_000 or not spec.restore_per_second < 1e7:
        raise ConfigError(
            f"{name}: expected capacity:restore_per_second, e.g. 1000:50 (positive numbers)"
        )
    return spec


def _database_url(raw: str) -> str:
    try:
        url: URL = make_url(raw)
    except (ArgumentError, ValueError):
        # make_url raises ValueError for a port that is not a number.
        raise ConfigError(
            "DATABASE_URL: not a database URL (expected postgresql://user@host:port/db"
            " or sqlite+aiosqlite:///path)"
        ) from None
    if url.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        if not url.database:
            raise ConfigError("DATABASE_URL: names no database")
        if url.port is not None and not 0 < url.port < 65_536:
            raise ConfigError(f"DATABASE_URL: port {url.port} is out of range")
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername in ("sqlite", "sqlite+aiosqlite"):
        if not url.database or url.database == ":memory:":
            raise ConfigError("DATABASE_URL: SQLite needs a file path")
        url = url.set(drivername="sqlite+aiosqlite")
    else:
        raise ConfigError(
            f"DATABASE_URL: unsupported database '{url.drivername}' (use postgresql or sqlite)"
        )
    return url.render_as_string(hide_password=False)


def _redis_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        RedisAddress.from_url(raw)
    except ValueError as error:
        raise ConfigError(f"REDIS_URL: {error}") from None
    return raw


def _jwt_keys(raw: str | None) -> tuple[tuple[str, str], ...]:
    if not raw or not raw.strip():
        return ()
    keys: list[tuple[str, str]] = []
    for item in raw.split(","):
        kid, sep, secret = item.strip().partition(":")
        if not sep or not kid or not secret:
            raise ConfigError("JWT_KEYS: expected kid:secret[,kid:secret...]")
        if len(secret) < 32:
            raise ConfigError(f"JWT_KEYS: the secret of key '{kid}' must be at least 32 characters")
        if any(kid == known for known, _ in keys):
            raise ConfigError(f"JWT_KEYS: key id '{kid}' appears twice")
        keys.append((kid, secret))
    return tuple(keys)


def _jwt_secret(raw: str | None, production: bool, data_dir: Path) -> str:
    if raw:
        if len(raw) < 32:
            raise ConfigError("JWT_SECRET: must be at least 32 characters long")
        return raw
    if production:
        raise ConfigError("JWT_SECRET: required when MARKETGRAPH_ENV=production (or JWT_KEYS)")
    # Development: a random secret kept beside the embedded database, so tokens
    # survive restarts without anyone having to invent a secret.
    path = data_dir / "jwt-secret"
    try:
        if path.exists():
            stored = path.read_text().strip()
            if len(stored) < 32:
                raise ConfigError(
                    f"JWT_SECRET: the generated secret in {path} is damaged; delete it"
                )
            return stored
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        # Created private from the start: no moment at which others can read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secret)
    except OSError as error:
        raise ConfigError(
            f"MARKETGRAPH_DATA_DIR: cannot keep the development JWT secret in {data_dir}"
            f" ({error.strerror or error}); set JWT_SECRET or choose another directory"
        ) from None
    return secret


def _proxies(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"TRUSTED_PROXIES: '{item}' is not an IP address or network"
            ) from None
    return items


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: must be true or false")


def _choice(
    env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...], upper: bool = False
) -> str:
    value = (env.get(name) or default).strip()
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise ConfigError(f"{name}: must be one of {', '.join(allowed)}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}")
    return value


def _decimal(env: Mapping[str, str], name: str, default: Decimal) -> Decimal:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name}: must be a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{name}: must be a non-negative number")
    return value


def _origins(raw: str) -> tuple[str, ...]:
    """Browser origins as the ``Origin`` header spells them: scheme://host[:port], lower case,
    no default port, no path; ``*`` for any origin, ``none`` for no origin at all."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if items == ["none"]:
        return ()
    if "*" in items:
        if len(items) > 1:
            raise ConfigError("CORS_ORIGINS: '*' allows every origin; list no others with it")
        return ("*",)
    origins: list[str] = []
    for item in items:
        parsed = urlsplit(item.lower())
        try:
            port = parsed.port
        except ValueError:
            raise ConfigError(f"CORS_ORIGINS: '{item}' has a bad port") from None
        if (
            parsed.scheme not in ("http", "https")
            or not parsed.hostname
            or parsed.path not in ("", "/")
            or parsed.query
            or parsed.fragment
            or parsed.username is not None
        ):
            raise ConfigError(
                f"CORS_ORIGINS: '{item}' is not an origin"
                " (expected scheme://host[:port], * or none)"
            )
        host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
        default_port = {"http": 80, "https": 443}[parsed.scheme]
        origins.append(
            f"{parsed.scheme}://{host}" + (f":{port}" if port not in (None, default_port) else "")
        )
    return tuple(origins)


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a number of seconds") from None
    if not low <= value <= high:  # NaN fails this too
        raise ConfigError(f"{name}: must be between {low:g} and {high:g} seconds")
    return value


def _jobs_in_process(env: Mapping[str, str]) -> bool:
    """Without Redis, jobs can only run inside the API process."""
    redis = bool(env.get("REDIS_URL"))
    in_process = _flag(env, "RUN_JOBS_IN_PROCESS", default=not redis)
    if not in_process and not redis:
        raise ConfigError(
            "RUN_JOBS_IN_PROCESS: false needs REDIS_URL (workers take their jobs from Redis)"
        )
    return in_process


def _cron(env: Mapping[str, str], name: str, default: str) -> str:
    from croniter import croniter

    value = (env.get(name) or default).strip()
    if not croniter.is_valid(value):
        raise ConfigError(f"{name}: '{value}' is not a cron expression")
    return value
