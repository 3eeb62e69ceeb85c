use permetrix_storage::Timestamp;

/// The UTC calendar month of `t` as `yyyy * 100 + mm` (spend caps reset monthly).
pub fn month_of(t: Timestamp) -> u32 {
    let date = time::OffsetDateTime::from_unix_timestamp(t.secs())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = u32::try_from(date.year()).unwrap_or(0);
    year * 100 + u32::from(u8::from(date.month()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_at_utc_midnight() {
        // 2026-11-30T23:59:59Z and 2026-12-01T00:00:00Z
        assert_eq!(month_of(Timestamp::from_secs(1_796_083_199)), 202_611);
        assert_eq!(month_of(Timestamp::from_secs(1_796_083_200)), 202_612);
    }
}
