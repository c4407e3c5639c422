"""The label rules written once (manager, start-up check and label moves share them) and the
version policy read back from the text the server describes it with (what push relies on)."""

from __future__ import annotations

import pytest

from tfserve_magic.serving.models.config import parse_version_policy
from tfserve_magic.serving.models.label_rules import (
    label_may_point_at,
    unavailable_label_message,
    valid_label_name,
)
from tfserve_magic.serving.models.policy import VersionPolicy
from tfserve_magic.serving.status_errors import ConfigError


@pytest.mark.parametrize("policy", [VersionPolicy.latest(1), VersionPolicy.latest(3),
                                    VersionPolicy.all(), VersionPolicy.specific([4, 1])])
def test_a_described_policy_reads_back_as_itself(policy: VersionPolicy) -> None:
    assert parse_version_policy(policy.describe()) == policy


def test_an_unreadable_policy_says_which() -> None:
    with pytest.raises(ConfigError, match=r"Invalid version policy 'newest \{\}'"):
        parse_version_policy("newest {}")


@pytest.mark.parametrize(("label", "ok"), [("stable", True), ("canary_2", True), ("", False),
                                           ("a-b", False), ("x y", False), ("é", False)])
def test_label_names_follow_tf_serving(label: str, ok: bool) -> None:
    assert valid_label_name(label) is ok


def test_an_available_version_may_always_be_labelled() -> None:
    assert label_may_point_at(available=True, allow_unavailable=False, current=3, version=1)


@pytest.mark.parametrize(("current", "initial", "ok"), [
    (None, False, True),   # a new label
    (2, False, True),      # a label left where it is
    (1, False, False),     # a label moved to a version that is not loaded
    (1, True, True),       # anything in the start-up config
])
def test_an_unavailable_version_only_with_the_flag(current: int | None, initial: bool,
                                                   ok: bool) -> None:
    assert label_may_point_at(available=False, allow_unavailable=True, current=current,
                              version=2, initial=initial) is ok
    assert not label_may_point_at(available=False, allow_unavailable=False, current=current,
                                  version=2, initial=initial)


def test_the_refusal_is_tf_servings_text() -> None:
    assert unavailable_label_message("m", 2) == (
        "Request to assign label to version 2 of model m, which is not currently available "
        "for inference")
