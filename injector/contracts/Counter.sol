// SPDX-License-Identifier: Apache-2.0
// The execution target iotex-injector deploys at start (one per endpoint). Each call touches storage and emits a
// log, so an execution costs what a typical contract call does and its inclusion is visible in receipts.
// Compiled with solc 0.8.26 (npm solc-js; optimizer 200 runs; evmVersion paris, so no PUSH0) by compile.js.
pragma solidity 0.8.26;

contract Counter {
    event Bumped(address indexed from, uint256 by, uint256 total);

    uint256 public total;
    mapping(address => uint256) public counts;

    function bump(uint256 by) external {
        total += 1;
        counts[msg.sender] += by;
        emit Bumped(msg.sender, by, total);
    }
}
