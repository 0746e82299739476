from decimal import Decimal

import pytest

from custody.exceptions import AddressError, AmountError
from custody.types import format_amount, parse_address, parse_amount

CHECKSUMMED = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


class TestParseAddress:
    def test_checksummed_is_returned_unchanged(self):
        assert parse_address(CHECKSUMMED) == CHECKSUMMED

    def test_lowercase_carries_no_checksum_and_is_normalised(self):
        assert parse_address(CHECKSUMMED.lower()) == CHECKSUMMED

    def test_wrong_checksum_is_rejected(self):
        broken = CHECKSUMMED.replace("C51812", "c51812")  # one letter's case flipped breaks EIP-55
        with pytest.raises(AddressError, match="bad EIP-55 checksum"):
            parse_address(broken)

    @pytest.mark.parametrize(
        "value",
        ["0x1234", "70997970C51812dc3A010C7d01b50e0d17dc79C8", "0xZZ997970C51812dc3A010C7d01b50e0d17dc79C8", ""],
    )
    def test_malformed(self, value):
        with pytest.raises(AddressError, match="is not an address"):
            parse_address(value)

    def test_zero_address_rejected_unless_allowed(self):
        zero = "0x" + "0" * 40
        with pytest.raises(AddressError, match="zero address"):
            parse_address(zero)
        assert parse_address(zero, allow_zero=True) == zero

    def test_message_names_the_field(self):
        with pytest.raises(AddressError, match="^destination"):
            parse_address("0x12", what="destination")


class TestParseAmount:
    @pytest.mark.parametrize(
        "text,decimals,expected",
        [
            ("1", 18, 10**18),
            ("1.5", 18, 15 * 10**17),
            ("0.000001", 6, 1),
            ("1.50", 6, 1_500_000),
            ("1000", 0, 1000),
        ],
    )
    def test_exact_scaling(self, text, decimals, expected):
        assert parse_amount(text, decimals) == expected

    def test_too_many_decimals(self):
        with pytest.raises(AmountError, match="has 7 decimal places; USDC allows at most 6"):
            parse_amount("0.0000001", 6, symbol="USDC")

    @pytest.mark.parametrize(
        "text,message",
        [
            ("-1", "signs are not allowed"),
            ("0", "greater than zero"),
            ("abc", "is not a decimal number"),
            ("NaN", "is not a decimal number"),
            ("Infinity", "is not a decimal number"),
            ("1_000", "digit separators are not allowed"),
            ("1e3", "exponents are not allowed"),
        ],
    )
    def test_rejections(self, text, message):
        with pytest.raises(AmountError, match=message):
            parse_amount(text, 18)

    def test_zero_allowed_when_asked(self):
        assert parse_amount("0", 18, allow_zero=True) == 0

    def test_float_refused(self):
        with pytest.raises(AmountError, match="not float"):
            parse_amount(0.1, 18)  # type: ignore[arg-type]

    def test_overflow(self):
        with pytest.raises(AmountError, match="uint256"):
            parse_amount(str(2**256), 0)

    def test_large_amounts_are_exact(self):
        text = "123456789012345678901234567890.123456789012345678"
        assert parse_amount(text, 18) == 123456789012345678901234567890123456789012345678

    def test_decimal_input(self):
        assert parse_amount(Decimal("2.25"), 2) == 225


@pytest.mark.parametrize(
    "units,decimals,text",
    [(10**18, 18, "1"), (15 * 10**17, 18, "1.5"), (1, 6, "0.000001"), (0, 6, "0"), (123, 0, "123"), (-5, 1, "-0.5")],
)
def test_format_amount(units, decimals, text):
    assert format_amount(units, decimals) == text
    if units > 0:
        assert parse_amount(text, decimals) == units
