// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Test} from "forge-std/Test.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ping} from "../src/Ping.sol";

/// Minimal OpenZeppelin ERC721, to prove the remappings and measure an OZ build.
contract PingNFT is ERC721 {
    constructor() ERC721("Ping", "PING") {}

    function mint(address to, uint256 id) external {
        _mint(to, id);
    }
}

contract PingTest is Test {
    event Pinged(address indexed from, uint256 count, bytes32 note);

    Ping internal ping;

    function setUp() public {
        ping = new Ping();
    }

    function test_PingCountsAndEmits() public {
        address alice = makeAddr("alice");
        vm.expectEmit(true, false, false, true, address(ping));
        emit Pinged(alice, 1, "hello");
        vm.prank(alice);
        assertEq(ping.ping("hello"), 1);
        assertEq(ping.pings(), 1);
    }

    function testFuzz_PingCount(uint8 n) public {
        for (uint256 i = 0; i < n; i++) {
            ping.ping(bytes32(i));
        }
        assertEq(ping.pings(), n);
    }

    function test_OpenZeppelinERC721Mints() public {
        PingNFT nft = new PingNFT();
        address bob = makeAddr("bob");
        nft.mint(bob, 7);
        assertEq(nft.ownerOf(7), bob);
        assertEq(nft.balanceOf(bob), 1);
        vm.expectRevert();
        nft.mint(bob, 7);
    }
}
