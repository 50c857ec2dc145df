#!/usr/bin/env bash
# Real transaction gas (receipt gasUsed: 21000 intrinsic + calldata + execution) of the
# gas-relevant calls, measured on a throwaway anvil. Usage (from the repo root):
#   contracts/scripts/gas-anvil.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PORT="${GAS_ANVIL_PORT:-18545}"
node_modules/.bin/anvil --port "$PORT" --silent &
ANVIL_PID=$!
trap 'kill "$ANVIL_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  node -e "fetch('http://127.0.0.1:$PORT',{method:'POST',headers:{'content-type':'application/json'},body:'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_chainId\",\"params\":[]}'}).then(()=>process.exit(0),()=>process.exit(1))" && break
  sleep 0.2
done
BCAST="$(mktemp -d)"
FOUNDRY_BROADCAST="$BCAST" node_modules/.bin/forge script --root contracts contracts/script/GasProbe.s.sol:GasProbe \
  --rpc-url "http://127.0.0.1:$PORT" --broadcast --slow --skip-simulation \
  >/dev/null 2>"$BCAST/err" || { cat "$BCAST/err"; exit 1; } 
node - "$BCAST" <<'JS'
const fs = require('fs'), path = require('path');
const dir = process.argv[2];
const find = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? find(path.join(d, e.name)) : e.name === 'run-latest.json' ? [path.join(d, e.name)] : []);
const run = JSON.parse(fs.readFileSync(find(dir)[0], 'utf8'));
run.transactions.forEach((tx, i) => {
  const r = run.receipts[i];
  const what = tx.transactionType === 'CREATE' ? `create ${tx.contractName}` : `${tx.contractName ?? ''}.${tx.function ?? ''}`;
  console.log(String(parseInt(r.gasUsed, 16)).padStart(9), ' ', what, (tx.arguments ?? []).join(' ').slice(0, 60));
});
JS
rm -rf "$BCAST"
