//! JSON output: one report is one object; several (images or platforms) are an array.

use std::io;

use super::{Format, Report};

/// The JSON format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json {
    /// Indent for humans.
    pub pretty: bool,
}

impl Format for Json {
    fn id(&self) -> &'static str {
        "json"
    }

    fn write(&self, reports: &[Report], out: &mut dyn io::Write) -> io::Result<()> {
        let res = match (reports, self.pretty) {
            ([one], true) => serde_json::to_writer_pretty(&mut *out, one),
            ([one], false) => serde_json::to_writer(&mut *out, one),
            (many, true) => serde_json::to_writer_pretty(&mut *out, many),
            (many, false) => serde_json::to_writer(&mut *out, many),
        };
        res.map_err(io::Error::other)?;
        out.write_all(b"\n")
    }
}
