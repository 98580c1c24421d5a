"""The list's date formatter gives exactly what Django's date filter gives, in every language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import dateformat, translation

from webmail.mail.templatetags.mail_tags import DateFormatter

FORMATS = ["N j, Y, P", "M j", "H:i", "P", "m/d/Y", "j. F Y H:i", "D, d M Y H:i:s O", "l jS \\o\\f F"]
MOMENTS = [
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
    datetime(2026, 11, 27, 15, 5, 42, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, tzinfo=UTC),
] + [datetime(2025, 6, 1, 7, 30, tzinfo=UTC) + timedelta(minutes=37 * n) for n in range(40)]


@pytest.mark.parametrize("language", ["en", "de", "fr", "ja"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_formatter_equals_djangos_date_format(language, fmt):
    with translation.override(language):
        formatter = DateFormatter(fmt)
        for moment in MOMENTS:
            assert formatter(moment) == dateformat.format(moment, fmt), (language, fmt, moment)


def test_one_languages_pieces_never_leak_into_another():
    moment = datetime(2026, 10, 5, 9, 15, tzinfo=UTC)
    with translation.override("en"):
        english = DateFormatter("F, P")(moment)
    with translation.override("de"):
        german = DateFormatter("F, P")(moment)
    assert english.startswith("October") and german.startswith("Oktober")


def test_a_formatter_keeps_its_language_when_called_under_another():
    moment = datetime(2026, 10, 6, 9, 15, tzinfo=UTC)
    with translation.override("de"):
        german = DateFormatter("F")
    with translation.override("en"):
        assert german(moment) == "Oktober"
        assert DateFormatter("F")(moment) == "October"
