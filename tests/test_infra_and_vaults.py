"""Safe infrastructure (canonical addresses, idempotent) and micro-vault creation read back from chain."""

import json

import pytest
import sqlalchemy as sa

from custody.contracts.infra import CUSTODY_COMPONENTS, ensure_infrastructure, load_infrastructure
from custody.exceptions import DeploymentError, TemplateError, UnknownVault, VaultError
from custody.policy.template import load_policy
from custody.signers.local import anvil_signer
from custody.store import deployments, vaults
from custody.vault import service
from tests.conftest import POLICIES

CANONICAL_SAFE_141 = {
    "SafeL2": "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762",
    "SafeProxyFactory": "0x4e1DCf7AD4e460CfD30791CCC4F9c8a4f820ec67",
    "CompatibilityFallbackHandler": "0xfd0732Dc9E303f09fCEf3a7388Ad10A83459Ec99",
    "MultiSendCallOnly": "0x9641d764fc13c8B624c04430C7356C1C7C8102e2",
}


def test_safe_contracts_land_on_their_canonical_addresses(session):
    infra = session.infrastructure()
    for name, address in CANONICAL_SAFE_141.items():
        assert infra.as_dict()[name] == address


def test_second_deploy_reuses_everything_without_transactions(session):
    sender = anvil_signer(0)
    nonce_before = session.chain.w3.eth.get_transaction_count(sender.address)
    _infra, results = ensure_infrastructure(session.chain, sender, session.store)
    assert all(r.tx_hash is None for r in results)
    assert session.chain.w3.eth.get_transaction_count(sender.address) == nonce_before
    with session.store.connect() as conn:
        names = set(conn.execute(sa.select(deployments.c.name)).scalars())
    assert names == {*CANONICAL_SAFE_141, *CUSTODY_COMPONENTS, "DemoUSD"}


def test_registry_that_disagrees_with_the_chain_is_refused(session):
    with session.store.begin() as conn:
        conn.execute(deployments.update().where(deployments.c.name == "VaultSetup").values(codehash="0x" + "00" * 32))
    with pytest.raises(DeploymentError, match="registry records VaultSetup .* different or no code"):
        load_infrastructure(session.chain, session.store)


@pytest.mark.parametrize("template", ["hot.yaml", "warm.yaml", "cold.yaml", "deep-cold.yaml"])
def test_create_vault_from_each_template_reads_back_from_chain(session, template):
    policy = load_policy(POLICIES / template)
    record, facts = service.create_vault(session, POLICIES / template)
    state = service.read_state(session, record)
    assert state.owners == policy.owner_addresses
    assert state.threshold == policy.threshold
    assert state.nonce == 0
    assert state.timelock_delay == policy.timelock_delay
    # the timelock, plus the exit module when the template has an `exit:` section
    assert sorted(state.modules) == sorted([record.timelock] + ([record.exit_module] if policy.exit else []))
    assert (record.exit_module is not None) == (policy.exit is not None)
    assert state.timelock_roles_ok
    assert state.singleton_is_canonical and state.version == "1.4.1"
    # never Safe's CompatibilityFallbackHandler: it answers ERC-1271 for owner signatures alone
    assert (
        state.fallback_handler
        == session.infrastructure().fallback_handler
        != CANONICAL_SAFE_141["CompatibilityFallbackHandler"]
    )
    assert state.fallback_handler_is_custody
    # a Safe, its timelock, its guard (a clone at the least) and its modules: never a cheap transaction
    assert facts["gas_used"] > 500_000 and not facts["resumed"]


def test_timelock_roles_belong_to_the_safe_only(session):
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    lock = session.contract("VaultTimelock", record.timelock)
    infra = session.infrastructure()
    roles = {
        name: lock.functions[name]().call()
        for name in ("PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE", "DEFAULT_ADMIN_ROLE")
    }
    assert lock.functions.hasRole(roles["PROPOSER_ROLE"], record.safe).call()
    assert lock.functions.hasRole(roles["CANCELLER_ROLE"], record.safe).call()
    assert lock.functions.hasRole(roles["EXECUTOR_ROLE"], "0x" + "00" * 20).call()
    # nobody administers roles, not even the timelock itself: they are fixed for the vault's life
    assert not lock.functions.hasRole(roles["DEFAULT_ADMIN_ROLE"], record.timelock).call()
    assert lock.functions.vault().call() == record.safe
    for role in roles.values():
        assert not lock.functions.hasRole(role, infra.vault_factory).call()
        assert not lock.functions.hasRole(role, anvil_signer(0).address).call()


