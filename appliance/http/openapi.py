"""OpenAPI 3.1 generated from the declared routes and their voluptuous schemas; an offline docs page."""

from __future__ import annotations

import json
import re
from typing import Any

import voluptuous as vol
from markupsafe import escape
from voluptuous_openapi import convert

from .. import __version__
from .routes import RouteSpec

_PARAM_RE = re.compile(r"{(\w+)(?::[^}]*)?}")
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
_AUTH_STATUS = {401: "Not signed in or bad token", 403: "Missing scope or CSRF token"}


def _schema(schema: vol.Schema) -> dict[str, Any]:
    try:
        return convert(schema)
    except Exception:  # a validator the converter does not know still gets a permissive schema
        return {"type": "object"}


def _operation(spec: RouteSpec) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', spec.path.lower()).strip('_')}",
        "tags": list(spec.tags) or ["other"],
        "responses": {"200": {"description": "OK"}},
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM_RE.findall(spec.path)
    ]
    if spec.query is not None:
        props = _schema(spec.query).get("properties", {})
        required = set(_schema(spec.query).get("required", []))
        params += [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in props.items()
        ]
    if params:
        op["parameters"] = params
    if spec.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(spec.body)}},
        }
        op["responses"]["400"] = {"description": "Invalid body", "content": _error_content()}
    for status, text in spec.responses.items():
        op["responses"][str(status)] = {"description": text}
    if spec.auth != "public":
        op["security"] = [{"bearer": []}, {"session": []}]
        op["x-required-scope"] = spec.auth
        for status, text in _AUTH_STATUS.items():
            op["responses"][str(status)] = {"description": text, "content": _error_content()}
    else:
        op["security"] = []
    return op


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def build_openapi(routes: list[RouteSpec], *, title: str = "Dockmaster API") -> dict[str, Any]:
    """The OpenAPI document for every declared API and hook route."""
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        if spec.kind in ("ui", "static"):
            continue
        path = _PARAM_RE.sub(r"{\1}", spec.path)
        paths.setdefault(path, {})[spec.method.lower()] = _operation(spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": _ERROR_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API token (`dockmaster token create`)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "dm_session"},
            },
        },
    }


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained HTML page listing every operation with its schemas."""
    parts = [
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content='width=device-width'>",
        f"<title>{escape(document['info']['title'])}</title><link rel=stylesheet href='/static/app.css'>",
        "</head><body class=docs><main class=container>",
        f"<h1>{escape(document['info']['title'])} <small>{escape(document['info']['version'])}</small></h1>",
        "<p>Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>. "
        "Errors share one shape: <code>{\"error\": {\"code\", \"message\", \"details\"}}</code>. "
        "<a href='/api/openapi.json'>openapi.json</a></p>",
    ]
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            scope = op.get("x-required-scope", "public")
            parts.append(
                f"<details><summary><code>{method.upper()}</code> <code>{escape(path)}</code> — "
                f"{escape(op['summary'])} <small>({escape(scope)})</small></summary>"
            )
            for param in op.get("parameters", []):
                parts.append(f"<p>{escape(param['in'])} <code>{escape(param['name'])}</code>"
                             f"{' (required)' if param['required'] else ''}: "
                             f"<code>{escape(json.dumps(param['schema']))}</code></p>")
            if "requestBody" in op:
                body = op["requestBody"]["content"]["application/json"]["schema"]
                parts.append(f"<pre>{escape(json.dumps(body, indent=2))}</pre>")
            codes = ", ".join(sorted(op["responses"]))
            parts.append(f"<p>Responses: {escape(codes)}</p></details>")
    parts.append("</main></body></html>")
    return "".join(parts)
