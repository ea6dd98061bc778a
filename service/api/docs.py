"""One declaration per route: the Flask rule, its schemas, and its OpenAPI entry."""
from __future__ import annotations

from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from .schemas import ErrorResponse


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
        path = url_prefix + doc.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        operation: dict = {
            "summary": doc.summary,
            "operationId": f"{doc.method.lower()}_{doc.rule.strip('/').replace('/', '_').replace('<int:', '').replace('<', '').replace('>', '')}",
            "responses": {
                str(doc.status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": doc.response}} if doc.response else {},
                },
            },
        }
        for status in doc.errors + (() if doc.public else (401,)):
            operation["responses"][str(status)] = {
                "description": "Error",
                "content": {"application/json": {"schema": "ErrorResponse"}},
            }
        parameters = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "integer"}}
            for name in _path_ints(doc.rule)
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


def _path_ints(rule: str) -> list[str]:
    return [part[len("<int:"):-1] for part in rule.split("/") if part.startswith("<int:")]