def test_policy_token_without_contract_is_reported_not_fatal(session, tmp_path):
    template = tmp_path / "hot.yaml"
    template.write_text(
        (POLICIES / "hot.yaml")
        .read_text()
        .replace("0x6416d50c3136F549278cd5Dbb34b728069975495", "0x000000000000000000000000000000000000dEaD")
    )
    record, _ = service.create_vault(session, template)
    (eth, token) = service.read_state(session, record).balances
    assert eth.balance == 0 and token.balance is None and token.problem == "no ERC-20 contract at this address"


def test_vault_state_is_read_from_chain_not_cache(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=record.safe, value=3 * 10**18, what="deposit")
    eth = next(b for b in service.read_state(session, record).balances if b.token is None)
    assert eth.balance == 3 * 10**18


def test_duplicate_name_is_refused(session):
    service.create_vault(session, POLICIES / "hot.yaml")
    with pytest.raises(VaultError, match="a vault named 'hot-ops' exists already"):
        service.create_vault(session, POLICIES / "hot.yaml")


def test_same_template_under_another_name_is_a_separate_vault(session):
    a, _ = service.create_vault(session, POLICIES / "hot.yaml")
    b, _ = service.create_vault(session, POLICIES / "hot.yaml", name="hot-ops-2")
    assert a.safe != b.safe and a.timelock != b.timelock


def test_unrecorded_deployed_vault_is_adopted(session, workspace):
    record, facts = service.create_vault(session, POLICIES / "hot.yaml")
    with session.store.begin() as conn:
        conn.execute(vaults.delete())
    again, facts2 = service.create_vault(session, POLICIES / "hot.yaml")
    assert again.safe == record.safe and facts2["resumed"] and facts2["tx_hash"] == facts["tx_hash"]


def test_lookup_by_id_name_and_address(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    assert service.get_vault(session, record.id) == record
    assert service.get_vault(session, "hot-ops") == record
    assert service.get_vault(session, record.safe.lower()) == record
    with pytest.raises(UnknownVault, match=r"no vault 'nope' .* \(known: 1:hot-ops\)"):
        service.get_vault(session, "nope")


def test_vault_without_code_is_reported(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    with session.store.begin() as conn:
        conn.execute(vaults.update().values(safe="0x000000000000000000000000000000000000dEaD"))
    with pytest.raises(VaultError, match="has no code on chain 31337; was the chain reset"):
        service.get_vault(session, record.id)


def test_invalid_template_is_refused_before_any_transaction(session, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((POLICIES / "hot.yaml").read_text().replace("threshold: 1", "threshold: 3"))
    nonce = session.chain.w3.eth.get_transaction_count(anvil_signer(0).address)
    with pytest.raises(TemplateError, match="threshold 3 is greater than the 2 owner"):
        service.create_vault(session, bad)
    assert session.chain.w3.eth.get_transaction_count(anvil_signer(0).address) == nonce


def test_cli_vault_create_list_show(run_cli):
    created = run_cli("vault", "create", str(POLICIES / "cold.yaml"), "--json")
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    listed = json.loads(run_cli("vault", "list", "--json").stdout)
    assert [v["safe"] for v in listed] == [data["safe"]]
    shown = json.loads(run_cli("vault", "show", "cold-reserve", "--json").stdout)
    assert shown["threshold"] == 2 and len(shown["owners"]) == 3 and shown["timelock_delay"] == 86400
    # the auditor's check from the code itself: the cold template's guard is a verified clone of the build
    assert (shown["guard_code"]["deployment"], shown["guard_code"]["verified"]) == ("clone", True)
    assert shown["guard_code_policy_matches"] and shown["guard_code"]["template_hash"] == shown["policy_hash"]
    human = run_cli("vault", "show", str(data["id"]))
    assert "2-of-3" in human.stdout and data["safe"] in human.stdout
    assert "clone of CustodyGuardClone" in human.stdout and "registered for this Safe" in human.stdout
    missing = run_cli("vault", "show", "ghost")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: no vault 'ghost'")
