import pytest

from app import search, ticket_query


@pytest.mark.parametrize(
    ("text", "websearch", "fts5"),
    [
        ("vpn", "vpn", '("vpn")'),
        ("VPN Drops", "vpn drops", '("vpn" AND "drops")'),
        (
            '"certificate warning" -printer',
            '"certificate warning" -printer',
            '("certificate warning" NOT "printer")',
        ),
        ("vpn OR dns", "vpn OR dns", '("vpn") OR ("dns")'),
        ("e-mail", '"e mail"', '("e mail")'),
        ('"unterminated phrase', '"unterminated phrase"', '("unterminated phrase")'),
        # FTS5 syntax in the input is only text: every term is quoted.
        (
            "col:value ^x NEAR(a b) *",
            '"col value" x "near a" b',
            '("col value" AND "x" AND "near a" AND "b")',
        ),
        ('say "hi""', "say hi", '("say" AND "hi")'),
    ],
)
def test_parse_and_render(text: str, websearch: str, fts5: str) -> None:
    parsed = search.parse(text)
    assert parsed.websearch() == websearch
    assert parsed.fts5() == fts5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-vpn", "at least one word to find"),
        ("vpn OR -dns", "at least one word to find"),
        ("", "nothing to search for"),
        ("OR OR", "nothing to search for"),
        ("!!! ...", "nothing to search for"),
        ("x" * 201, "at most 200 characters"),
        (" ".join(f"w{n}" for n in range(17)), "at most 16 terms"),
    ],
)
def test_refused_queries(text: str, message: str) -> None:
    with pytest.raises(search.SearchSyntaxError, match=message):
        search.parse(text)


def test_cursor_round_trip_and_refusals() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    token = ticket_query.encode_cursor("created_at", moment, 42, "fp1")
    assert ticket_query.decode_cursor(token, sort_key="created_at", query="fp1") == (moment, 42)
    rank = ticket_query.encode_cursor("relevance", 0.0607927098870277, 7, "fp2")
    assert ticket_query.decode_cursor(rank, sort_key="relevance", query="fp2") == (0.0607927098870277, 7)
    with pytest.raises(ValueError, match="different query"):
        ticket_query.decode_cursor(token, sort_key="created_at", query="other")
    with pytest.raises(ValueError, match="different query"):
        ticket_query.decode_cursor(token, sort_key="priority", query="fp1")
    for junk in ("", "!!!", "e30", "bnVsbA"):  # "", not base64, {}, null
        with pytest.raises(ValueError, match="not a valid cursor"):
            ticket_query.decode_cursor(junk, sort_key="created_at", query="fp1")


def test_effective_sort() -> None:
    assert ticket_query.effective_sort(None, searching=False) == ("created_at", True)
    assert ticket_query.effective_sort(None, searching=True) == ("relevance", True)
    assert ticket_query.effective_sort("priority", searching=True) == ("priority", False)
