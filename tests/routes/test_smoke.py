"""The basic flow through the routes: register, log in, call, refresh."""

from tests.support import Api


async def test_login_me_refresh(api: Api) -> None:
    tokens = await api.user()
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200
    assert me.json["username"] == "alice"
    fresh = await api.refresh(tokens["refresh_token"])
    assert fresh.status == 200
    assert fresh.json["refresh_token"] != tokens["refresh_token"]
