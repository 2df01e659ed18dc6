import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.catalog.refs import EntityRef, RefError, parse_ref, split_key


def test_short_ref_takes_the_field_defaults() -> None:
    ref = parse_ref("team-a", default_kind="group", default_namespace="development")
    assert ref == EntityRef("group", "development", "team-a")
    assert ref.key == "group:development/team-a"


def test_full_ref_overrides_defaults_and_compares_case_insensitively() -> None:
    ref = parse_ref("Group:Default/Team-A", default_kind="user")
    assert ref.key == "group:default/team-a"
    assert parse_ref("user:guest").key == "user:default/guest"


@pytest.mark.parametrize("bad", ["", "   ", "a:b:c", "kind:/name", ":name", "group:ns/", "x/y/z"])
def test_malformed_refs_are_rejected_with_a_reason(bad: str) -> None:
    with pytest.raises(RefError):
        parse_ref(bad, default_kind="group")


def test_a_ref_without_kind_and_without_default_needs_a_kind() -> None:
    with pytest.raises(RefError, match="needs a kind"):
        parse_ref("artists-db")


_part = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(kind=_part, namespace=_part, name=_part)
def test_key_round_trips_through_parse_and_split(kind: str, namespace: str, name: str) -> None:
    key = EntityRef(kind, namespace, name).key
    assert parse_ref(key).key == key
    assert split_key(key) == (kind, namespace, name)
