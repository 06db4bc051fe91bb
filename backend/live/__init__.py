"""Live job updates: workers publish, API replicas relay to browsers as Server-Sent Events.

- `core.live.publisher.publish_job_event` (worker side, sync) publishes a `JobEvent` on the job's
  Redis channel when REDIS_URL is set; without Redis it does nothing, since the API watches the row.
- `feed.event_feed` (API side, chosen once per app): with Redis, ONE pub/sub connection per API
  process fans events out to every open stream (any replica relays any worker); without Redis,
  no feed, and streams poll the job row, so the embedded default needs no extra server.
- `stream.job_events` (async) yields a job's events until it is final. The row is always the
  truth: the stream re-reads it at start, on a final event, and every few seconds.
- `routes.router` serves `GET /api/jobs/{job_id}/events`, authorised like `GET /api/jobs/{job_id}`.
"""
