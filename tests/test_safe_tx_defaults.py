"""SafeTx defaults, chain-free: a transaction built without gas fields is the zero-gas, no-refund transaction."""

from custody.safe.safe_tx import SafeTx
from custody.types import ZERO_ADDRESS, Operation

FIELDS = {"safe": "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", "chain_id": 31337,
          "to": "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "value": 1, "data": b"", "operation": Operation.CALL,
          "nonce": 3}  # fmt: skip


def test_gas_and_refund_fields_default_to_zero_and_hash_as_such():
    default = SafeTx(**FIELDS)
    explicit = SafeTx(**FIELDS, safe_tx_gas=0, base_gas=0, gas_price=0, gas_token=ZERO_ADDRESS,
                      refund_receiver=ZERO_ADDRESS)  # fmt: skip
    assert (default.safe_tx_gas, default.base_gas, default.gas_price) == (0, 0, 0)
    assert (default.gas_token, default.refund_receiver) == (ZERO_ADDRESS, ZERO_ADDRESS)
    assert default.safe_tx_hash == explicit.safe_tx_hash
