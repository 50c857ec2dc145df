#!/usr/bin/env bash
# Rebuilds the committed Seaport 1.6 artifacts: contracts/seaport/{Seaport,ConduitController}.json
# (ABI + creation + runtime bytecode, the same subset format as contracts/artifacts/*.json).
#
# Sources: npm seaport-core 1.6.6 (+ seaport-types 1.6.3), compiled by solc 0.8.24 through the solc-js
# shim with the `seaport` profile of contracts/foundry.toml: via-IR, optimizer runs 1000, evm cancun,
# no metadata hash / CBOR (so the output does not depend on paths). About 1.5 minutes on 2 cores.
# Nothing else needs this: forge tests and the Rust side load the committed JSON
# (contracts/artifacts/Seaport.json is a byte-for-byte copy made by export-artifacts.mjs).
#
# Usage (from anywhere):  contracts/scripts/build-seaport.sh
#   then: node contracts/scripts/export-artifacts.mjs   (copies them into contracts/artifacts/)
set -euo pipefail
CONTRACTS="$(cd "$(dirname "$0")/.." && pwd)"
REPO="$(cd "$CONTRACTS/.." && pwd)"
cd "$REPO"
FOUNDRY_PROFILE=seaport FOUNDRY_SOLC="$CONTRACTS/solc-shim/solc" \
  node_modules/.bin/forge build --root "$CONTRACTS" \
  node_modules/seaport-core/src/Seaport.sol node_modules/seaport-core/src/conduit/ConduitController.sol
node "$CONTRACTS/scripts/export-artifacts.mjs" --seaport
