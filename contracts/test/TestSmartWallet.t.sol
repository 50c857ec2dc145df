// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Test} from "forge-std/Test.sol";
import {TestSmartWallet} from "../src/TestSmartWallet.sol";

contract TestSmartWalletTest is Test {
    uint256 internal constant OWNER_KEY = 0xA11CE;
    TestSmartWallet internal wallet;

    function setUp() public {
        wallet = new TestSmartWallet(vm.addr(OWNER_KEY));
    }

    function test_acceptsTheOwnersSignature() public view {
        bytes32 hash = keccak256("sign in");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, hash);
        assertEq(wallet.isValidSignature(hash, abi.encodePacked(r, s, v)), bytes4(0x1626ba7e));
    }

    function test_refusesAnotherKeyAnotherHashAndGarbage() public view {
        bytes32 hash = keccak256("sign in");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xB0B, hash);
        assertEq(wallet.isValidSignature(hash, abi.encodePacked(r, s, v)), bytes4(0));
        (v, r, s) = vm.sign(OWNER_KEY, keccak256("something else"));
        assertEq(wallet.isValidSignature(hash, abi.encodePacked(r, s, v)), bytes4(0));
        assertEq(wallet.isValidSignature(hash, hex"deadbeef"), bytes4(0));
    }
}
