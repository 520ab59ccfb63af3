"""S3's lifecycle semantics as the embedded stack applies them (iraas/local/lifecycle.py)."""

from __future__ import annotations

import datetime

from iraas.local.lifecycle import ExpiryRule, expires_at, expiry_rules

UTC = datetime.UTC


def test_an_object_expires_days_after_creation_rounded_up_to_midnight_utc() -> None:
    created = datetime.datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    assert expires_at(created, 7) == datetime.datetime(2026, 3, 9, tzinfo=UTC)
    midnight = datetime.datetime(2026, 3, 1, tzinfo=UTC)
    assert expires_at(midnight, 1) == datetime.datetime(2026, 3, 2, tzinfo=UTC)


def test_expiry_is_computed_in_utc_whatever_the_timestamp_s_zone() -> None:
    # 23:30 on 1 March in UTC-5 is 04:30 on 2 March UTC: one day later rounds up to 4 March UTC.
    created = datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    assert expires_at(created, 1) == datetime.datetime(2026, 3, 4, tzinfo=UTC)


def test_only_enabled_expiration_rules_on_a_prefix_are_applied() -> None:
    configuration = {"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 7}},
        {"ID": "metrics", "Status": "Enabled", "Filter": {"Prefix": "status/metrics/"}, "Expiration": {"Days": 1}},
        {"ID": "legacy", "Status": "Enabled", "Prefix": "old/", "Expiration": {"Days": 3}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "k", "Value": "v"}},
         "Expiration": {"Days": 1}},
    ]}
    assert expiry_rules(configuration) == [
        ExpiryRule("all", "", 7), ExpiryRule("metrics", "status/metrics/", 1), ExpiryRule("legacy", "old/", 3)]
