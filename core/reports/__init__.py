"""Evidence-grade reports: `signing` holds the key and the canonical form, `builder` the report
(written by the worker); `backend/reports/` serves the verify and public-key endpoints and the
same check offline (`deepscreen-report verify FILE`)."""
