"""Live job updates: workers publish, API replicas relay to browsers as Server-Sent Events.

- `publisher.publish_job_event` (worker side, sync) publishes a `JobEvent` on the job's Redis
  channel when REDIS_URL is set; without Redis it does nothing, since the API watches the row.
- `stream.job_events` (API side, async) yields a job's events until it is final: relayed from
  Redis pub/sub when configured (any replica relays any worker), otherwise by short polling of
  the job row, so the embedded default needs no extra server. The row is always the truth: the
  stream re-reads it at start, on a final event, and every few seconds.
- `routes.router` serves `GET /api/jobs/{job_id}/events`, authorised like `GET /api/jobs/{job_id}`.
"""
