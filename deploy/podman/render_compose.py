"""docker-compose.yml as the stack to run under podman-compose 1.0 (Debian 12) on a host with no
registry: what changes is only what that host lacks, so the smoke test runs the same services,
commands, environment, volumes, tmpfs and healthchecks.

- postgres, redis and prometheus use the stand-ins built from Debian's packages (Containerfile);
- the DeepScreen images are built beforehand (podman-compose 1.0 cannot pass build-time volumes,
  which the wheel cache needs), so `build:` is dropped and `image:` names what was built;
- `env_file` with `required: false` (Compose 2.24) is written in the older list form;
- bind mounts and the env file get absolute paths (the output lives outside the repository root);
- the `gpu` profile's service is left out (podman-compose 1.0 ignores profiles);
- podman-compose 1.0 ignores `depends_on` conditions, so the worker and beat restart until the
  API has migrated (their `restart: unless-stopped` already says so).

Usage: python deploy/podman/render_compose.py docker-compose.yml ENV_FILE OUTPUT.yml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

STAND_INS = {
    "postgres": "localhost/deepscreen-standin-postgres:latest",
    "redis": "localhost/deepscreen-standin-redis:latest",
    "prometheus": "localhost/deepscreen-standin-prometheus:latest",
}
LEFT_OUT = ("worker-gpu",)


def render(compose: dict[str, Any], root: Path, env_file: Path) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for name, service in compose["services"].items():
        if name in LEFT_OUT:
            continue
        service = dict(service)
        if name in STAND_INS:
            service["image"] = STAND_INS[name]
        if "build" in service:
            del service["build"]
            service["image"] = f"localhost/{service['image']}"
        if "env_file" in service:
            service["env_file"] = [str(env_file)]
        if "volumes" in service:
            service["volumes"] = [str(root / v[2:v.index(":")]) + v[v.index(":"):] if v.startswith("./") else v
                                  for v in service["volumes"]]
        service.pop("profiles", None)
        services[name] = service
    return {**{k: v for k, v in compose.items() if not k.startswith("x-")}, "services": services}


def main(source: str, env_file: str, output: str) -> None:
    path = Path(source).resolve()
    rendered = render(yaml.safe_load(path.read_text()), path.parent, Path(env_file).resolve())
    Path(output).write_text(yaml.safe_dump(rendered, sort_keys=False))


if __name__ == "__main__":
    main(*sys.argv[1:4])
