"""The guard compiler (custody.policy.compiled), chain-free: what each template field compiles to, checked
against values computed here independently (destination bitmasks, allowed hours, EIP-712 domain separators)."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

from custody.policy.compiled import compile_policy
from custody.policy.template import load_policy
from tests.conftest import FIXTURES, POLICIES

BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # listed for ETH and dUSD in rules.yaml
MAKER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # listed for ETH only
CHARLIE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def test_destination_masks_name_exactly_the_assets_that_list_them():
    config = compile_policy(load_policy(FIXTURES / "policies" / "rules.yaml"))
    masks = {d.account: d.asset_mask for d in config.destinations}
    assert masks == {BROKER: 0b11, MAKER: 0b01}  # bit i: asset i (0 = ETH, 1 = dUSD) may go there
    assert config.unrestricted_mask == 0


def test_a_destination_listed_for_a_token_only_cannot_receive_eth(tmp_path):
    text = (FIXTURES / "policies" / "rules.yaml").read_text()
    dusd_list = "    allowlist:\n      - 0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f\n    controls: [TEST-4]"
    assert text.count(dusd_list) == 1
    variant = tmp_path / "token-only.yaml"
    variant.write_text(
        text.replace(dusd_list, dusd_list.replace("0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", CHARLIE))
    )
    masks = {d.account: d.asset_mask for d in compile_policy(load_policy(variant)).destinations}
    assert masks == {BROKER: 0b01, MAKER: 0b01, CHARLIE: 0b10}


def test_allowed_hours_compile_to_seconds_of_the_day_and_to_zero_without_them():
    rules = compile_policy(load_policy(FIXTURES / "policies" / "rules.yaml"))
    assert (rules.allowed_start, rules.allowed_end) == (6 * 3600, 22 * 3600)
    hot = compile_policy(load_policy(POLICIES / "hot.yaml"))  # no allowed_hours: no restriction
    assert (hot.allowed_start, hot.allowed_end) == (0, 0)


def _separator(name: str, version: str | None, chain_id: int, verifying: str) -> bytes:
    if version is None:
        typehash = keccak(text="EIP712Domain(string name,uint256 chainId,address verifyingContract)")
        return keccak(encode(["bytes32", "bytes32", "uint256", "address"],
                             [typehash, keccak(text=name), chain_id, verifying]))  # fmt: skip
    typehash = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    return keccak(encode(["bytes32", "bytes32", "bytes32", "uint256", "address"],
                         [typehash, keccak(text=name), keccak(text=version), chain_id, verifying]))  # fmt: skip


def test_message_domain_separators_with_and_without_a_version():
    config = compile_policy(load_policy(FIXTURES / "policies" / "messages.yaml"))
    gpv2, permit2 = config.message_domains
    for chain_id in (1, 31337):
        assert gpv2.separator(chain_id) == _separator("Gnosis Protocol", "v2", chain_id, gpv2.verifying_contract)
        assert permit2.separator(chain_id) == _separator("Permit2", None, chain_id, permit2.verifying_contract)
