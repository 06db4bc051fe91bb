"""The deployment files agree with each other and with the code (docs/deployment.md): Compose's
build targets exist in docker/Dockerfile, its bind mounts exist, Prometheus loads the alert rules
(checked with promtool where installed; required in CI), every worker has a healthcheck that
answers in time, Prometheus samples never land on the shared /data volume (docs/operations.md),
and the build context leaves out the environment, local state and secrets."""

from __future__ import annotations

import fnmatch
import json
import re
import runpy
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import REPO_ROOT
from tests.conftest import IN_CI

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
PROMETHEUS = REPO_ROOT / "docker" / "prometheus.yml"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
WORKER_SERVICES = ("worker", "worker-gpu")
SHARED_MOUNT = "/data"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def dockerfile_targets() -> set[str]:
    return set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE | re.IGNORECASE))


def dockerfile_stage(name: str) -> str:
    """The lines of one Dockerfile stage, from its FROM to the next."""
    text = DOCKERFILE.read_text()
    start = re.search(rf"^FROM\s+\S+\s+AS\s+{re.escape(name)}\s*$", text, flags=re.MULTILINE | re.IGNORECASE)
    assert start, f"no stage {name}"
    following = re.search(r"^FROM\s", text[start.end():], flags=re.MULTILINE)
    return text[start.start(): start.end() + following.start()] if following else text[start.start():]


