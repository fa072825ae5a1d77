"""Feed share strings: the round trip, what parses, and errors that never quote a secret."""

from __future__ import annotations

import pytest

from hyphal.errors import InvalidInput
from hyphal.feed.share import FeedShare

KEY, SECRET = bytes(range(32)), bytes(range(100, 132))


def test_a_share_round_trips_and_hides_its_secret() -> None:
    public, private = FeedShare(KEY), FeedShare(KEY, SECRET)
    assert public.to_uri() == f"hyphal://feed/{KEY.hex()}"
    assert private.to_uri() == f"hyphal://feed/{KEY.hex()}?r={SECRET.hex()}"
    for share in (public, private):
        assert FeedShare.parse(share.to_uri()) == share
    assert FeedShare.parse(f"  {KEY.hex().upper()}\n") == public
    assert SECRET.hex() not in str(private) + repr(private)
    assert public.discovery_key != KEY


@pytest.mark.parametrize(
    "text",
    [
        "",
        KEY.hex()[:-2],
        f"hyphal://feed/{KEY.hex()}?r={SECRET.hex()[:-2]}",
        f"hyphal://feed/{KEY.hex()}?r={SECRET.hex()}&r={SECRET.hex()}",
        f"hyphal://feed/{KEY.hex()}?read={SECRET.hex()}",
        f"hyphal://group/{KEY.hex()}",
        f"http://feed/{KEY.hex()}",
        "hyphal://feed/" + "0" * 600,
    ],
)
def test_a_bad_share_is_invalid_input_without_its_text(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        FeedShare.parse(text)
    assert SECRET.hex()[:-2] not in str(raised.value)
