"""Passwords are hashed with argon2id at the cost the settings name, and a hash of another cost is re-made at the
next sign-in (accounts/hashers.py). The test settings hash with MD5 for speed, so these tests name the hasher."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher as DjangoArgon2PasswordHasher
from django.contrib.auth.hashers import check_password, identify_hasher, make_password

from accounts.hashers import Argon2PasswordHasher
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture
def argon2_only(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["accounts.hashers.Argon2PasswordHasher"]
    settings.ARGON2_MEMORY_KIB, settings.ARGON2_TIME_COST, settings.ARGON2_PARALLELISM = 19_456, 2, 1


def _cost(encoded: str) -> str:
    return encoded.split("$")[3]  # argon2$argon2id$v=19$m=...,t=...,p=...$salt$hash


@pytest.mark.usefixtures("argon2_only")
def test_a_new_hash_has_the_configured_cost(settings: Any):
    assert _cost(make_password(PASSWORD)) == "m=19456,t=2,p=1"
    settings.ARGON2_MEMORY_KIB, settings.ARGON2_TIME_COST = 47_104, 1
    encoded = make_password(PASSWORD)
    assert _cost(encoded) == "m=47104,t=1,p=1"
    assert isinstance(identify_hasher(encoded), Argon2PasswordHasher)
    assert check_password(PASSWORD, encoded) and not check_password("wrong", encoded)


@pytest.mark.usefixtures("argon2_only")
def test_the_shipped_cost_is_not_djangos(settings: Any):
    """The twin: Django's own hasher makes the expensive hash this project measured (100 MiB, 8 lanes)."""
    assert _cost(make_password(PASSWORD, hasher=DjangoArgon2PasswordHasher())) == "m=102400,t=2,p=8"
    assert _cost(make_password(PASSWORD)) != "m=102400,t=2,p=8"


@pytest.mark.django_db
@pytest.mark.usefixtures("argon2_only")
def test_a_hash_of_another_cost_still_signs_in_and_is_remade_with_the_configured_one():
    user = UserFactory.create(username="storm")
    user.password = make_password(PASSWORD, hasher=DjangoArgon2PasswordHasher())  # made before the change
    user.save(update_fields=["password"])

    assert user.check_password(PASSWORD)  # nobody is locked out by a change of cost ...
    user.refresh_from_db()
    assert _cost(user.password) == "m=19456,t=2,p=1"  # ... and the hash is re-made at the sign-in
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
@pytest.mark.usefixtures("argon2_only")
def test_a_wrong_password_does_not_remake_the_hash():
    user = UserFactory.create(username="guess")
    user.password = old = make_password(PASSWORD, hasher=DjangoArgon2PasswordHasher())
    user.save(update_fields=["password"])

    assert not user.check_password("wrong password")
    user.refresh_from_db()
    assert user.password == old
