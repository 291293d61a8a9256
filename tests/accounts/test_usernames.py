"""Usernames are unique case-insensitively, in the database: "Alice" and "alice" are one account name.

The Python check in user_register gives the friendly message; the unique index on LOWER(username) is what
decides when two sign-ups race. The race test makes both sign-ups pass the check before either inserts (a
barrier inside the `username_taken` seam), so the database alone has to refuse one; its twin drops the index
and shows both accounts being created.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

import accounts.services
from accounts.models import USERNAME_CI_UNIQUE, User
from accounts.services import RegistrationRefused, user_register
from tests.concurrency import BARRIER_TIMEOUT_S, constraint_switched_off, run_concurrently

PASSWORD = "Sturdy-pass-42"


@pytest.fixture
def both_pass_the_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Worst case: each sign-up has checked "is the name free?" (yes) before the other inserts."""
    checked = threading.Barrier(2)
    real_check = accounts.services.username_taken

    def check_then_wait(username: str) -> bool:
        taken = real_check(username)
        checked.wait(timeout=BARRIER_TIMEOUT_S)
        return taken

    monkeypatch.setattr(accounts.services, "username_taken", check_then_wait)
    yield


def _sign_up(index: int) -> User:
    name = ("Alice", "alice")[index]
    return user_register(username=name, email=f"{name.lower()}{index}@example.com", password=PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_two_sign_ups_of_alice_and_alice_at_the_same_moment_make_one_account(both_pass_the_check: None) -> None:
    outcomes = run_concurrently(_sign_up, 2)

    created = [outcome.value for outcome in outcomes if outcome.error is None]
    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert len(created) == 1
    assert len(refused) == 1 and isinstance(refused[0], RegistrationRefused)
    assert refused[0].extra["errors"] == {"username": ["This username is taken."]}
    assert User.objects.filter(username__iexact="alice").count() == 1


@pytest.mark.django_db(transaction=True)
def test_twin_without_the_index_both_sign_ups_succeed(both_pass_the_check: None) -> None:
    def delete_them() -> Any:
        return User.objects.filter(username__iexact="alice").delete()

    with constraint_switched_off(User, USERNAME_CI_UNIQUE, clean_up=delete_them):
        outcomes = run_concurrently(_sign_up, 2)
        # The race happened: two accounts whose names differ only in case.
        assert [outcome.error for outcome in outcomes] == [None, None]
        assert sorted(User.objects.filter(username__iexact="alice").values_list("username", flat=True)) == [
            "Alice",
            "alice",
        ]


@pytest.mark.django_db
def test_the_database_refuses_a_case_variant_that_skips_every_python_check() -> None:
    User.objects.create_user(username="alice", password=PASSWORD)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(username="ALICE")


@pytest.mark.django_db
def test_the_api_and_the_sign_up_page_say_taken_for_a_case_variant(client: Any) -> None:
    User.objects.create_user(username="alice", password=PASSWORD)
    api = client.post(
        "/api/v1/auth/register/",
        {"username": "Alice", "email": "a2@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    assert api.status_code == 400
    assert api.json()["errors"]["username"] == ["This username is taken."]
    page = client.post(
        "/accounts/signup/",
        {"username": "ALICE", "email": "a3@example.com", "password": PASSWORD, "password_confirm": PASSWORD},
    )
    assert page.status_code == 400
    assert "This username is taken." in page.content.decode()
    assert User.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["\u0430lice", "ali ce", "\u00e9lan"])
def test_usernames_are_ascii_so_look_alikes_cannot_register(client: Any, name: str) -> None:
    User.objects.create_user(username="alice", password=PASSWORD)
    response = client.post(
        "/api/v1/auth/register/",
        {"username": name, "email": "x@example.com", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "username" in response.json()["errors"]
    assert User.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_existing_case_clashes_instead_of_failing() -> None:
    """Data from before the index: the oldest account keeps its name, later ones become "<name>-<id>"."""
    migration = importlib.import_module("accounts.migrations.0003_username_unique_case_insensitive")

    def delete_them() -> Any:
        return User.objects.filter(username__istartswith="alice").delete()

    with constraint_switched_off(User, USERNAME_CI_UNIQUE, clean_up=delete_them):
        first = User.objects.create_user(username="alice", password=PASSWORD)
        second = User.objects.create_user(username="Alice", password=PASSWORD)
        third = User.objects.create_user(username="ALICE", password=PASSWORD)
        migration.rename_case_insensitive_duplicates(apps, None)
        names = dict(User.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list("pk", "username"))
        assert names == {first.pk: "alice", second.pk: f"Alice-{second.pk}", third.pk: f"ALICE-{third.pk}"}
        # The index can be built on what the migration left (constraint_switched_off adds it back on exit).
