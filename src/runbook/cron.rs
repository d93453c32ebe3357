//! Cron schedules (`triggers.schedule`): five fields, parsed by croner.

/// Parse a five-field cron expression (`minute hour day-of-month month day-of-week`).
///
/// # Errors
/// A message when it is not one.
pub fn parse(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 && !expr.trim_start().starts_with('@') {
        return Err(format!("expected 5 fields, found {fields}"));
    }
    croner::parser::CronParser::new()
        .parse(expr.trim())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn five_fields_only() {
        assert!(super::parse("0 6 * * *").is_ok());
        assert!(super::parse("0 3 * * 1").is_ok());
        assert!(super::parse("@daily").is_ok());
        assert!(super::parse("0 6 * *").is_err());
        assert!(super::parse("61 6 * * *").is_err());
        assert!(super::parse("0 0 6 * * *").is_err());
    }
}
