"""Read-only share links: the owner of a job lets someone without an account (or another account)
see its result and files, until the link expires or is revoked."""
