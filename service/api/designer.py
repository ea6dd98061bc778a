"""API route for a deployed version's exact files, as the designer downloads them."""
from __future__ import annotations

import io
import posixpath

from flask import g, send_file

from workflows import design_views

from . import bp
from .docs import documented
from .views import _services

MIMETYPES = {".bpmn": "application/xml", ".dmn": "application/xml", ".json": "application/json",
             ".yaml": "text/yaml", ".yml": "text/yaml"}


def mimetype_of(path: str) -> str:
    """The media type a diagram set's file is served as."""
    return MIMETYPES.get(posixpath.splitext(path)[1].lower(), "application/octet-stream")


def file_download(content: bytes, *, name: str, mimetype: str | None = None):
    """Send bytes as a download named after the file, unchanged (no ETag or ranges: they are small)."""
    return send_file(io.BytesIO(content), mimetype=mimetype or mimetype_of(name), as_attachment=True,
                     download_name=posixpath.basename(name), etag=False, conditional=False)


@documented(bp, "/process-versions/<int:version_id>/files/<path:path>", "GET",
            "One file of a deployed process version, byte for byte (designers, administrators, supervisors)",
            errors=(403, 404), downloads=(*sorted(set(MIMETYPES.values())), "application/octet-stream"))
def process_version_file(version_id: int, path: str):
    content = design_views.version_file(_services(), actor=g.user, version_id=version_id, path=path)
    return file_download(content, name=path)
