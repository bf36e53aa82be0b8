//! Calendar dates as the library takes them: `YYYY-MM-DD` (ISO 8601), parsed by the `time`
//! crate. A leaf module: policy (ignore expiry) and rules (the Go support table) both use it.

/// A calendar date written `YYYY-MM-DD`, as ignores expire and the auditor's `today` is given.
/// Such dates compare correctly as strings.
pub(crate) fn parse(d: &str) -> Option<time::Date> {
    time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
}
