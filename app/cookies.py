"""Browser apps: the refresh token in an HttpOnly cookie, and the CSRF check for every request
that cookie authenticates.

Threat model. A page's JavaScript never sees the refresh token (`HttpOnly`), so an XSS can
use the session while the page is open but can't carry the long-lived token away; the access
token lives in the page's memory only. The cookie is `SameSite=Strict` and `Path=/auth`:
another site's page can't make the browser send it, and no resource route ever receives it.
Against a page of the same site (another port, a sibling subdomain), which the browser does
send it for, a request that the cookie authenticates must also carry `X-CSRF-Token` equal
to the readable `csrf_token` cookie (double submit), that value must be the one this
deployment derived for the cookie's session (a value made up by the other page passes with
no session), and an `Origin`, when the browser sends one, must be the service's
own or listed in `CORS_ORIGINS`. A form or a `no-cors` fetch can't set the header, and a
fetch that sets it needs a CORS preflight that only listed origins pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, replace
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.cookies.request import parse_cookie
from sanic.response import empty

from app.accounts.refresh import Refresh
from app.accounts.responses import TokenResponse
from app.accounts.sessions import Sessions
from app.blueprints.common import token_answer
from app.config import Settings
from app.errors import ApiError, InvalidGrant, InvalidRequest, MissingToken
from app.origin import ClientInfo

REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_PATH = "/auth"  # the only routes that read the refresh cookie
DELIVERIES = ("body", "cookie")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class CsrfFailed(ApiError):
    status, error = 403, "csrf_failed"
    description = "The request did not pass the CSRF check."


def wants_cookie(body: dict[str, Any]) -> bool:
    """`token_delivery`: "cookie" puts the refresh token in the cookie; "body" (the default)
    in the JSON answer."""
    value = body.get("token_delivery")
    if value is None:
        return False
    if value not in DELIVERIES:
        raise InvalidRequest('The field \'token_delivery\' must be "body" or "cookie".')
    return bool(value == "cookie")


def own_origin(request: Request) -> str:
    """The service's origin as a browser names it: the request's scheme and host (behind a
    proxy, as forwarded), without a default port."""
    scheme = request.scheme.lower()
    host = request.host.lower()
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and port == _DEFAULT_PORTS.get(scheme):
        host = name
    return f"{scheme}://{host}"


class Cookies:
    """The cookie settings of a deployment, and the CSRF values it derives."""

    def __init__(self, settings: Settings):
        self.secure = settings.cookie_secure
        self.origins = frozenset(settings.cors_origins)
        self._key = hmac.new(
            settings.jwt_secret.encode(), b"jwt-refresh-api: csrf", hashlib.sha256
        ).digest()

    def csrf_for(self, sid: str) -> str:
        """The CSRF value of session `sid`: the same across its refreshes, so that two tabs
        refreshing at once never hold different ones."""
        digest = hmac.new(self._key, sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # -- reading -------------------------------------------------------------------------

    def presented(self, request: Request) -> str | None:
        """The refresh token of the cookie; None without one. Two cookies of that name (one
        planted by a sibling subdomain, say) are refused rather than guessed between."""
        return _one(request, REFRESH_COOKIE)

    def delivery(self, request: Request, body: dict[str, Any]) -> bool:
        """The body's `token_delivery` is "cookie": and the request may set the cookie (a
        page of another origin must not log a browser into a session of its choosing)."""
        to_cookie = wants_cookie(body)
        if to_cookie:
            self.check_origin(request)
        return to_cookie

    def check_origin(self, request: Request) -> None:
        origin = request.headers.get("origin")
        if origin is None:
            # no Origin (an old browser): its Fetch Metadata, if any, says where it came from
            if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
                raise CsrfFailed("A request from another site may not use the refresh cookie.")
            return
        if origin != own_origin(request) and origin not in self.origins:
            raise CsrfFailed(f"The origin {origin[:200]!r} may not use the refresh cookie.")

    def check(self, request: Request) -> None:
        """Before anything the refresh cookie authenticates: the Origin and the double
        submit. `bind` checks the value against the session once the token is verified."""
        self.check_origin(request)
        header = request.headers.get(CSRF_HEADER)
        if not header:
            raise CsrfFailed(f"The {CSRF_HEADER} header is required with the refresh cookie.")
        cookie = _one(request, CSRF_COOKIE)
        if cookie is None or not _same(header, cookie):
            raise CsrfFailed(f"The {CSRF_HEADER} header does not match the csrf_token cookie.")

    def bind(self, request: Request, sid: str) -> None:
        """The CSRF value sent is the one of the cookie's session."""
        if not _same(request.headers.get(CSRF_HEADER, ""), self.csrf_for(sid)):
            raise CsrfFailed(f"The {CSRF_HEADER} header does not belong to this session.")

    # -- the flows the cookie authenticates ------------------------------------------------

    async def refresh(
        self, request: Request, body: dict[str, Any], flow: Refresh, client: ClientInfo
    ) -> HTTPResponse:
        """`POST /auth/refresh` without a token in the body: the cookie's, answered in the
        cookie (never in the body, where the page's JavaScript would see it). A refusal
        clears the cookies; a 503 keeps them (the token is not spent)."""
        token = self.presented(request)
        if token is None:
            raise InvalidRequest(
                "The field 'refresh_token' is required (in the body, or the refresh_token cookie)."
            )
        if body.get("token_delivery") == "body":
            raise InvalidRequest("A refresh token from the cookie is answered in the cookie.")
        self.check(request)
        try:
            tokens = await flow.refresh(token, client, bind=lambda sid: self.bind(request, sid))
        except InvalidGrant as refused:
            refused.finish.append(self.clear)
            raise
        return self.answer(tokens)

    async def log_out(
        self, request: Request, sessions: Sessions, client: ClientInfo
    ) -> HTTPResponse:
        """`POST /auth/logout` without an access token or a body token: the cookie's session
        ends, and the cookies go (a cookie that no longer works is just cleared)."""
        token = self.presented(request)
        if token is None:
            raise MissingToken()
        self.check(request)
        try:
            await sessions.log_out_with(token, client, bind=lambda sid: self.bind(request, sid))
        except InvalidGrant:
            pass  # nothing left to end
        response = empty()
        self.clear(response)
        return response

    def after_logout(self, request: Request, response: HTTPResponse, sid: str) -> HTTPResponse:
        """A bearer logout of the session the cookies are of clears them too."""
        csrf = _cookies_of(request).get(CSRF_COOKIE)
        if csrf and _same(csrf[0], self.csrf_for(sid)):
            self.clear(response)
        return response

    # -- writing -------------------------------------------------------------------------

    def answer(self, tokens: TokenResponse) -> HTTPResponse:
        """A cookie-mode token answer: the refresh token in its cookie, the session's CSRF
        value in the body and in the readable cookie."""
        assert tokens.refresh_token is not None
        csrf = self.csrf_for(tokens.session_id)
        age = tokens.refresh_expires_in
        response = token_answer(replace(tokens, refresh_token=None, csrf_token=csrf))
        self.set(
            response,
            [
                _Cookie(REFRESH_COOKIE, tokens.refresh_token, REFRESH_PATH, age, True),
                _Cookie(CSRF_COOKIE, csrf, "/", age, False),
            ],
        )
        return response

    def respond(self, tokens: TokenResponse, to_cookie: bool) -> HTTPResponse:
        return self.answer(tokens) if to_cookie else token_answer(tokens)

    def set(self, response: HTTPResponse, cookies: list[_Cookie]) -> None:
        for cookie in cookies:
            response.add_cookie(
                cookie.name,
                cookie.value,
                path=cookie.path,
                max_age=cookie.max_age,
                httponly=cookie.httponly,
                samesite="Strict",
                secure=self.secure,
            )

    def clear(self, response: HTTPResponse) -> None:
        """Both cookies gone (a logout, a refused refresh)."""
        self.set(
            response,
            [
                _Cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0, True),
                _Cookie(CSRF_COOKIE, "", "/", 0, False),
            ],
        )


