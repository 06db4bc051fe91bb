"""Local file storage for uploads and artifacts, under server-generated names only.

Layout under `STORAGE_DIR`::

    tmp/<random>.part          uploads being received (deleted on any failure)
    uploads/<job id>.<format>  accepted uploads, moved here atomically (rename)
    artifacts/<job id>/        overlays, frames and report.json written by the worker

A client's filename never reaches a path: it is sanitised and stored as metadata only.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import unicodedata
from pathlib import Path

logger = logging.getLogger(__name__)

REPORT_NAME = "report.json"
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.uploads_dir = root / "uploads"
        self.artifacts_root = root / "artifacts"

    def ensure_dirs(self) -> None:
        for directory in (self.tmp_dir, self.uploads_dir, self.artifacts_root):
            directory.mkdir(parents=True, exist_ok=True)

    def new_temp_path(self) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / f"{secrets.token_hex(16)}.part"

    def accept_upload(self, temp_path: Path, job_id: str, media_format: str) -> str:
        """Move a fully received, validated upload into place; returns its storage name."""
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        name = f"{job_id}.{media_format}"
        temp_path.replace(self.uploads_dir / name)
        return name

    def upload_path(self, name: str) -> Path:
        return self.uploads_dir / name

    def artifacts_dir(self, job_id: str) -> Path:
        return self.artifacts_root / job_id

    def artifact_path(self, job_id: str, name: str) -> Path | None:
        """The artifact's path, or None for a name that is not a plain file name in the job's folder."""
        if not _ARTIFACT_NAME.fullmatch(name) or ".." in name:
            return None
        directory = self.artifacts_dir(job_id).resolve()
        path = (directory / name).resolve()
        if path.parent != directory or not path.is_file():
            return None
        return path

    def copy_artifacts(self, from_job_id: str, to_job_id: str) -> None:
        source = self.artifacts_dir(from_job_id)
        if source.is_dir():
            shutil.copytree(source, self.artifacts_dir(to_job_id), dirs_exist_ok=True)

    def delete_upload(self, name: str | None) -> None:
        if name:
            self.upload_path(name).unlink(missing_ok=True)

    def delete_artifacts(self, job_id: str) -> None:
        shutil.rmtree(self.artifacts_dir(job_id), ignore_errors=True)

    def delete_job_files(self, job_id: str, upload_name: str | None) -> None:
        self.delete_upload(upload_name)
        self.delete_artifacts(job_id)


def remove_stale_files(folder: Path, pattern: str, *, older_than: float, now: float) -> int:
    """Delete the files in `folder` matching `pattern` untouched for `older_than` seconds; returns how many.

    For leftovers of processes that died (partial uploads): a file that vanishes
    or cannot be read meanwhile is skipped, never an error.
    """
    removed = 0
    for path in folder.glob(pattern):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink(missing_ok=True)
                removed += 1
        except OSError:
            continue
    return removed


def sanitize_filename(name: str | None, max_length: int) -> str | None:
    """A display-only version of the client's filename: base name, printable, length-limited."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    name = name.strip(" .")
    if not name:
        return None
    if len(name) > max_length:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[: max_length - len(suffix) - 1] + dot + suffix) if dot and len(suffix) < 16 else name[:max_length]
    return name
