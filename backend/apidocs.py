"""Interactive API docs at /api/docs that work with no network: Swagger UI from a package.

FastAPI's own /docs loads Swagger UI from a CDN (a blank page offline) and starts it with an inline
script, which the web app's Content-Security-Policy (`script-src 'self'`) blocks behind nginx. Here
the assets come from the `fastapi-swagger` wheel (Swagger UI 5, which reads OpenAPI 3.1; the
`swagger-ui-bundle` package ships 4.x, which cannot) and the page starts it from a script file.
Everything is under /api/, so nginx's one proxied prefix exposes it; /docs redirects here.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.deps import UnitOfWorkRoute

DOCS_PATH = "/api/docs"
OPENAPI_PATH = "/api/openapi.json"
_ASSETS = resources.files("fastapi_swagger.resources")
_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_START = f"""window.ui = SwaggerUIBundle({{
  url: "{OPENAPI_PATH}",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
}});
"""
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>DeepScreen API</title>
<link rel="stylesheet" href="{DOCS_PATH}/assets/swagger-ui.css">
<link rel="icon" href="{DOCS_PATH}/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_PATH}/assets/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/assets/start.js"></script>
</body>
</html>
"""
_CACHE = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(include_in_schema=False, route_class=UnitOfWorkRoute)


@router.get(DOCS_PATH)
def docs_page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-cache"})


@router.get(DOCS_PATH + "/assets/start.js")
def docs_start() -> Response:
    return Response(_START, media_type="text/javascript", headers=_CACHE)


@router.get(DOCS_PATH + "/assets/{name}")
def docs_asset(name: str) -> Response:
    media_type = _MEDIA_TYPES.get(name)
    if media_type is None:  # only the listed files: never a path into the package
        raise HTTPException(status_code=404, detail="No such file.")
    return Response(_asset(name), media_type=media_type, headers=_CACHE)


@cache
def _asset(name: str) -> bytes:
    return _ASSETS.joinpath(name).read_bytes()


@router.get("/docs")
def old_docs() -> RedirectResponse:
    """Where FastAPI's docs used to be (and the README said they were)."""
    return RedirectResponse(DOCS_PATH, status_code=308)


@router.get("/openapi.json")
def old_openapi() -> RedirectResponse:
    return RedirectResponse(OPENAPI_PATH, status_code=308)
