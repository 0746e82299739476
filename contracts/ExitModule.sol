// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {MAX_ESCROW_DELAY, MIN_ESCROW_DELAY} from "./CustodyLimits.sol";
import {IExitModule} from "./interfaces/IExitModule.sol";
import {ISafe} from "./interfaces/ISafe.sol";

/// @title ExitModule
/// @notice Emergency exit of one micro-vault to a pre-approved fallback custodian. See {IExitModule}.
/// @dev Deployed once as an implementation; each vault gets an EIP-1167 clone whose immutable
///      arguments are (safe, timelock), initialised in the same transaction by ExitModuleDeployer.
contract ExitModule is IExitModule {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "2.0.0";

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant REQUEST_TYPEHASH =
        keccak256("ExitRequest(address vault,address custodian,uint256 nonce,uint256 deadline)");
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    bytes32 private constant LOCK_SLOT = keccak256("custody.exit-module.lock");
    /// @dev Safe v1.4.1 GuardManager storage slot: keccak256("guard_manager.guard.address").
    uint256 private constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;

    /// @dev The implementation itself (never usable as a module).
    address private immutable IMPLEMENTATION;

    ExitConfig private _config;
    bool private _initialized;
    mapping(address => bool) private _custodian;
    mapping(address => bool) private _initiator;

    /// @notice Number of exits initiated so far; the next request must sign this value.
    uint256 public nonce;
    /// @notice State of the current exit.
    ExitState public state;
    /// @notice Custodian of the pending exit.
    address public pendingCustodian;
    /// @notice Earliest finalization time of the pending exit.
    uint256 public readyAt;

    constructor() {
        IMPLEMENTATION = address(this);
    }

    /// @notice Sets the clone's configuration, once (ExitModuleDeployer calls it right after cloning).
    function initialize(ExitConfig calldata cfg) external {
        // Invariant: the shared implementation is inert and each clone is configured exactly once.
        if (address(this) == IMPLEMENTATION || _initialized) revert ExitModuleNotAuthorized(msg.sender);
        _initialized = true;
        _apply(cfg);
    }

    /// @inheritdoc IExitModule
    function SAFE() public view returns (address safe) {
        (safe,) = _bindings();
    }

    /// @inheritdoc IExitModule
    function TIMELOCK() public view returns (address timelock) {
        (, timelock) = _bindings();
    }

    function _bindings() private view returns (address safe, address timelock) {
        return abi.decode(Clones.fetchCloneArgs(address(this)), (address, address));
    }

    modifier nonReentrant() {
        bytes32 slot = LOCK_SLOT;
        uint256 locked;
        assembly ("memory-safe") {
            locked := tload(slot)
        }
        // Invariant: a custodian receiving funds cannot re-enter and move them twice.
        if (locked != 0) revert ExitModuleReentrancy();
        assembly ("memory-safe") {
            tstore(slot, 1)
        }
        _;
        assembly ("memory-safe") {
            tstore(slot, 0)
        }
    }

    // -- exit lifecycle -------------------------------------------------------------------------

    /// @inheritdoc IExitModule
    function initiate(address custodian, uint256 deadline, bytes calldata signatures) external nonReentrant {
        // Invariant: one exit at a time; a pending exit cannot be redirected.
        if (state == ExitState.Pending) revert ExitModuleExitPending(pendingCustodian, readyAt);
        // Invariant: funds only ever leave to a pre-approved custodian.
        if (!_custodian[custodian]) revert ExitModuleCustodianNotApproved(custodian);
        if (block.timestamp > deadline) revert ExitModuleRequestExpired(deadline, block.timestamp);
        address[] memory signers = _recover(requestDigest(custodian, deadline), signatures);
        // Invariant: an exit needs the configured quorum of distinct initiators.
        if (signers.length < _config.quorum) revert ExitModuleQuorumNotMet(signers.length, _config.quorum);
        uint256 ready = block.timestamp + _config.escrowDelay;
        state = ExitState.Pending;
        pendingCustodian = custodian;
        readyAt = ready;
        emit ExitInitiated(nonce, custodian, signers, ready);
        nonce += 1;
    }

    /// @inheritdoc IExitModule
    function cancel() external nonReentrant {
        if (state != ExitState.Pending) revert ExitModuleNoPendingExit();
        (address safe, address timelock) = _bindings();
        // Invariant: only the vault itself, its timelock or (if allowed) an owner can stop an exit.
        bool allowed = msg.sender == safe || msg.sender == timelock
            || (_config.ownersCanCancel && ISafe(safe).isOwner(msg.sender));
        if (!allowed) revert ExitModuleNotAuthorized(msg.sender);
        state = ExitState.None;
        pendingCustodian = address(0);
        readyAt = 0;
        emit ExitCancelled(nonce - 1, msg.sender);
    }

    /// @inheritdoc IExitModule
    function finalize() external nonReentrant {
        if (state != ExitState.Pending) revert ExitModuleNoPendingExit();
        // Invariant: nothing moves before the escrow delay has passed.
        if (block.timestamp < readyAt) revert ExitModuleTooEarly(block.timestamp, readyAt);
        address custodian = pendingCustodian;
        uint256 exitNonce = nonce - 1;
        state = ExitState.None;
        pendingCustodian = address(0);
        readyAt = 0;
        address safe = SAFE();
        uint256 balance = safe.balance;
        if (balance != 0) {
            bool ok = ISafe(safe).execTransactionFromModule(custodian, balance, "", ISafe.Operation.Call);
            emit ExitAssetMoved(exitNonce, address(0), custodian, balance, ok);
        }
        address[] memory tokens = _config.tokens;
        for (uint256 i = 0; i < tokens.length; i++) {
            _sweep(safe, exitNonce, tokens[i], custodian);
        }
        emit ExitFinalized(exitNonce, custodian, msg.sender);
    }

    /// @dev One token: a failing token is reported and skipped, so it cannot block the others.
    function _sweep(address safe, uint256 exitNonce, address token, address custodian) private {
        (bool read, bytes memory raw) = token.staticcall(abi.encodeCall(IERC20.balanceOf, (safe)));
        if (!read || raw.length < 32) {
            emit ExitAssetMoved(exitNonce, token, custodian, 0, false);
            return;
        }
        uint256 amount = abi.decode(raw, (uint256));
        if (amount == 0) return;
        (bool ok, bytes memory ret) = ISafe(safe).execTransactionFromModuleReturnData(
            token, 0, abi.encodeCall(IERC20.transfer, (custodian, amount)), ISafe.Operation.Call
        );
        ok = ok && (ret.length == 0 || (ret.length >= 32 && abi.decode(ret, (bool))));
        emit ExitAssetMoved(exitNonce, token, custodian, amount, ok);
    }

    // -- configuration (timelock only) ----------------------------------------------------------

    /// @inheritdoc IExitModule
    function configure(ExitConfig calldata cfg) external {
        // Invariant: custodians, quorum and delay change only through the vault's timelock.
        if (msg.sender != TIMELOCK()) revert ExitModuleNotAuthorized(msg.sender);
        if (state == ExitState.Pending) revert ExitModuleExitPending(pendingCustodian, readyAt);
        for (uint256 i = 0; i < _config.custodians.length; i++) {
            _custodian[_config.custodians[i]] = false;
        }
        for (uint256 i = 0; i < _config.initiators.length; i++) {
            _initiator[_config.initiators[i]] = false;
        }
        _apply(cfg);
    }

    function _apply(ExitConfig calldata cfg) private {
        if (cfg.custodians.length == 0) revert ExitModuleInvalidConfig("no custodian");
        if (cfg.quorum == 0) revert ExitModuleInvalidConfig("quorum is zero");
        if (cfg.initiators.length != 0 && cfg.quorum > cfg.initiators.length) {
            revert ExitModuleInvalidConfig("quorum above the council size");
        }
        // Invariant: an exit always waits in public long enough to be cancelled, and never forever.
        if (cfg.escrowDelay < MIN_ESCROW_DELAY || cfg.escrowDelay > MAX_ESCROW_DELAY) {
            revert ExitModuleInvalidConfig("escrow delay out of range");
        }
        (address safe, address timelock) = _bindings();
        address guard = _installedGuard(safe);
        for (uint256 i = 0; i < cfg.custodians.length; i++) {
            address custodian = cfg.custodians[i];
            // Invariant: an exit moves funds out of the vault, never back into one of its own parts
            // (where they would be stuck or re-enter the vault's control).
            if (
                custodian == address(0) || custodian == safe || custodian == timelock || custodian == address(this)
                    || custodian == guard || ISafe(safe).isModuleEnabled(custodian)
            ) {
                revert ExitModuleInvalidConfig("bad custodian");
            }
            _custodian[custodian] = true;
        }
        for (uint256 i = 0; i < cfg.initiators.length; i++) {
            _initiator[cfg.initiators[i]] = true;
        }
        _config = cfg;
        emit ExitConfigChanged(keccak256(abi.encode(cfg)));
    }

    function _installedGuard(address safe) private view returns (address) {
        return address(uint160(uint256(bytes32(ISafe(safe).getStorageAt(GUARD_SLOT, 1)))));
    }

    // -- views ----------------------------------------------------------------------------------

    /// @notice The current configuration.
    function config() external view returns (ExitConfig memory) {
        return _config;
    }

    /// @notice Whether `account` may sign exit requests now.
    function isInitiator(address account) public view returns (bool) {
        return _config.initiators.length == 0 ? ISafe(SAFE()).isOwner(account) : _initiator[account];
    }

    /// @inheritdoc IExitModule
    function requestDigest(address custodian, uint256 deadline) public view returns (bytes32) {
        bytes32 domain = keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("CustodyExitModule"), keccak256("1"), block.chainid, address(this))
        );
        bytes32 request = keccak256(abi.encode(REQUEST_TYPEHASH, SAFE(), custodian, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", domain, request));
    }

    function _recover(bytes32 digest, bytes calldata signatures) private view returns (address[] memory signers) {
        if (signatures.length % 65 != 0) revert ExitModuleMalformedSignature(signatures.length / 65);
        uint256 count = signatures.length / 65;
        signers = new address[](count);
        address last = address(0);
        for (uint256 i = 0; i < count; i++) {
            bytes32 r = bytes32(signatures[i * 65:i * 65 + 32]);
            bytes32 s = bytes32(signatures[i * 65 + 32:i * 65 + 64]);
            uint8 v = uint8(signatures[i * 65 + 64]);
            // Invariant: one signature per initiator (no malleated twin, no duplicate).
            if ((v != 27 && v != 28) || uint256(s) > HALF_N) revert ExitModuleMalformedSignature(i);
            address signer = ecrecover(digest, v, r, s);
            if (signer == address(0)) revert ExitModuleMalformedSignature(i);
            if (signer <= last || !isInitiator(signer)) revert ExitModuleInvalidSigner(signer);
            signers[i] = signer;
            last = signer;
        }
    }
}
