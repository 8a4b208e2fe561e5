"""The OpenAPI document as a whole: its two security schemes, the schemas it names, and an
operationId for every operation. Routes describe themselves (app.blueprints, `requires`);
this fills in what generated clients need on top, in one place."""

from __future__ import annotations

from typing import Any

from sanic import Sanic
from sanic_ext.extensions.openapi.builders import OperationBuilder, OperationStore

from app.bearer import BEARER_SCHEME, OAUTH2_SCHEME
from app.blueprints.common import TOKEN_RESPONSE
from app.errors import ERROR_SCHEMA
from app.scopes import SCOPES

TOKEN_URL = "/auth/token"  # relative: the document's origin, wherever it is served
_SCOPE_TEXT = {
    "notes:read": "Read your notes",
    "notes:write": "Create, change and delete your notes",
    "admin": "Disable and enable accounts, read anyone's audit trail",
    "introspect": "Introspect tokens (POST /auth/introspect, for services)",
}
SCOPE_DESCRIPTIONS = {scope: _SCOPE_TEXT[scope] for scope in SCOPES}  # a new scope needs one
# Any response schema equal to one of these is answered by reference: one type per name in
# a generated client, whichever route answers it.
NAMED_SCHEMAS: dict[str, dict[str, Any]] = {"TokenResponse": TOKEN_RESPONSE, "Error": ERROR_SCHEMA}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def operation_id(handler_name: str) -> str:
    """camelCase of a handler's name: list_sessions -> listSessions."""
    first, *rest = handler_name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def named(schema: Any) -> Any:
    """The $ref of a named schema; any other schema as it is."""
    for name, value in NAMED_SCHEMAS.items():
        if schema == value:
            return ref(name)
    return schema


def complete(operation: OperationBuilder, handler_name: str) -> None:
    """An operationId from the handler's name unless the route names one
    (`openapi.definition(operation=...)`), and named schemas by reference."""
    if not getattr(operation, "operationId", None):
        operation.name(operation_id(handler_name))
    for response in operation.responses.values():
        for media in (response.fields.get("content") or {}).values():
            if "schema" in media.fields:
                media.fields["schema"] = named(media.fields["schema"])


def _complete_operations(app: Sanic[Any, Any]) -> None:
    store = OperationStore()  # type: ignore[no-untyped-call]  # sanic-ext's singleton
    for route in app.router.routes:
        # only documented handlers: asking the store for another would add it
        if route.handler in store:
            complete(store[route.handler], route.handler.__name__)


def setup_openapi(app: Sanic[Any, Any]) -> None:
    """The schemes and named schemas now; the operations once every route is registered."""
    spec = app.ext.openapi
    spec.add_security_scheme(BEARER_SCHEME, "http", scheme="bearer", bearer_format="JWT")
    # what Swagger UI's Authorize offers: a username and a password, sent to the token endpoint
    password_flow = {"tokenUrl": TOKEN_URL, "scopes": SCOPE_DESCRIPTIONS}
    spec.add_security_scheme(OAUTH2_SCHEME, "oauth2", flows={"password": password_flow})
    for name, schema in NAMED_SCHEMAS.items():
        spec.add_component("schemas", name, schema)
    app.before_server_start(_complete_operations)
