"""Live job updates, publishing side: `publisher.publish_job_event` sends a `JobEvent` on the job's
Redis channel after commit (the API relays them, see `backend/live/`)."""
