-- The royalty report's holders' shares are read per brand and period.
CREATE INDEX royalty_accruals_brand_created_idx ON royalty_accruals (brand_id, created_at);
