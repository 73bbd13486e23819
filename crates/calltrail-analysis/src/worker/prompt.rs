//! Prompt trimming: what of a contact's transcripts fits in one request.

use calltrail_core::AnalysisInput;

/// Earlier calls sent with a complete analysis, besides the current one.
pub const MAX_PREVIOUS_CALLS: usize =
    calltrail_core::analysis::MAX_TRANSCRIPTS_PER_COMPLETE_ANALYSIS - 1;

/// Keeps the transcripts within `max_chars`: the oldest previous calls go first; a current
/// transcript longer than the limit keeps its beginning and its end.
pub fn fit_prompt(input: &mut AnalysisInput, max_chars: usize) {
    let skip = input.previous.len().saturating_sub(MAX_PREVIOUS_CALLS);
    input.previous.drain(..skip);
    let chars = |s: &str| s.chars().count();
    let mut total = chars(&input.transcript)
        + input
            .previous
            .iter()
            .map(|p| chars(&p.transcript))
            .sum::<usize>();
    while total > max_chars && !input.previous.is_empty() {
        let dropped = input.previous.remove(0);
        total -= chars(&dropped.transcript);
    }
    if total > max_chars {
        input.transcript = shorten_middle(&input.transcript, max_chars);
    }
}

/// The first and last halves of `max_chars` characters of `s`, joined by a marker.
fn shorten_middle(s: &str, max_chars: usize) -> String {
    const MARKER: &str = "\n[… transcript shortened …]\n";
    let half = max_chars.saturating_sub(MARKER.chars().count()) / 2;
    let head: String = s.chars().take(half).collect();
    let total = s.chars().count();
    let tail: String = s.chars().skip(total.saturating_sub(half)).collect();
    format!("{head}{MARKER}{tail}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use calltrail_core::{AnalysisKind, PreviousCall};

    fn previous(id: usize, len: usize) -> PreviousCall {
        PreviousCall {
            execution_id: id.to_string(),
            transcript: "x".repeat(len),
            call_date: None,
            call_duration_seconds: None,
            analysis: None,
        }
    }

    #[test]
    fn the_oldest_calls_go_first_when_the_prompt_is_too_long() {
        let mut input = AnalysisInput::individual("e", "+14155550132", &"y".repeat(100));
        input.kind = AnalysisKind::Complete;
        input.previous = (0..12).map(|i| previous(i, 100)).collect();
        fit_prompt(&mut input, 10_000);
        assert_eq!(input.previous.len(), 9, "at most 10 transcripts");
        assert_eq!(input.previous[0].execution_id, "3");
        fit_prompt(&mut input, 450);
        let ids: Vec<&str> = input
            .previous
            .iter()
            .map(|p| p.execution_id.as_str())
            .collect();
        assert_eq!(ids, ["9", "10", "11"]);
        assert_eq!(input.transcript.len(), 100);
    }

    #[test]
    fn an_overlong_transcript_keeps_its_ends() {
        let mut input = AnalysisInput::individual("e", "+1", &format!("A{}Z", "m".repeat(1000)));
        fit_prompt(&mut input, 200);
        assert!(input.transcript.chars().count() <= 200);
        assert!(input.transcript.starts_with('A') && input.transcript.ends_with('Z'));
    }
}
