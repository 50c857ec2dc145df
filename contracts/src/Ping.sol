// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

/// @notice Toolchain smoke test: a counter that emits an event on every ping.
contract Ping {
    uint256 public pings;

    event Pinged(address indexed from, uint256 count, bytes32 note);

    function ping(bytes32 note) external returns (uint256 count) {
        count = ++pings;
        emit Pinged(msg.sender, count, note);
    }
}
