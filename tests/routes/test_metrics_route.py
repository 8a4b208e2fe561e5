"""GET /metrics in this process: the token check on any bytes, and labels that a client
can't multiply."""

from __future__ import annotations

from collections.abc import Callable

from tests.support import Api
from tests.support.asserts import assert_error

TOKEN = "a-metrics-token-of-the-tests"


async def test_the_metrics_token_is_checked_on_any_bytes(make_api: Callable[..., Api]) -> None:
    api = make_api(metrics_token=TOKEN)
    odd = await api.request("GET", "/metrics", headers={"Authorization": b"Bearer \xff\xfe"})
    assert_error(odd, 401, "invalid_token")
    good = await api.request("GET", "/metrics", token=TOKEN)
    assert good.status == 200 and "jwt_refresh" in good.text


async def test_odd_methods_on_unknown_paths_share_one_label(make_api: Callable[..., Api]) -> None:
    api = make_api(metrics_token=TOKEN)
    for index in range(5):
        response = await api.request(f"M{index}", "/nowhere")
        assert response.status in (404, 405), response.text
        assert response.headers["x-request-id"]
    text = (await api.request("GET", "/metrics", token=TOKEN)).text  # flushes this process
    assert 'method="other",route="unrouted"' in text
    assert 'method="M0"' not in text
