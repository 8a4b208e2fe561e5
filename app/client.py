"""The Python client, kept importable here for existing code: it lives in its own
distribution, `jwt-refresh-client` (`client/` in this repository; `pip install ./client`)."""

from jwt_refresh_client import AuthClient, BearerAuth, SessionExpired, TokenCallback, TokenManager

__all__ = ["AuthClient", "BearerAuth", "SessionExpired", "TokenCallback", "TokenManager"]
