//! Reading a recipients upload (CONTRACT §6): RFC 4180 CSV through the `csv` crate, UTF-8, a
//! header row with a `phone` column and optional `name`, `email`, `company`; every phone
//! normalized to E.164 with [`PhoneNumber`]. A line that cannot be used is reported with its
//! line number and why; a phone seen twice counts once.

use std::collections::HashSet;

use calltrail_core::campaign::Recipient;
use calltrail_core::PhoneNumber;
use serde::Serialize;

use crate::error::ApiError;

/// Longest `name`, `email` or `company` kept.
const MAX_TEXT: usize = 200;

/// A line of the upload that was not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RejectedLine {
    /// Its line number in the file (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an upload holds.
#[derive(Debug, Default, PartialEq)]
pub struct Upload {
    /// Distinct recipients, in file order.
    pub recipients: Vec<Recipient>,
    /// Lines not used.
    pub rejected: Vec<RejectedLine>,
    /// Lines whose phone an earlier line already had.
    pub duplicates: usize,
}

/// Reads an upload; fails only when the file as a whole cannot be read (not UTF-8, no
/// header with a `phone` column).
pub fn parse(body: &[u8]) -> Result<Upload, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::InvalidCsv(format!(
            "the file is not UTF-8 (invalid bytes at offset {})",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ApiError::InvalidCsv(format!("the header row cannot be read: {e}")))?
        .clone();
    let column = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    };
    let phone_column = column(&["phone", "phone_number"]).ok_or_else(|| {
        ApiError::InvalidCsv(
            "the header row has no `phone` column (expected `phone`, and optionally `name`, `email`, `company`)"
                .into(),
        )
    })?;
    let (name, email, company) = (column(&["name"]), column(&["email"]), column(&["company"]));

    let mut upload = Upload::default();
    let mut seen = HashSet::new();
    let mut record = csv::StringRecord::new();
    // Line numbers counted from the bytes (a quoted field may span lines): the line of the
    // byte where each record starts.
    let mut lines = LineCounter::new(text);
    loop {
        let start = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                upload.rejected.push(RejectedLine {
                    line: lines.line_at(start),
                    reason: format!("the line cannot be read as CSV: {e}"),
                });
                continue;
            }
        }
        let line = lines.line_at(record.position().map_or(start, |p| p.byte()));
        if record.iter().all(str::is_empty) {
            continue;
        }
        let raw = record.get(phone_column).unwrap_or("");
        if raw.is_empty() {
            upload.rejected.push(RejectedLine {
                line,
                reason: "the phone is empty".into(),
            });
            continue;
        }
        let phone = match PhoneNumber::parse(raw) {
            Ok(phone) => phone,
            Err(e) => {
                upload.rejected.push(RejectedLine {
                    line,
                    reason: format!("`{}` is not a phone number: {e}", shorten(raw)),
                });
                continue;
            }
        };
        if !seen.insert(phone.as_str().to_owned()) {
            upload.duplicates += 1;
            continue;
        }
        let text = |index: Option<usize>| {
            index
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty() && !v.contains('\0'))
                .map(|v| v.chars().take(MAX_TEXT).collect::<String>())
        };
        upload.recipients.push(Recipient {
            phone_number: phone.as_str().to_owned(),
            name: text(name),
            email: text(email),
            company: text(company),
        });
    }
    Ok(upload)
}

/// The 1-based line of a byte offset, for offsets asked in increasing order (linear overall).
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record starting at `byte`. The reader's positions point at the end of
    /// the previous line (its terminator is read with the next record), so line ends there
    /// are skipped first.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut end = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while self
            .text
            .get(end)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            end += 1;
        }
        if end > self.offset {
            let newlines = self.text[self.offset..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += u64::try_from(newlines).unwrap_or(u64::MAX);
            self.offset = end;
        }
        self.line
    }
}

/// At most 40 characters of a value, for a message.
fn shorten(value: &str) -> String {
    let mut short: String = value.chars().take(40).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbered_phones_normalized_and_duplicates_counted_once() {
        let body = "\u{feff}Name,Phone,Email\r\n\
                    Ana,+1 (415) 555-0101,ana@example.com\r\n\
                    \"Bo, Jr.\",00 44 20 7946 0958,\r\n\
                    Cy,12,\r\n\
                    Ana again,+14155550101,\r\n\
                    ,,\r\n\
                    Dee,,\r\n\
                    \"Zoë \"\"Z\"\"\",+33 1 23 45 67 89,zoe@example.com\r\n";
        let upload = parse(body.as_bytes()).unwrap_or_default();
        let phones: Vec<&str> = upload
            .recipients
            .iter()
            .map(|r| r.phone_number.as_str())
            .collect();
        assert_eq!(phones, ["+14155550101", "+442079460958", "+33123456789"]);
        assert_eq!(upload.recipients[1].name.as_deref(), Some("Bo, Jr."));
        assert_eq!(upload.recipients[2].name.as_deref(), Some("Zoë \"Z\""));
        assert_eq!(upload.duplicates, 1);
        let lines: Vec<u64> = upload.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, [4, 7]);
        assert!(upload.rejected[0].reason.contains("`12`"));
    }

    #[test]
    fn a_file_without_a_phone_column_or_not_utf8_is_refused() {
        let code = |body: &[u8]| parse(body).err().map(|e| e.code());
        assert_eq!(code(b"name,email\nAna,a@x\n"), Some("invalid_csv"));
        assert_eq!(code(b"phone\n+1415\xff5550101\n"), Some("invalid_csv"));
        assert_eq!(code(b""), Some("invalid_csv"));
    }
}
