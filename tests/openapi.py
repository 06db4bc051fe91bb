"""Validate JSON answers against the OpenAPI document the API itself serves (not the frontend's copy)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator


def schema_errors(document: dict[str, Any], component: str, instance: object) -> list[str]:
    """Every way `instance` breaks `#/components/schemas/<component>` of `document` (OpenAPI 3.1 is
    JSON Schema 2020-12, so its `$ref`s resolve inside the document itself)."""
    assert component in document["components"]["schemas"], f"{component} is not in the served schema"
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(instance)]
