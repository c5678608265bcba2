"""The staff token guard on endpoints that show personal data."""

import dataclasses

import pytest
from api_support import app_client


@pytest.mark.storage
@pytest.mark.parametrize("header, status", [
    (None, 401), ("Bearer wrong", 401), ("Basic s3cret", 401), ("Bearer 秘密", 401),
    ("Bearer s3cret", 200),
])
def test_staff_token(settings, header, status):
    with app_client(dataclasses.replace(settings, staff_token="s3cret")) as client:
        headers = {"Authorization": header} if header else {}
        response = client.get("/api/v1/members", headers=headers)
        assert response.status_code == status
        if status == 401:
            assert response.mimetype == "application/problem+json"
            assert response.get_json()["type"] == "/problems/unauthorized"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.storage
def test_staff_endpoints_are_off_without_a_token(settings):
    with app_client(settings) as client:
        response = client.get("/api/v1/members", headers={"Authorization": "Bearer x"})
        assert response.status_code == 403
        assert response.get_json()["type"] == "/problems/forbidden"
        assert client.get("/problems/forbidden").status_code == 200
