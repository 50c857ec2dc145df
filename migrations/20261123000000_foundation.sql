-- Foundation: conventions every later migration follows.
--
-- * Money is integer: fiat in minor units (BIGINT) with a CHAR(3) ISO currency; token amounts
--   in base units as NUMERIC(78,0), which holds every uint256.
-- * Timestamps are TIMESTAMPTZ.

CREATE DOMAIN uint256 AS NUMERIC(78, 0)
    CHECK (VALUE >= 0 AND VALUE <= 115792089237316195423570985008687907853269984665640564039457584007913129639935);

CREATE DOMAIN currency_code AS CHAR(3)
    CHECK (VALUE ~ '^[A-Z]{3}$');
