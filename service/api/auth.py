"""Bearer-token authentication for the API: no anonymous access except the OpenAPI document."""
from __future__ import annotations

from flask import current_app, g, request

from workflows.accounts import user_for_token

from . import bp
from .errors import error_response


@bp.before_request
def authenticate():
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(getattr(view, "route_doc", None), "public", False):
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    user = user_for_token(current_app.extensions["casework"], token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        response = error_response(401, "Send a valid API token: 'Authorization: Bearer <token>' (see `casework user "
                                       "token add`); revoked and expired tokens are refused.")
        response.headers["WWW-Authenticate"] = 'Bearer realm="casework"'
        return response
    g.user = user
    return None
