"""iraas/cli/classify/remote.py: which service URLs ``iraas classify --remote`` accepts, and how it
writes them. (The client against a stand-in for the HTTP API: tests/integration/cli/classify/test_remote.py.)"""

from __future__ import annotations

import pytest

from iraas.cli.classify import remote


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://abc.execute-api.us-east-1.amazonaws.com/api", "https://abc.execute-api.us-east-1.amazonaws.com/api"),
    ],
)
def test_service_urls_are_normalised(given: str, url: str) -> None:
    assert remote.check_url(given) == url


@pytest.mark.parametrize("given", ["ftp://host/", "http://", "http://host:99999"])
def test_bad_service_urls_are_refused(given: str) -> None:
    with pytest.raises(ValueError):
        remote.check_url(given)
