"""Write the API's OpenAPI schema as stable JSON for the frontend's generated client.

Run by `npm run gen:api` / `npm run check:api` with the repository's `.venv/bin/python`; it builds
the FastAPI app without serving it. The result contract (`ml.contracts.AnalysisResult`) is added to
the components when the API does not reference it itself, so the client's result types are
generated from the same Python source as the pipeline's, never written by hand.
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
    from ml.contracts import AnalysisResult

    app = main.create_app() if hasattr(main, "create_app") else main.app
    schema: dict[str, Any] = app.openapi()
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    extra = AnalysisResult.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
    for name, definition in extra.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("AnalysisResult", extra)
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
