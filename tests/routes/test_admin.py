"""Admin disable and enable: the account's tokens stop working at once; the scope guards it."""

from __future__ import annotations

from tests.support import ADMIN_PASSWORD, Api
from tests.support.asserts import (
    access_refused,
    access_works,
    assert_error,
    login_response,
    make_admin,
    refresh_refused,
    session_refused,
    session_works,
)

PASSWORD = "correct horse"
FORM = {"content-type": "application/x-www-form-urlencoded"}


# -- admin: disable and enable ----------------------------------------------------------


async def test_admin_disable_and_enable(api: Api) -> None:
    alice_one = await api.user("alice", PASSWORD)
    alice_two = await api.login("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    admin = await make_admin(api)

    wrong = await login_response(api, "bob", "wrong password")
    unknown = await login_response(api, "nobody", PASSWORD)
    wrong_body = assert_error(wrong, 401, "invalid_grant")
    assert assert_error(unknown, 401, "invalid_grant") == wrong_body

    response = await api.request(
        "POST", "/api/admin/users/alice/disable", token=admin["access_token"]
    )
    assert response.status == 204, response.text
    assert response.text == ""

    # live access tokens refused at once, refresh refused, login refused like a wrong password
    for tokens in (alice_one, alice_two):
        await session_refused(api, tokens)
    disabled = await login_response(api, "alice", PASSWORD)
    assert assert_error(disabled, 401, "invalid_grant") == wrong_body
    token_grant = await api.request(
        "POST",
        "/auth/token",
        headers=FORM,
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert_error(token_grant, 400, "invalid_grant")
    # others untouched
    bob = await session_works(api, bob)
    await access_works(api, admin)

    response = await api.request(
        "POST", "/api/admin/users/alice/enable", token=admin["access_token"]
    )
    assert response.status == 204, response.text
    fresh = await api.login("alice", PASSWORD)
    await session_works(api, fresh)
    # the sessions ended by the disable stay ended
    for tokens in (alice_one, alice_two):
        await access_refused(api, tokens["access_token"])
        await refresh_refused(api, tokens["refresh_token"])


async def test_admin_routes_need_the_admin_scope(api: Api) -> None:
    alice = await api.user("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    await make_admin(api)
    narrowed = await api.login("root", ADMIN_PASSWORD, scope="notes:read notes:write")
    for tokens in (alice, narrowed):
        for action in ("disable", "enable"):
            response = await api.request(
                "POST", f"/api/admin/users/bob/{action}", token=tokens["access_token"]
            )
            assert_error(response, 403, "insufficient_scope")
            challenge = response.headers.get("www-authenticate", "")
            assert challenge.startswith('Bearer realm="api"'), challenge
            assert 'error="insufficient_scope"' in challenge, challenge
            assert 'scope="admin"' in challenge, challenge
    no_token = await api.request("POST", "/api/admin/users/bob/disable")
    assert_error(no_token, 401, "missing_token")
    # bob was not disabled by any of it
    await session_works(api, bob)
    await api.login("bob", PASSWORD)


async def test_admin_unknown_user_is_404(api: Api) -> None:
    admin = await make_admin(api)
    for action in ("disable", "enable"):
        response = await api.request(
            "POST", f"/api/admin/users/nobody/{action}", token=admin["access_token"]
        )
        assert_error(response, 404, "not_found")
