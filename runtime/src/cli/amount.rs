//! Credit amounts as people type and read them: "12.5" credits is 12,500,000 micro-credits.
//! Integers only, never floats: a decimal string is split at the point and scaled exactly.

use super::error::ClientError;
pub use crate::credits::{MICROS_PER_CREDIT, format_credits};
/// Decimal places of a credit amount: one micro-credit is the smallest unit.
const CREDIT_DECIMALS: usize = 6;
const _: () = assert!(10u64.pow(CREDIT_DECIMALS as u32) == MICROS_PER_CREDIT);

/// Parses an amount of credits ("100", "12.5", "0.000001") into micro-credits, exactly.
/// Rejects signs, exponents, empty parts and more than six decimals.
pub fn parse_credits(field: &'static str, text: &str) -> Result<u64, ClientError> {
    let bad = |why: &str| ClientError::BadInput {
        field,
        value: text.to_owned(),
        why: why.to_owned(),
    };
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(whole) || (text.contains('.') && !digits_only(fraction)) {
        return Err(bad("not a number of credits (for example 100 or 12.5)"));
    }
    if fraction.len() > CREDIT_DECIMALS {
        return Err(bad("more than 6 decimals (1 micro-credit is 0.000001)"));
    }
    let too_large = || bad("too large");
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    // Pad the fraction to six digits: "5" -> 500000 micro-credits.
    let scale = 10u64.pow((CREDIT_DECIMALS - fraction.len()) as u32);
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u64>().map_err(|_| too_large())? * scale
    };
    whole
        .checked_mul(MICROS_PER_CREDIT)
        .and_then(|micros| micros.checked_add(fraction))
        .ok_or_else(too_large)
}

/// Parses an amount that is already in micro-credits (`--micro`).
pub fn parse_micros(field: &'static str, text: &str) -> Result<u64, ClientError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ClientError::BadInput {
            field,
            value: text.to_owned(),
            why: "not a whole number of micro-credits".to_owned(),
        });
    }
    text.parse().map_err(|_| ClientError::BadInput {
        field,
        value: text.to_owned(),
        why: "too large".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_micro_credits_with_six_decimals() {
        assert_eq!(format_credits(0), "0.000000");
        assert_eq!(format_credits(1), "0.000001");
        assert_eq!(format_credits(12_500_000), "12.500000");
        assert_eq!(format_credits(u64::MAX), "18446744073709.551615");
    }

    #[test]
    fn parses_credits_exactly() {
        assert_eq!(parse_credits("amount", "100").unwrap(), 100_000_000);
        assert_eq!(parse_credits("amount", "12.5").unwrap(), 12_500_000);
        assert_eq!(parse_credits("amount", "0.000001").unwrap(), 1);
        assert_eq!(parse_credits("amount", "0.1").unwrap(), 100_000);
        assert_eq!(parse_credits("amount", "007.010").unwrap(), 7_010_000);
        assert_eq!(
            parse_credits("amount", "18446744073709.551615").unwrap(),
            u64::MAX
        );
    }

    #[test]
    fn rejects_malformed_credits_naming_field_and_value() {
        for text in [
            "", ".", "1.", ".5", "-1", "+1", "1e6", "1,5", " 1", "1.2.3", "abc", "½",
        ] {
            let err = parse_credits("amount", text).unwrap_err().to_string();
            assert!(err.contains("amount"), "{text:?}: {err}");
        }
        let err = parse_credits("amount", "1.0000001")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 6 decimals"), "{err}");
        assert!(err.contains("1.0000001"), "{err}");
    }

    #[test]
    fn rejects_credits_that_overflow() {
        let err = parse_credits("amount", "18446744073709.551616").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert!(parse_credits("amount", "99999999999999999999").is_err());
    }

    #[test]
    fn round_trips_through_format() {
        for micros in [0, 1, 999_999, 1_000_000, 12_345_678_901, u64::MAX] {
            assert_eq!(
                parse_credits("amount", &format_credits(micros)).unwrap(),
                micros
            );
        }
    }

    #[test]
    fn parses_micro_credits_as_whole_numbers() {
        assert_eq!(parse_micros("amount", "2500000").unwrap(), 2_500_000);
        assert!(parse_micros("amount", "2.5").is_err());
        assert!(parse_micros("amount", "").is_err());
        assert!(parse_micros("amount", "-3").is_err());
        assert!(parse_micros("amount", "18446744073709551616").is_err());
    }
}
