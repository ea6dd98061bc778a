"""bpmn-js's prebuilt viewer and modeler and their styles, served from node_modules (installed by `make run`, not committed)."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import abort, current_app, send_from_directory

from . import bp

log = logging.getLogger(__name__)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
# Only what the navigated viewer (case pages) and the modeler (designer pages) need: both use the same styles and font.
# The mime types are fixed so they do not depend on the host's mime table.
BPMN_JS_FILES = {
    "bpmn-navigated-viewer.production.min.js": "text/javascript",
    "bpmn-modeler.production.min.js": "text/javascript",
    "assets/diagram-js.css": "text/css",
    "assets/bpmn-js.css": "text/css",
    "assets/bpmn-font/css/bpmn.css": "text/css",
    "assets/bpmn-font/font/bpmn.woff2": "font/woff2",
    "assets/bpmn-font/font/bpmn.woff": "font/woff",
    "assets/bpmn-font/font/bpmn.ttf": "font/ttf",
    "assets/bpmn-font/font/bpmn.eot": "application/vnd.ms-fontobject",
    "assets/bpmn-font/font/bpmn.svg": "image/svg+xml",
}
# The URLs carry no version, so a week rather than a year: an upgrade reaches browsers within days.
CACHE_SECONDS = 7 * 24 * 3600
NOT_INSTALLED = ("bpmn-js, which draws and edits the diagrams, is not installed on this server. "
                 "Run `make run`, or `npm ci` in the Casework folder, then reload the page.")


def bpmn_js_dist() -> Path:
    """Return the folder holding bpmn-js's prebuilt bundles: NODE_MODULES if set, else the repository's."""
    node_modules = current_app.config.get("NODE_MODULES") or REPOSITORY_ROOT / "node_modules"
    return Path(node_modules) / "bpmn-js" / "dist"


@bp.get("/vendor/bpmn-js/<path:name>")
def bpmn_js_asset(name: str):
    if name not in BPMN_JS_FILES:
        abort(404)
    dist = bpmn_js_dist()
    if not (dist / name).is_file():
        log.warning("bpmn-js is missing from %s; run `npm ci`", dist)
        abort(503, description=NOT_INSTALLED)
    return send_from_directory(dist, name, mimetype=BPMN_JS_FILES[name], max_age=CACHE_SECONDS)
