//! Cron schedules (`triggers.schedule`): five fields, parsed by croner.

/// The fields of a five-field expression with their ranges.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

/// Parse a five-field cron expression (`minute hour day-of-month month day-of-week`).
///
/// # Errors
/// A message naming the field at fault.
pub fn parse(expr: &str) -> Result<croner::Cron, String> {
    let trimmed = expr.trim();
    if !trimmed.starts_with('@') {
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected 5 fields, found {}", fields.len()));
        }
        for (field, (name, lo, hi)) in fields.iter().zip(FIELDS) {
            for part in field.split(',') {
                let range = part.split('/').next().unwrap_or("");
                for n in range.split('-').filter_map(|n| n.parse::<u32>().ok()) {
                    if n < lo || n > hi {
                        return Err(format!("{name} `{n}` is out of range {lo}–{hi}"));
                    }
                }
            }
        }
    }
    croner::parser::CronParser::new()
        .parse(trimmed)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn five_fields_only() {
        assert!(super::parse("0 6 * * *").is_ok());
        assert!(super::parse("0 3 * * 1").is_ok());
        assert!(super::parse("*/15 8-18 * * 1-5").is_ok());
        assert!(super::parse("@daily").is_ok());
        assert!(super::parse("0 6 * *").is_err());
        assert!(super::parse("0 0 6 * * *").is_err());
        assert_eq!(
            super::parse("0 25 * * *").unwrap_err(),
            "hour `25` is out of range 0–23"
        );
        assert!(
            super::parse("61 6 * * *")
                .unwrap_err()
                .starts_with("minute")
        );
        assert!(super::parse("0 6 * 13 *").unwrap_err().starts_with("month"));
    }
}
