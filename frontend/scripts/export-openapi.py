"""Write the API's OpenAPI schema as stable JSON for the frontend's generated client.

Run by `npm run gen:api` / `npm run check:api` with the repository's `.venv/bin/python`; it builds
the FastAPI app without serving it. The schema is exactly what the API serves at /api/openapi.json:
the result contract (`ml.contracts.AnalysisResult`) is in it because `JobPublic.result` is typed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def build_schema() -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT))
    from backend import main

    schema: dict[str, Any] = main.create_app().openapi()
    return schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    text = json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    args.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
