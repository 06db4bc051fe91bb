"""The built web app (frontend/dist) served by the API itself in the embedded default.

The app routes in the browser (/jobs/<id>, /history, ...), so a reload or a shared link asks the
server for a path that is no file: those get index.html, as nginx's `try_files` does in a team
deployment. Paths under /api/ and missing assets still get a 404, never the app.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class SinglePageApp(StaticFiles):
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory=directory, html=True)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or not _is_app_route(path):
                raise
            return await super().get_response("index.html", scope)


def _is_app_route(path: str) -> bool:
    parts = PurePosixPath(path).parts
    # A file name with an extension (a missing asset) is a real 404, as is anything under /api/.
    return not (parts and parts[0] == "api") and "." not in (parts[-1] if parts else "")
