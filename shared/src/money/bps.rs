//! Basis points: hundredths of a percent, 0..=10,000.

use serde::{Deserialize, Serialize};

use super::{MoneyError, Result};

/// A share in basis points (1 bps = 0.01 %), never above 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u16")]
pub struct Bps(u16);

impl Bps {
    /// 100 %.
    pub const MAX: Bps = Bps(10_000);
    pub const ZERO: Bps = Bps(0);
    /// The denominator of every basis-point division.
    pub const DENOMINATOR: u16 = 10_000;

    pub fn new(value: u32) -> Result<Self> {
        u16::try_from(value).ok().filter(|v| *v <= Self::DENOMINATOR).map(Bps).ok_or(MoneyError::BpsOutOfRange(value))
    }

    pub fn get(self) -> u16 {
        self.0
    }

    /// What is left of 100 % after this share.
    pub fn complement(self) -> Bps {
        Bps(Self::DENOMINATOR - self.0)
    }
}

impl TryFrom<u32> for Bps {
    type Error = MoneyError;
    fn try_from(value: u32) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Bps> for u16 {
    fn from(value: Bps) -> Self {
        value.0
    }
}

impl std::fmt::Display for Bps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bps", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bps_accepts_zero_to_ten_thousand_only() {
        assert_eq!(Bps::new(0).unwrap(), Bps::ZERO);
        assert_eq!(Bps::new(10_000).unwrap(), Bps::MAX);
        assert_eq!(Bps::new(10_001), Err(MoneyError::BpsOutOfRange(10_001)));
        assert_eq!(Bps::new(70_000), Err(MoneyError::BpsOutOfRange(70_000)));
        assert_eq!(Bps::new(250).unwrap().complement().get(), 9_750);
    }

    #[test]
    fn bps_deserialization_validates_the_range() {
        assert_eq!(serde_json::from_str::<Bps>("500").unwrap().get(), 500);
        assert!(serde_json::from_str::<Bps>("10001").is_err());
        assert!(serde_json::from_str::<Bps>("-1").is_err());
    }
}
