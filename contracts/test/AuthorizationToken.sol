// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title AuthorizationToken
/// @notice Tests only: an ERC-20 that, like USDC v2.2, accepts ERC-1271 contract signatures for
///         EIP-3009 `transferWithAuthorization` and for `permit`. It stands for every token or
///         protocol that moves a contract account's funds on the strength of `isValidSignature`.
contract AuthorizationToken is ERC20, EIP712 {
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    mapping(address => mapping(bytes32 => bool)) public authorizationState;
    mapping(address => uint256) public nonces;

    error AuthorizationTokenInvalidSignature(address signer, bytes32 digest);
    error AuthorizationTokenUsedOrExpired(address signer, bytes32 nonce);

    constructor() ERC20("Authorization USD", "aUSD") EIP712("Authorization USD", "2") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    function transferWithAuthorizationDigest(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce))
        );
    }

    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external {
        if (block.timestamp <= validAfter || block.timestamp >= validBefore || authorizationState[from][nonce]) {
            revert AuthorizationTokenUsedOrExpired(from, nonce);
        }
        bytes32 digest = transferWithAuthorizationDigest(from, to, value, validAfter, validBefore, nonce);
        if (!SignatureChecker.isValidSignatureNow(from, digest, signature)) {
            revert AuthorizationTokenInvalidSignature(from, digest);
        }
        authorizationState[from][nonce] = true;
        _transfer(from, to, value);
    }

    function permitDigest(address owner, address spender, uint256 value, uint256 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, nonces[owner], deadline)));
    }

    function permit(address owner, address spender, uint256 value, uint256 deadline, bytes calldata signature)
        external
    {
        bytes32 digest = permitDigest(owner, spender, value, deadline);
        if (block.timestamp > deadline || !SignatureChecker.isValidSignatureNow(owner, digest, signature)) {
            revert AuthorizationTokenInvalidSignature(owner, digest);
        }
        nonces[owner] += 1;
        _approve(owner, spender, value);
    }
}
