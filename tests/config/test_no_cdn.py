"""No page pulls anything from another host: no CDN scripts, styles or fonts."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

REMOTE_ASSET = re.compile(rb"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/", "/api/v1/docs/", "/accounts/login/", "/accounts/signup/", "/search/?q=tea"])
def test_pages_load_no_remote_assets(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert REMOTE_ASSET.findall(response.content) == []
