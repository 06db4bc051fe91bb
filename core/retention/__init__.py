"""Retention: uploads deleted once processed, finished jobs expired after JOB_TTL_HOURS, orphan
files removed, and a storage quota that refuses uploads (507) before the disk fills."""
