"""Regression tests for what the fuzzing found (see test_fuzz.py)."""

from fastapi.testclient import TestClient

from tests.utils import API, error_body


def test_a_login_name_with_a_nul_character_is_422_not_500(client: TestClient) -> None:
    # PostgreSQL refuses NUL in text parameters: the e-mail lookup itself failed with a 500.
    response = client.post(
        f"{API}/login/access-token", data={"username": "a\x00@example.com", "password": "x"}
    )
    assert response.status_code == 422
    assert error_body(response)["detail"][0]["loc"] == ["body", "username"]
