"""Headers every response carries: what the browser may load and run, framing, sniffing, referrers, caching.

A small after_request hook rather than flask-talisman: Talisman's defaults (HTTPS redirects, secure
session cookies, SAMEORIGIN framing) would all need overriding here, and it has no rule for
Cache-Control, which is the header that keeps case data out of browser and proxy caches.
"""
from __future__ import annotations

from flask import Flask, Response, request

_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    # Stylesheets come only from our own files; no <style> element and no style attribute applies.
    # (bpmn-js styles the diagrams through element.style, which a policy does not govern.)
    "style-src 'self'",
    "style-src-attr 'none'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)
CONTENT_SECURITY_POLICY = "; ".join(_POLICY)
# The designer's editor only (it shows diagrams, never case data): bpmn-js's modeler builds its
# align and distribute icons as markup with style attributes. Attributes only: an attribute can
# restyle an element but not load anything, and <style> elements stay refused.
MODELER_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src-attr 'none'", "style-src-attr 'unsafe-inline'")
MODELER_ENDPOINTS = frozenset({"web.designer_set"})
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Our stylesheets and scripts, and bpmn-js's: they hold no case data, so browsers may keep them.
ASSET_ENDPOINTS = frozenset({"static", "web.bpmn_js_asset"})


def init_app(app: Flask) -> None:
    """Add the security headers to every response of the app."""
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """Set the security headers; forbid caching unless the response is a static asset served as such."""
    response.headers.setdefault("Content-Security-Policy", MODELER_CONTENT_SECURITY_POLICY
                                if request.endpoint in MODELER_ENDPOINTS else CONTENT_SECURITY_POLICY)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint not in ASSET_ENDPOINTS or response.status_code >= 400:
        # Pages, API answers, CSV exports, metrics and errors can hold case data.
        response.headers["Cache-Control"] = "no-store"
    return response
