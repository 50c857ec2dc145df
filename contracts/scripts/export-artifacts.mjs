#!/usr/bin/env node
// Writes the compiled-contract artifacts the Rust side loads with alloy `sol!("contracts/artifacts/X.json")`.
//
// Each contracts/artifacts/<Name>.json is exactly the forge-artifact subset
//   { "abi": [...], "bytecode": { "object": "0x..." }, "deployedBytecode": { "object": "0x..." } }
// pretty-printed (2 spaces, trailing newline). Bytecode is reproducible across clone locations because
// foundry.toml sets bytecode_hash = "none" and cbor_metadata = false.
//
// Usage (from anywhere; no npm dependencies):
//   node contracts/scripts/export-artifacts.mjs            forge build, then (re)write contracts/artifacts/
//   node contracts/scripts/export-artifacts.mjs --check    forge build, then exit 1 listing every artifact that
//                                                          differs from the fresh build (nothing is written)
//   node contracts/scripts/export-artifacts.mjs --seaport  (used by scripts/build-seaport.sh) extract Seaport and
//                                                          ConduitController from out-seaport/ into contracts/seaport/
// Add --no-build to skip the `forge build` step (use whatever is in out/).
//
// Seaport.json and ConduitController.json are not compiled here (via-IR takes minutes): they are copied
// byte for byte from the committed contracts/seaport/*.json, which scripts/build-seaport.sh reproduces.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CONTRACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPO = path.resolve(CONTRACTS, '..');
const OUT = path.join(CONTRACTS, 'out');
const OUT_SEAPORT = path.join(CONTRACTS, 'out-seaport');
const ARTIFACTS = path.join(CONTRACTS, 'artifacts');
const SEAPORT = path.join(CONTRACTS, 'seaport');

/** Contracts compiled by the default profile: name -> source file (under src/). */
const EXPORTED = {
  CampaignNFT: 'CampaignNFT.sol',
  CampaignFactory: 'CampaignFactory.sol',
  Checkout: 'Checkout.sol',
  RewardVault: 'RewardVault.sol',
  TestStablecoin: 'TestStablecoin.sol',
  BaselineERC721: 'BaselineERC721.sol',
  TestSmartWallet: 'TestSmartWallet.sol',
  OperatorAllowlistValidator: 'OperatorAllowlistValidator.sol',
};
/** Copied untouched from contracts/seaport/. */
const SEAPORT_CONTRACTS = { Seaport: 'Seaport.sol', ConduitController: 'ConduitController.sol' };

const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--check', '--seaport', '--no-build'].includes(a)) {
    console.error(`export-artifacts: unknown argument ${a}`);
    process.exit(2);
  }
}

function render(obj) {
  return `${JSON.stringify(obj, null, 2)}\n`;
}

function subset(file) {
  let art;
  try {
    art = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${path.relative(REPO, file)} (did forge build run?): ${e.message}`);
  }
  const obj = (x) => (typeof x === 'string' ? x : x && x.object);
  const bytecode = obj(art.bytecode);
  const deployed = obj(art.deployedBytecode);
  if (!Array.isArray(art.abi) || !/^0x[0-9a-f]+$/.test(bytecode) || !/^0x[0-9a-f]*$/.test(deployed)) {
    throw new Error(`${path.relative(REPO, file)}: missing abi/bytecode or unlinked library placeholders`);
  }
  return render({ abi: art.abi, bytecode: { object: bytecode }, deployedBytecode: { object: deployed } });
}

function forgeBuild() {
  const forge = path.join(REPO, 'node_modules', '.bin', 'forge');
  const env = { ...process.env, FOUNDRY_SOLC: path.join(CONTRACTS, 'solc-shim', 'solc') };
  delete env.FOUNDRY_PROFILE;
  execFileSync(forge, ['build', '--root', CONTRACTS], { cwd: REPO, env, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** name -> expected file content */
function expected() {
  const files = {};
  for (const [name, src] of Object.entries(EXPORTED)) {
    files[`${name}.json`] = subset(path.join(OUT, src, `${name}.json`));
  }
  for (const name of Object.keys(SEAPORT_CONTRACTS)) {
    const committed = path.join(SEAPORT, `${name}.json`);
    if (!fs.existsSync(committed)) throw new Error(`missing ${path.relative(REPO, committed)}: run contracts/scripts/build-seaport.sh`);
    files[`${name}.json`] = fs.readFileSync(committed, 'utf8');
  }
  return files;
}

try {
  if (args.has('--seaport')) {
    fs.mkdirSync(SEAPORT, { recursive: true });
    for (const [name, src] of Object.entries(SEAPORT_CONTRACTS)) {
      const dest = path.join(SEAPORT, `${name}.json`);
      fs.writeFileSync(dest, subset(path.join(OUT_SEAPORT, src, `${name}.json`)));
      console.log(`wrote ${path.relative(REPO, dest)}`);
    }
    process.exit(0);
  }

  if (!args.has('--no-build')) forgeBuild();
  const want = expected();

  if (args.has('--check')) {
    const bad = [];
    for (const [file, content] of Object.entries(want)) {
      const p = path.join(ARTIFACTS, file);
      if (!fs.existsSync(p)) bad.push(`${path.relative(REPO, p)} (missing)`);
      else if (fs.readFileSync(p, 'utf8') !== content) bad.push(`${path.relative(REPO, p)} (differs from a fresh build)`);
    }
    if (fs.existsSync(ARTIFACTS)) {
      for (const f of fs.readdirSync(ARTIFACTS)) {
        if (!(f in want)) bad.push(`${path.relative(REPO, path.join(ARTIFACTS, f))} (not produced by the export)`);
      }
    }
    if (bad.length) {
      console.error('export-artifacts --check: stale artifacts (run `node contracts/scripts/export-artifacts.mjs`):');
      for (const b of bad) console.error(`  ${b}`);
      process.exit(1);
    }
    console.log(`export-artifacts --check: ${Object.keys(want).length} artifacts up to date`);
    process.exit(0);
  }

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // artifacts/ belongs to this script: drop files it no longer produces
  for (const f of fs.readdirSync(ARTIFACTS)) {
    if (!(f in want)) {
      fs.rmSync(path.join(ARTIFACTS, f), { recursive: true });
      console.log(`removed ${path.relative(REPO, path.join(ARTIFACTS, f))}`);
    }
  }
  for (const [file, content] of Object.entries(want)) {
    const p = path.join(ARTIFACTS, file);
    const old = fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : null;
    if (old !== content) {
      fs.writeFileSync(p, content);
      console.log(`wrote ${path.relative(REPO, p)}`);
    }
  }
  console.log(`export-artifacts: ${Object.keys(want).length} artifacts in ${path.relative(REPO, ARTIFACTS)}/`);
} catch (e) {
  console.error(`export-artifacts: ${e.message}`);
  process.exit(1);
}
