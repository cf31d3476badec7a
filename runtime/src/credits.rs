//! Credit amounts as people read them. The ledger and the API count micro-credits.

/// Micro-credits in one credit.
pub const MICROS_PER_CREDIT: u64 = 1_000_000;

/// Micro-credits as credits with six decimals: 12_500_000 -> "12.500000".
pub fn format_credits(micros: u64) -> String {
    format!(
        "{}.{:06}",
        micros / MICROS_PER_CREDIT,
        micros % MICROS_PER_CREDIT
    )
}
