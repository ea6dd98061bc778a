"""One declaration per route: the Flask rule, its schemas, and its OpenAPI entry."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from .schemas import MAX_ID, ErrorResponse

# Flask's <name>, <int:name> and <path:name>: converter (may be empty) and name.
_PATH_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")


@dataclass
class RouteDoc:
    rule: str
    method: str
    summary: str
    body: type[Schema] | None = None
    body_required: bool = True
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    public: bool = False
    downloads: tuple[str, ...] = ()  # media types of a file the route sends instead of JSON
    errors: tuple[int, ...] = field(default=(400, 401, 404))


ROUTES: list[RouteDoc] = []


def documented(bp, rule: str, method: str, summary: str, **options):
    """Register a view on the blueprint and describe it for the OpenAPI document."""
    doc = RouteDoc(rule, method, summary, **options)
    ROUTES.append(doc)

    def decorator(view):
        view.route_doc = doc
        return bp.route(rule, methods=[method])(view)

    return decorator


def build_openapi(url_prefix: str) -> dict:
    """Return the OpenAPI 3 document of every documented route."""
    spec = APISpec(
        title="Casework API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Healthcare case management run as BPMN processes."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("ErrorResponse", schema=ErrorResponse)
    paths: dict[str, dict] = {}
    for doc in ROUTES:
        path = url_prefix + _PATH_PARAMETER.sub(r"{\2}", doc.rule)
        operation: dict = {
            "summary": doc.summary,
            "operationId": f"{doc.method.lower()}_{_operation_name(doc.rule)}",
            "responses": {
                str(doc.status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": doc.response}} if doc.response
                    else {media_type: {"schema": {}} for media_type in doc.downloads},
                },
            },
        }
        # Any request may be refused as invalid (see request_checks.py); any but a public one, for its token.
        for status in sorted({*doc.errors, 400} | (set() if doc.public else {401})):
            operation["responses"][str(status)] = {
                "description": "Error",
                "content": {"application/json": {"schema": "ErrorResponse"}},
            }
        parameters = [
            {"in": "path", "name": name, "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID} if converter == "int"
             else {"type": "string", "minLength": 1}}
            for converter, name in _PATH_PARAMETER.findall(doc.rule)
        ]
        if doc.query:
            parameters.append({"in": "query", "schema": doc.query})
        if parameters:
            operation["parameters"] = parameters
        if doc.body:
            operation["requestBody"] = {"required": doc.body_required, "content": {"application/json": {"schema": doc.body}}}
        if not doc.public:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[doc.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation_name(rule: str) -> str:
    return _PATH_PARAMETER.sub(r"\2", rule).strip("/").replace("/", "_")
