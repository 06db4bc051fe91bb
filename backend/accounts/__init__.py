"""Accounts and access control: users, sessions, API keys, tiers and quotas, job ownership.

Public surface:

- `deps.CallerDep`: who is calling (a user through a session cookie, a Bearer access token or an
  API key; or anonymous), from which client address, with which job tokens; `deps.VisibleJobDep`:
  the job named in the path, or 404 for anyone who is neither its owner nor holds its token.
- `service`: register, log in and out, API keys, quota, `can_access_job`.
- `routes.router`: `/api/auth/*` and `/api/account/*`.

See docs/security.md for the threats considered and the tests that cover each.
"""
