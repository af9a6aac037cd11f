// Recompiles Counter.sol: `npm install --no-save solc@0.8.26 && node compile.js Counter.sol .` (writes Counter.bin, Counter.abi).
const solc = require('solc'); const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
const input = { language: 'Solidity', sources: { 'Counter.sol': { content: src } },
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } } };
const out = JSON.parse(solc.compile(JSON.stringify(input)));
if (out.errors && out.errors.some(e => e.severity === 'error')) { console.error(out.errors); process.exit(1); }
const c = out.contracts['Counter.sol'].Counter;
fs.writeFileSync(process.argv[3] + '/Counter.bin', c.evm.bytecode.object + '\n');
fs.writeFileSync(process.argv[3] + '/Counter.abi', JSON.stringify(c.abi) + '\n');