@dataclass(frozen=True, slots=True)
class _Cookie:
    name: str
    value: str
    path: str
    max_age: int
    httponly: bool


def _cookies_of(request: Request) -> dict[str, list[str]]:
    """Every cookie by its exact name, from every Cookie header (a proxy may pass HTTP/2's
    split ones on unjoined); `request.cookies` would answer a `__Host-` or `__Secure-`
    cookie for the plain name."""
    return parse_cookie("; ".join(request.headers.getall("cookie", [])))


def _one(request: Request, name: str) -> str | None:
    """The one cookie `name`. Two of them, or a prefixed twin (`__Host-`, `__Secure-`: a
    sibling subdomain can plant those), are refused rather than guessed between."""
    cookies = _cookies_of(request)
    values = [
        *cookies.get(name, []),
        *cookies.get(f"__Host-{name}", []),
        *cookies.get(f"__Secure-{name}", []),
    ]
    if len(values) > 1:
        raise CsrfFailed(f"The request has {len(values)} {name} cookies; send one.")
    if values and not values[0].isascii():
        raise CsrfFailed(f"The {name} cookie is not one this service set.")
    return values[0] if values and values[0] else None


def _same(sent: str, expected: str) -> bool:
    """A constant-time comparison; a value that is not ASCII (Sanic keeps undecodable header
    bytes as surrogates) is simply not the expected one."""
    return sent.isascii() and hmac.compare_digest(sent.encode(), expected.encode())


def setup_cookies(app: Sanic[Any, Any]) -> None:
    """`app.ctx.cookies`, injectable as `cookies: Cookies`."""
    app.ctx.cookies = Cookies(app.ctx.settings)
    app.ext.add_dependency(Cookies, _cookies)


def _cookies(request: Request) -> Cookies:
    cookies: Cookies = request.app.ctx.cookies
    return cookies
