// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;
import {Test} from "forge-std/Test.sol";
import {RewardVault} from "../src/RewardVault.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
contract ScratchGas is Test {
    RewardVault vault; TestStablecoin usd; uint256 pk = 0xA11CE;
    function setUp() public {
        usd = new TestStablecoin(address(this));
        vault = new RewardVault(address(this), vm.addr(pk), address(this));
        vault.setCampaignAdmin(1, address(this));
        usd.mint(address(this), 1e15); usd.approve(address(vault), 1e15); vault.fund(1, address(usd), 1e14);
        _redeem(0, address(0x1234));
    }
    function _redeem(uint256 id, address to) internal {
        RewardVault.Voucher memory v = RewardVault.Voucher(id, 1, 42, to, address(usd), 25_000_000, 2_000_000_000);
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(pk, vault.hashVoucher(v));
        vault.redeem(v, abi.encodePacked(r, s, sv));
    }
    function test_redeem() public { _redeem(1, address(0x5678)); }
}