def dockerfile_env() -> dict[str, str]:
    """Every `ENV KEY=value` of the Dockerfile (continuation lines joined)."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.+)$", text, flags=re.MULTILINE):
        found.update(part.split("=", 1) for part in shlex.split(line) if "=" in part)
    return found


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts.append((source, target))
    return mounts


def test_every_build_target_exists_and_images_are_split_by_process() -> None:
    services = compose()["services"]
    targets = {name: s["build"]["target"] for name, s in services.items() if "build" in s}

    assert set(targets.values()) <= dockerfile_targets()
    assert targets["api"] == "api"
    assert targets["worker"] == targets["worker-gpu"] == "worker"
    assert targets["web"] == "web"
    assert all(s["build"]["dockerfile"] == "docker/Dockerfile" for s in services.values() if "build" in s)


def test_one_worker_target_takes_the_torch_index_as_a_build_argument() -> None:
    """CPU and CUDA workers are the same lines: only TORCH_INDEX_URL differs (default: the CPU index)."""
    services = compose()["services"]
    worker_stage = dockerfile_stage("worker")

    assert DOCKERFILE.read_text().count("install-worker-packages\n") == 1, "the packages are installed in one stage"
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu\n" in worker_stage
    assert services["worker"]["build"]["args"]["TORCH_INDEX_URL"] == "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
    assert services["worker-gpu"]["build"]["args"]["TORCH_INDEX_URL"] == "", "PyPI's CUDA torch, hash-checked"
    assert services["worker"]["image"] != services["worker-gpu"]["image"]


def test_the_api_target_installs_only_the_api_lock() -> None:
    api_stage = dockerfile_stage("api")

    assert set(re.findall(r"requirements/\S+\.txt", api_stage)) == {"requirements/api.txt"}
    assert "torch" not in (REPO_ROOT / "requirements" / "api.txt").read_text()


def test_the_api_image_carries_only_the_ml_modules_the_api_and_beat_import() -> None:
    """Not the model weights (~20 MB) or the pipeline: the few torch-free contract modules, found by
    importing what the API (backend.main) and beat (worker.app with its task modules) import."""
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, backend.main, worker.app, worker.tasks, worker.operations; "
                               "print(' '.join(m for m in sys.modules if m == 'ml' or m.startswith('ml.')))"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()
    needed = {"ml/__init__.py" if m == "ml" else m.replace(".", "/") + ".py" for m in imported}
    copied = [source for line in re.findall(r"^COPY\s+(?!--from)(.+)$", dockerfile_stage("source-api"), re.MULTILINE)
              for source in line.split()[:-1]]

    assert set(copied) == needed
    assert "COPY --from=source-api /app /app" in dockerfile_stage("api")
    assert "ml" not in re.findall(r"^COPY\s+(\S+)", dockerfile_stage("source"), re.MULTILINE)


def test_every_copied_path_and_bind_mount_exists() -> None:
    text = DOCKERFILE.read_text()
    sources = [
        source
        for args in re.findall(r"^COPY\s+(?!--from)(.+)$", text, flags=re.MULTILINE)
        for source in args.split()[:-1]
    ]
    mounts = [source for service in compose()["services"].values() for source, _ in bind_mounts(service)]

    assert sources, "the Dockerfile copies something"
    assert [s for s in sources if not (REPO_ROOT / s).exists()] == []
    assert [m for m in mounts if not (REPO_ROOT / m).exists()] == []


def test_prometheus_mounts_and_loads_the_alert_rules() -> None:
    prometheus = compose()["services"]["prometheus"]
    rules = yaml.safe_load(PROMETHEUS.read_text())["rule_files"]
    mounted = {target: source for source, target in bind_mounts(prometheus)}

    loaded = [target for target in mounted if any(fnmatch.fnmatch(target, pattern) for pattern in rules)]
    assert [mounted[target] for target in loaded] == ["./deploy/prometheus/alerts.yml"]


def test_promtool_accepts_the_configuration_with_its_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool is not installed (Debian package prometheus); CI=true requires it")
        pytest.skip("promtool is not installed (Debian package prometheus)")
    # The container paths, moved under tmp_path: the same file with only its absolute paths replaced.
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    shutil.copy(ALERTS, rules_dir / "deepscreen-alerts.yml")
    (tmp_path / "metrics_token").write_text("token")
    config = PROMETHEUS.read_text().replace("/etc/prometheus/rules", str(rules_dir))
    config = config.replace("/prometheus/metrics_token", str(tmp_path / "metrics_token"))
    (tmp_path / "prometheus.yml").write_text(config)

    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )

    rules = sum(len(group["rules"]) for group in yaml.safe_load(ALERTS.read_text())["groups"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {rules} rules found" in checked.stdout + checked.stderr, "the rule file was loaded"


def image_healthcheck(stage: str) -> tuple[list[str], int]:
    """The exec-form HEALTHCHECK of a Dockerfile stage and its --timeout in seconds."""
    found = re.search(r"^HEALTHCHECK\s+(.*?)\s+CMD\s+(\[.*\])$", dockerfile_stage(stage), flags=re.MULTILINE)
    assert found, f"{stage}: an exec-form HEALTHCHECK"
    return json.loads(found[2]), int(re.search(r"--timeout=(\d+)s", found[1])[1])  # type: ignore[index]


def test_every_worker_has_a_healthcheck_that_answers_in_time() -> None:
    """The same check in the image and in Compose, with the ping's wait under the check's timeout (a
    real worker answers it: tests/deploy/test_worker_healthcheck.py)."""
    from worker.healthcheck import PING_TIMEOUT_SECONDS

    services = compose()["services"]
    command, image_timeout = image_healthcheck("worker")
    assert command == ["python", "-m", "worker.healthcheck"]
    assert PING_TIMEOUT_SECONDS < image_timeout
    for name in WORKER_SERVICES:
        check = services[name]["healthcheck"]
        assert not check.get("disable"), name
        assert check["test"] == ["CMD", *command], name
        assert PING_TIMEOUT_SECONDS < int(check["timeout"].rstrip("s")), f"{name}: killed before the ping gives up"


def test_prometheus_samples_never_go_to_the_shared_volume() -> None:
    image_dir = dockerfile_env()["PROMETHEUS_MULTIPROC_DIR"]
    assert not image_dir.startswith(SHARED_MOUNT), "the images' default is outside /data"
    for name, service in compose()["services"].items():
        directory = (service.get("environment") or {}).get("PROMETHEUS_MULTIPROC_DIR")
        if directory is None:
            continue
        mounted = [v.split(":")[1] for v in service.get("volumes", [])]
        assert not any(directory.startswith(target) for target in mounted), name
        tmpfs = {entry.split(":")[0]: entry.partition(":")[2] for entry in service.get("tmpfs", [])}
        assert directory in tmpfs, f"{name}: a container-local tmpfs"
        assert "mode=1777" in tmpfs[directory], f"{name}: writable by the image's unprivileged user"


def docs_docker_run_recipes() -> list[str]:
    recipes = []
    for path in (REPO_ROOT / "docs").glob("*.md"):
        text = path.read_text().replace("\\\n", " ")
        recipes += [line for line in text.splitlines() if re.search(r"\bdocker run\b.*\s-v\s", line)]
    return recipes


def test_the_docs_docker_run_recipes_keep_metrics_off_shared_storage() -> None:
    recipes = docs_docker_run_recipes()

    assert len(recipes) >= 2, "docs/deployment.md has the GPU and remote-worker recipes"
    for recipe in recipes:
        mounted = re.findall(r"\s-v\s+\S+:(\S+)", recipe)
        assert SHARED_MOUNT in mounted
        explicit = re.findall(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", recipe)
        assert not any(d.startswith(tuple(mounted)) for d in explicit), recipe
        assert re.search(r"deepscreen-worker:\S+", recipe), f"a worker image of docker/Dockerfile: {recipe}"


def test_the_build_context_leaves_out_the_environment_state_and_secrets() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())

    assert {".venv", "var", ".env", "runs", ".git", "node_modules", "**/node_modules", "frontend/dist"} <= ignored
    assert not (ignored & {"backend", "worker", "ml", "requirements", "frontend", "nginx", "migrations"})


def test_the_podman_smoke_stack_differs_only_in_what_this_host_lacks(tmp_path: Path) -> None:
    """scripts/compose-smoke runs deploy/podman/render_compose.py's output: same services, commands,
    environment, healthchecks and tmpfs; only images, build sections, paths and the GPU service differ."""
    render = runpy.run_path(str(REPO_ROOT / "deploy" / "podman" / "render_compose.py"))["render"]
    original = compose()["services"]

    rendered = render(compose(), REPO_ROOT, tmp_path / "smoke.env")["services"]

    assert set(rendered) == set(original) - {"worker-gpu"}
    for name, service in rendered.items():
        before = original[name]
        for key in ("command", "entrypoint", "environment", "healthcheck", "tmpfs", "ports", "depends_on"):
            assert service.get(key) == before.get(key), (name, key)
        assert "build" not in service
        assert all(not v.startswith("./") for v in service.get("volumes", []))
    assert rendered["api"]["image"] == "localhost/" + original["api"]["image"]
    assert rendered["postgres"]["image"].startswith("localhost/deepscreen-standin-")
