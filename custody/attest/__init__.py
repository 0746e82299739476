"""On-chain attestation badges for custody steps, in the Ethereum Attestation Service's format."""
