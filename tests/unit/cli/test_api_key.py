"""iraas/cli/api_key.py: the command line's clients send the first key of ``IRAAS_API_KEY``."""

from __future__ import annotations

from iraas.cli import api_key

KEY = "k" * 24
OTHER = "o" * 24


def test_clients_send_the_first_key_of_the_list():
    assert api_key.client_headers({"IRAAS_API_KEY": f"{KEY},{OTHER}"}) == {"x-api-key": KEY}
    assert api_key.client_headers({}) == {}
