-- Royalty enforcement (ERC721-C style), a campaign's option: its collection names the platform's
-- transfer validator, which lets tokens move between holders only by their owner or through an
-- allowlisted marketplace operator. `royalty_enforcement_version` counts the changes, so each
-- change after deployment queues its own `setTransferValidator` call (its idempotency key).
ALTER TABLE campaigns
    ADD COLUMN royalty_enforcement BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN royalty_enforcement_version INTEGER NOT NULL DEFAULT 0;
