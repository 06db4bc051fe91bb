"""Evidence-grade reports: `report.json` says what was analysed, when, by which model under which
thresholds, and what was found, and carries an Ed25519 signature anyone can check later.

`signing` holds the key and the canonical form, `builder` the report, `routes` the verify and
public-key endpoints, and `python -m backend.reports verify FILE` the same check offline.
"""
