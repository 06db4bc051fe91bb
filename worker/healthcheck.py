"""`python -m worker.healthcheck`: exit 0 when this host's worker answers Celery's ping.

The worker containers' healthcheck (docker/Dockerfile, docker-compose.yml). Only the worker's main
process answers, and only once it is connected and consuming. The node is named here by the same
function that names the worker (`worker_node_name`, passed to it by `python -m worker`), not from
`$HOSTNAME`: that variable is not exported into a healthcheck's exec session everywhere (Podman 4.3
leaves it out, though the container's first process has it), so the former
`celery inspect ping --destination celery@$HOSTNAME` pinged `celery@`, which no worker is, and
reported every worker unhealthy.
"""

from __future__ import annotations

import sys

from celery.utils.nodenames import default_nodename

PING_TIMEOUT_SECONDS = 10.0
"""How long to wait for the reply; under the healthcheck's own timeout (20 s), so a slow reply is a
failed check rather than a killed one."""


def worker_node_name() -> str:
    """`celery@<this host's name>`: Celery's default node name, which `python -m worker` sets explicitly."""
    return default_nodename(None)


def main() -> int:
    from worker.app import celery_app

    node = worker_node_name()
    replies = celery_app.control.ping(destination=[node], timeout=PING_TIMEOUT_SECONDS)
    if any(node in reply for reply in replies):
        return 0
    sys.stderr.write(f"worker {node} did not answer Celery's ping within {PING_TIMEOUT_SECONDS:g} s\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
