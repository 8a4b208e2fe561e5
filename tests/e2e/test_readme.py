"""The README's curl flow, run as written against a real server: every line prints what the
README says it prints. Keeps the README true."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from tests.support import ROOT, live_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    with live_server(workers=2) as base:
        yield base


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## The flow with curl") : text.index("### From Python")]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_the_curl_flow_prints_what_the_readme_says(server: str) -> None:
    assert shutil.which("curl"), "the README's flow needs curl: apt-get install curl"
    blocks = readme_blocks()
    assert len(blocks) == 2, blocks
    script = "\n".join(blocks).replace("B=http://127.0.0.1:8000", f"B={server}")
    with tempfile.TemporaryDirectory() as cwd:
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    expected = [
        (r'^\{"id":"[^"]+","username":"alice","created_at":"[^"]+"\} 201$', "register"),
        (r'^\{"access_token":"eyJ.*"session_id":"[^"]+"\}$', "login"),
        (r'^\{"id":"[^"]+","username":"alice","scope":"notes:read notes:write",.*\} 200$', "me"),
        (r'^\{"access_token":"eyJ.*\}$', "refresh"),
        (r"^the same pair$", "the retry"),
        (r'^\{"sessions":\[\{.*"current":true\}\],"next_cursor":null\} 200$', "sessions"),
        (r"^204$", "logout"),
        (r'^\{"error":"invalid_token",.*\} 401$', "after logout"),
        (r'^\{"access_token":"eyJ.*\} 200$', "token endpoint refresh"),
        (r'^\{"error":"invalid_grant",.*\} 400$', "token endpoint, bad token"),
        (r"^200$", "revoke"),
    ]
    assert len(lines) == len(expected), lines
    for line, (pattern, what) in zip(lines, expected, strict=True):
        assert re.match(pattern, line), (what, line)
