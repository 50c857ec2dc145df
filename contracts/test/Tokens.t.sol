// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Test} from "forge-std/Test.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {BaselineERC721} from "../src/BaselineERC721.sol";

contract TestStablecoinTest is Test {
    TestStablecoin internal usd;
    address internal owner = makeAddr("owner");

    function setUp() public {
        usd = new TestStablecoin(owner);
    }

    function test_metadata() public view {
        assertEq(usd.name(), "Test USD");
        assertEq(usd.symbol(), "TUSD");
        assertEq(usd.decimals(), 6);
        assertEq(usd.owner(), owner);
        assertEq(usd.totalSupply(), 0);
    }

    function test_anyoneCanMint() public {
        address anyone = makeAddr("anyone");
        vm.prank(anyone);
        usd.mint(anyone, 12.5e6);
        assertEq(usd.balanceOf(anyone), 12.5e6);
        assertEq(usd.totalSupply(), 12.5e6);
    }

    function test_permit() public {
        uint256 pk = 0xA11CE;
        address holder = vm.addr(pk);
        address spender = makeAddr("spender");
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                holder,
                spender,
                5e6,
                0,
                block.timestamp
            )
        );
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", usd.DOMAIN_SEPARATOR(), structHash)));
        usd.permit(holder, spender, 5e6, block.timestamp, v, r, s);
        assertEq(usd.allowance(holder, spender), 5e6);
        assertEq(usd.nonces(holder), 1);
        bytes32 expectedDomain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Test USD"),
                keccak256("1"),
                block.chainid,
                address(usd)
            )
        );
        assertEq(usd.DOMAIN_SEPARATOR(), expectedDomain);
    }
}

contract BaselineERC721Test is Test {
    function test_mintsSequentialIds() public {
        BaselineERC721 base = new BaselineERC721();
        address a = makeAddr("a");
        assertEq(base.mint(a), 1);
        assertEq(base.mint(a), 2);
        assertEq(base.ownerOf(2), a);
        assertEq(base.balanceOf(a), 2);
        assertEq(base.totalMinted(), 2);
        assertEq(base.name(), "Baseline");
    }
}
