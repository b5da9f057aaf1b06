"""compose.yaml and the Dockerfile, read as Docker would read them (Docker does not run here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from graph.graphiql import ASSETS

ROOT = Path(__file__).resolve().parents[2]
# A release, not a moving tag: PostgreSQL's releases are major.minor, the others' x.y.z.
EXACT_TAG = re.compile(r"^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$")
APP_SERVICES = ("migrate", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


# --- compose.yaml -------------------------------------------------------------------------


def test_compose_has_the_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}


def test_third_party_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    assert re.match(r"postgres:15\.\d+-", services["postgres"]["image"])
    assert re.match(r"redis:7\.\d+\.\d+-", services["redis"]["image"])
    for name in ("postgres", "redis"):
        assert EXACT_TAG.match(services[name]["image"]), services[name]["image"]


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("postgres", "redis", "api", "worker"):
        check = services[name]["healthcheck"]
        assert check["test"][0] == "CMD", name
        assert len(check["test"]) > 1, name
        assert {"interval", "timeout", "retries"} <= set(check), name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert any("/health/ready" in part for part in services["api"]["healthcheck"]["test"])


def test_migrate_runs_once_after_postgres_is_healthy(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["marketgraph", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    # The image's HTTP healthcheck cannot apply to a one-shot job; its exit status does.
    assert migrate["healthcheck"] == {"disable": True}


def test_api_and_worker_wait_for_the_migration(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert services["api"]["command"][:2] == ["marketgraph", "serve"]
    assert "0.0.0.0" in services["api"]["command"]
    assert services["worker"]["command"] == ["marketgraph", "worker"]


def test_app_services_run_the_image_in_production(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == "."
        env = service["environment"]
        assert env["MARKETGRAPH_ENV"] == "production"
        assert env["DATABASE_URL"].startswith("postgresql://marketgraph:")
        assert "@postgres:5432/marketgraph" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        # Required from the operator, never a default written into the file.
        assert env["JWT_SECRET"].startswith("${JWT_SECRET:?")
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_data_survives_restarts(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "--appendonly" in services["redis"]["command"]


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="needs Docker Compose",
)
def test_docker_compose_accepts_the_file() -> None:
    env = {"POSTGRES_PASSWORD": "p", "JWT_SECRET": "s" * 32, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr


# --- Dockerfile ---------------------------------------------------------------------------


def test_base_images_are_pinned_to_exact_versions() -> None:
    bases = [rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"]
    assert len(bases) == 3
    for base in bases:
        assert EXACT_TAG.match(base), base
    python = [base for base in bases if base.startswith("python:")]
    assert len(python) == 2
    assert python[0] == python[1]  # build and runtime match
    assert re.match(r"python:3\.11\.\d+-", python[0]), python[0]  # 3.11.x, not 3.11
    assert re.match(r"node:\d+\.\d+\.\d+-", bases[0]), bases[0]


def test_healthcheck_is_liveness() -> None:
    (check,) = [rest for keyword, rest in instructions() if keyword == "HEALTHCHECK"]
    for option in ("--interval=", "--timeout=", "--retries="):
        assert option in check
    assert "CMD" in check
    assert "/health'" in check  # liveness: /health, not /health/ready
    assert "/health/ready" not in check


def test_runtime_runs_unprivileged_in_production() -> None:
    steps = instructions()
    runtime = steps[max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM") :]
    assert ("USER", "marketgraph") in runtime
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "MARKETGRAPH_ENV=production" in env
    assert ("EXPOSE", "8000") in runtime


def test_graphiql_assets_are_the_pinned_npm_files() -> None:
    steps = instructions()
    (pack,) = [rest for keyword, rest in steps if keyword == "RUN" and "npm pack" in rest]
    for asset in ASSETS:
        assert f"{asset.package}@{asset.version}" in pack, asset
        assert f"package/{asset.path} > /graphiql/{asset.name}" in pack, asset
    assert ("COPY", "--from=graphiql /graphiql /opt/graphiql") in steps
    env = " ".join(rest for keyword, rest in steps if keyword == "ENV")
    assert "GRAPHIQL_ASSETS_DIR=/opt/graphiql" in env
