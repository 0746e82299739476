// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ISafeGuard} from "../guard/GuardEntryPoints.sol";

/// @title RolesStyleGuard
/// @notice Benchmarks only: a reference guard with the permission model of Zodiac Roles v2, written for
///         this comparison (not Zodiac's code), enforcing what the benchmark's policy enforces the way
///         that model would. Every rule lives in storage, as a Roles modifier keeps it:
///         - a clearance per target: an ETH send needs the destination cleared to receive ETH, a token
///           call needs the token cleared function by function;
///         - a scope per (token, selector) whose condition on the first parameter is "one of the
///           allowed recipients";
///         - an allowance per asset with Roles' refill semantics: a balance topped up by `refill` once
///           per `period` (at most to `maxRefill`), consumed by each send or transfer.
///         A refill allowance is not a rolling window: a balance spent just before a refill can be
///         spent again just after it, so up to twice the limit can leave within minutes.
contract RolesStyleGuard {
    uint256 private constant CLEAR_ETH = 1; // the target may receive ETH (a send without data)
    uint256 private constant CLEAR_FUNCTIONS = 2; // the target's scoped functions may be called

    /// @dev Roles v2's allowance layout: the refill settings, then balance and the last refill's time.
    struct Allowance {
        uint128 refill;
        uint128 maxRefill;
        uint64 period;
        uint128 balance;
        uint64 timestamp;
    }

    error RolesStyleNotSafe(address caller);
    error RolesStyleOnlyCalls();
    error RolesStyleTargetNotAllowed(address target);
    error RolesStyleFunctionNotAllowed(address target, bytes4 selector);
    error RolesStyleParameterNotAllowed(address target, address recipient);
    error RolesStyleAllowanceExceeded(bytes32 key, uint256 amount, uint256 balance);

    address public immutable safe;
    mapping(address target => uint256) public clearance;
    /// @dev Scope of (target, selector): the key of the allowance its second parameter consumes (zero: none).
    mapping(bytes32 scope => bytes32) public scopeAllowance;
    mapping(bytes32 scope => mapping(address recipient => bool)) public recipientAllowed;
    mapping(bytes32 key => Allowance) public allowances;

    /// @param ethDestinations who may receive ETH; @param recipients who may receive `token`.
    /// @param ethDaily, tokenDaily each asset's allowance, refilled to the full amount every 24 h.
    constructor(
        address safe_,
        address[] memory ethDestinations,
        address token,
        address[] memory recipients,
        uint128 ethDaily,
        uint128 tokenDaily
    ) {
        safe = safe_;
        for (uint256 i = 0; i < ethDestinations.length; i++) {
            clearance[ethDestinations[i]] = CLEAR_ETH;
        }
        _allow("ether", ethDaily);
        bytes32 transferScope = _scope(token, bytes4(keccak256("transfer(address,uint256)")));
        clearance[token] |= CLEAR_FUNCTIONS;
        scopeAllowance[transferScope] = _allow("token", tokenDaily);
        for (uint256 i = 0; i < recipients.length; i++) {
            recipientAllowed[transferScope][recipients[i]] = true;
        }
    }

    function checkTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        uint8 operation,
        uint256,
        uint256,
        uint256,
        address,
        address payable,
        bytes calldata,
        address
    ) external {
        if (msg.sender != safe) revert RolesStyleNotSafe(msg.sender);
        if (operation != 0) revert RolesStyleOnlyCalls();
        if (data.length == 0) {
            if (clearance[to] & CLEAR_ETH == 0) revert RolesStyleTargetNotAllowed(to);
            _consume(keccak256("ether"), value);
            return;
        }
        if (clearance[to] & CLEAR_FUNCTIONS == 0 || data.length < 68) revert RolesStyleTargetNotAllowed(to);
        bytes32 scope = _scope(to, bytes4(data[:4]));
        bytes32 key = scopeAllowance[scope];
        if (key == bytes32(0)) revert RolesStyleFunctionNotAllowed(to, bytes4(data[:4]));
        (address recipient, uint256 amount) = abi.decode(data[4:68], (address, uint256));
        if (!recipientAllowed[scope][recipient]) revert RolesStyleParameterNotAllowed(to, recipient);
        if (value != 0) revert RolesStyleTargetNotAllowed(to);
        _consume(key, amount);
    }

    function checkAfterExecution(bytes32, bool) external pure {}

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId || interfaceId == type(IERC165).interfaceId;
    }

    /// @dev Tops the allowance up for every full period since its last refill, then takes `amount` from it.
    function _consume(bytes32 key, uint256 amount) private {
        Allowance storage allowance = allowances[key];
        uint256 balance = allowance.balance;
        uint256 timestamp = allowance.timestamp;
        uint256 period = allowance.period;
        if (block.timestamp >= timestamp + period) {
            uint256 periods = (block.timestamp - timestamp) / period;
            uint256 topped = balance + periods * allowance.refill;
            balance = topped < allowance.maxRefill ? topped : allowance.maxRefill;
            timestamp += periods * period;
        }
        if (amount > balance) revert RolesStyleAllowanceExceeded(key, amount, balance);
        allowance.balance = uint128(balance - amount);
        allowance.timestamp = uint64(timestamp);
    }

    function _allow(string memory name, uint128 daily) private returns (bytes32 key) {
        key = keccak256(bytes(name));
        allowances[key] = Allowance(daily, daily, 24 hours, daily, uint64(block.timestamp));
    }

    function _scope(address target, bytes4 selector) private pure returns (bytes32) {
        return bytes32(uint256(uint160(target)) | (uint256(uint32(selector)) << 160));
    }
}
