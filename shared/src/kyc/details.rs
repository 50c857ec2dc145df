//! A customer's identity details: what they send ([`DetailsInput`]) and what the platform
//! keeps after checking it ([`Details`]).

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr};
use utoipa::ToSchema;

use super::{Error, Result};
use crate::http::FieldError;

/// The identity document the customer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumString, IntoStaticStr, Serialize, Deserialize, ToSchema)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DocumentType {
    Passport,
    IdCard,
    DrivingLicence,
}

impl DocumentType {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The images a submission with this document needs before it can be submitted.
    pub fn required_images(self) -> &'static [super::DocumentKind] {
        use super::DocumentKind::{Back, Front};
        match self {
            DocumentType::Passport => &[Front],
            DocumentType::IdCard | DocumentType::DrivingLicence => &[Front, Back],
        }
    }
}

/// Identity details as sent by the customer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetailsInput {
    /// Full name as printed on the document.
    pub legal_name: String,
    /// `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub date_of_birth: NaiveDate,
    /// ISO 3166-1 alpha-2 code of the issuing country, e.g. `DE`.
    pub country: String,
    pub document_type: DocumentType,
    pub document_number: String,
}

/// An officially assigned ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Country([u8; 2]);

/// Every officially assigned ISO 3166-1 alpha-2 code (249), sorted.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ \
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI \
FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT \
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ \
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

impl Country {
    /// Accepts any case (`de`, `DE`); refuses codes ISO has not assigned.
    pub fn parse(code: &str) -> Option<Self> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes: [u8; 2] = upper.as_bytes().try_into().ok()?;
        ISO_3166_ALPHA_2.split(' ').any(|c| c == upper).then_some(Country(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Always two ASCII letters (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

/// Checked identity details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    legal_name: String,
    date_of_birth: NaiveDate,
    country: Country,
    document_type: DocumentType,
    document_number: String,
}

impl Details {
    pub fn legal_name(&self) -> &str {
        &self.legal_name
    }
    pub fn date_of_birth(&self) -> NaiveDate {
        self.date_of_birth
    }
    pub fn country(&self) -> &Country {
        &self.country
    }
    pub fn document_type(&self) -> DocumentType {
        self.document_type
    }
    pub fn document_number(&self) -> &str {
        &self.document_number
    }
}

/// The earliest date of birth accepted.
fn earliest_birth() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

impl TryFrom<DetailsInput> for Details {
    type Error = Error;

    /// Every field is checked, and every problem reported at once.
    fn try_from(input: DetailsInput) -> Result<Self> {
        let mut errors = Vec::new();
        let legal_name = input.legal_name.split_whitespace().collect::<Vec<_>>().join(" ");
        match legal_name.chars().count() {
            0 => errors.push(FieldError::new("legal_name", "must not be empty")),
            n if n > 200 => errors.push(FieldError::new("legal_name", "must be at most 200 characters")),
            _ if legal_name.chars().any(char::is_control) => {
                errors.push(FieldError::new("legal_name", "must not contain control characters"));
            }
            _ => {}
        }
        let today = Utc::now().date_naive();
        if input.date_of_birth >= today {
            errors.push(FieldError::new("date_of_birth", "must be in the past"));
        } else if input.date_of_birth < earliest_birth() {
            errors.push(FieldError::new("date_of_birth", "must be on or after 1900-01-01"));
        }
        let country = Country::parse(&input.country);
        if country.is_none() {
            errors.push(FieldError::new("country", "must be an ISO 3166-1 alpha-2 code, e.g. DE"));
        }
        let document_number = input.document_number.trim().to_uppercase();
        if document_number.is_empty() || document_number.chars().count() > 50 {
            errors.push(FieldError::new("document_number", "must be 1 to 50 characters"));
        } else if !document_number.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ') {
            errors.push(FieldError::new("document_number", "may contain only letters, digits, spaces and dashes"));
        }
        match country {
            Some(country) if errors.is_empty() => Ok(Details {
                legal_name,
                date_of_birth: input.date_of_birth,
                country,
                document_type: input.document_type,
                document_number,
            }),
            _ => Err(Error::Invalid(errors)),
        }
    }
}

impl Details {
    /// Rebuilds details read back from the database (checked when they were written).
    pub(crate) fn from_row(
        legal_name: String,
        date_of_birth: NaiveDate,
        country: &str,
        document_type: &str,
        document_number: String,
    ) -> Result<Self> {
        let corrupt = |what: &str| Error::Internal(format!("kyc_submissions holds an invalid {what}"));
        Ok(Details {
            legal_name,
            date_of_birth,
            country: Country::parse(country).ok_or_else(|| corrupt("country"))?,
            document_type: document_type.parse().map_err(|_| corrupt("document type"))?,
            document_number,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> DetailsInput {
        DetailsInput {
            legal_name: "  Ada   Lovelace ".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1990, 12, 10).unwrap(),
            country: "gb".into(),
            document_type: DocumentType::Passport,
            document_number: " ab-123 ".into(),
        }
    }

    #[test]
    fn details_are_normalised() {
        let details = Details::try_from(input()).unwrap();
        assert_eq!(details.legal_name(), "Ada Lovelace");
        assert_eq!(details.country().as_str(), "GB");
        assert_eq!(details.document_number(), "AB-123");
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let bad = DetailsInput {
            legal_name: " ".into(),
            date_of_birth: Utc::now().date_naive(),
            country: "XX".into(),
            document_number: "12;DROP".into(),
            ..input()
        };
        let Err(Error::Invalid(errors)) = Details::try_from(bad) else { panic!("accepted") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["legal_name", "date_of_birth", "country", "document_number"]);
    }

    #[test]
    fn the_country_list_is_the_249_assigned_codes_sorted() {
        let codes: Vec<&str> = ISO_3166_ALPHA_2.split(' ').collect();
        assert_eq!(codes.len(), 249);
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert!(codes.iter().all(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase())));
        assert!(Country::parse("UK").is_none(), "UK is reserved, not assigned");
    }
}
