"""The routes: thin handlers that read input, call a flow or a store, and answer.

Handlers ask for what they need by type (`db: Database`, `login_flow: Login`,
`client: ClientInfo`); sanic-ext injects it.
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from app.blueprints import admin, auth, demo, health, introspection, metrics, resources, wellknown
from app.origin import ClientInfo, client_info


def setup_blueprints(app: Sanic[Any, Any]) -> None:
    app.ext.add_dependency(ClientInfo, client_info)
    for module in (auth, introspection, resources, admin, health, metrics, wellknown, demo):
        app.blueprint(module.bp)
