"""Accounts: users, sessions, API keys, tiers and quotas, job ownership (the HTTP side is `backend/accounts/`)."""
