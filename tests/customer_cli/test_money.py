"""The CLI never passes money through float: typed tokens become smallest units exactly, and
amounts from the API (u128 decimal strings) are shown exactly."""

from __future__ import annotations

import argparse

import pytest

from services.common import TOKEN_UNIT
from services.customer_cli.cli import parse_tokens, register, tokens


@pytest.mark.parametrize(
    ("typed", "units"),
    [
        ("100", 100 * TOKEN_UNIT),
        ("0.5", TOKEN_UNIT // 2),
        ("0.000000000003", 3),
        ("4.35", 4_350_000_000_000),  # float: int(4.35 * 10**12) == 4349999999999
        ("123456789.123456789012", 123456789123456789012),  # beyond a float's 53 bits
        ("1e3", 1000 * TOKEN_UNIT),
        ("1_000", 1000 * TOKEN_UNIT),
    ],
)
def test_typed_tokens_become_exact_smallest_units(typed: str, units: int) -> None:
    assert parse_tokens(typed) == units


@pytest.mark.parametrize("typed", ["0", "-1", "0.0000000000001", "abc", "nan", "inf", ""])
def test_tokens_that_are_not_a_positive_whole_number_of_units_are_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        parse_tokens(typed)


@pytest.mark.parametrize(
    ("units", "shown"),
    [
        ("1500000000000", "1.5"),
        (10**16, "10,000"),
        ("0", "0"),
        (1, "0.000000000001"),
        (2**128 - 1, "340,282,366,920,938,463,463,374,607.431768211455"),
        (2**64 + 1, "18,446,744.073709551617"),
    ],
)
def test_amounts_are_shown_exactly(units: str | int, shown: str) -> None:
    assert tokens(units) == shown


def test_faucet_argument_is_parsed_to_units_by_argparse() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert parser.parse_args(["faucet", "0.000000000003"]).tokens == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["faucet", "0.0000000000001"])
