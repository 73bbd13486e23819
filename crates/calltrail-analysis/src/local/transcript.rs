//! Transcript reading for the local analyzer: speaker turns, phrase matching with negation,
//! and the e-mail/name/company scanners. No regular expressions.

use calltrail_core::analysis::is_plausible_email;

/// Who spoke a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaker {
    /// The person called (or calling).
    Caller,
    /// The voice agent.
    Agent,
}

/// One speaker turn.
#[derive(Debug, Clone)]
pub(crate) struct Turn {
    pub(crate) speaker: Speaker,
    pub(crate) text: String,
    words: Vec<String>,
}

impl Turn {
    fn new(speaker: Speaker, text: &str) -> Self {
        Turn {
            speaker,
            text: text.trim().to_owned(),
            words: words(text),
        }
    }

    fn append(&mut self, line: &str) {
        self.text.push('\n');
        self.text.push_str(line);
        self.words.extend(words(line));
    }
}

const CALLER_PREFIXES: [&str; 3] = ["user", "caller", "customer"];
const AGENT_PREFIXES: [&str; 4] = ["assistant", "agent", "bot", "ai"];
/// Words that cancel a positive phrase when among the 3 words before it.
const NEGATORS: [&str; 14] = [
    "not", "no", "never", "without", "don't", "dont", "doesn't", "didn't", "isn't", "aren't",
    "won't", "can't", "cannot", "cant",
];
/// Phrases before a caller's own name.
pub(crate) const NAME_CUES: &[&str] = &["my name is", "this is", "i'm", "i am", "it's", "name's"];
/// Phrases before a caller's company.
pub(crate) const COMPANY_CUES: &[&str] = &[
    "from",
    "at",
    "work for",
    "working for",
    "work at",
    "company is",
    "i'm with",
    "i am with",
];
/// Capitalised words that are not names or companies.
const NOT_A_NAME: &[&str] = &[
    "i",
    "i'm",
    "the",
    "a",
    "an",
    "yes",
    "no",
    "not",
    "ok",
    "okay",
    "sure",
    "thanks",
    "thank",
    "hello",
    "hi",
    "hey",
    "just",
    "here",
    "speaking",
    "calling",
    "fine",
    "good",
    "great",
    "sorry",
    "busy",
    "interested",
    "we",
    "you",
    "he",
    "she",
    "they",
    "it",
    "my",
    "our",
    "your",
    "this",
    "that",
    "me",
    "today",
    "tomorrow",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Splits a transcript into turns (see the module documentation of `local`).
pub(crate) fn turns(transcript: &str) -> Vec<Turn> {
    let mut out: Vec<Turn> = Vec::new();
    let mut labelled = false;
    for line in transcript.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match split_speaker(line) {
            Some((speaker, rest)) => {
                labelled = true;
                out.push(Turn::new(speaker, rest));
            }
            None => {
                // Lines before the first labelled turn have no known speaker and are skipped.
                if let Some(last) = out.last_mut() {
                    last.append(line);
                }
            }
        }
    }
    if !labelled && !transcript.trim().is_empty() {
        return vec![Turn::new(Speaker::Caller, transcript)];
    }
    out
}

fn split_speaker(line: &str) -> Option<(Speaker, &str)> {
    let (prefix, rest) = line.split_once(':')?;
    let prefix = prefix.trim().to_ascii_lowercase();
    if CALLER_PREFIXES.contains(&prefix.as_str()) {
        Some((Speaker::Caller, rest))
    } else if AGENT_PREFIXES.contains(&prefix.as_str()) {
        Some((Speaker::Agent, rest))
    } else {
        None
    }
}

/// Lowercase words: runs of letters, digits and apostrophes (’ becomes ').
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('\u{2019}', "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `phrase` occurs in `words`, optionally ignoring negated occurrences.
fn occurs(words: &[String], phrase: &str, negation_aware: bool) -> bool {
    let needle: Vec<&str> = phrase.split(' ').collect();
    if needle.is_empty() || needle.len() > words.len() {
        return false;
    }
    words.windows(needle.len()).enumerate().any(|(i, window)| {
        let hit = window.iter().zip(&needle).all(|(w, n)| w == n);
        let negated = negation_aware
            && words
                .get(i.saturating_sub(3)..i)
                .is_some_and(|before| before.iter().any(|w| NEGATORS.contains(&w.as_str())));
        hit && !negated
    })
}

/// The phrases of `list` said in any of `turns`. Positive lists are negation-aware.
pub(crate) fn matched(
    turns: &[&Turn],
    list: &'static [&'static str],
    negation_aware: bool,
) -> Vec<&'static str> {
    list.iter()
        .copied()
        .filter(|phrase| {
            turns
                .iter()
                .any(|t| occurs(&t.words, phrase, negation_aware))
        })
        .collect()
}

/// `true` when an agent turn mentions a phrase of `list` and the next turn is the caller
/// accepting (an `ACCEPT` word, no `DECLINE` word).
pub(crate) fn accepted_offer(turns: &[Turn], list: &[&str]) -> bool {
    turns.windows(2).any(|pair| {
        let [offer, answer] = pair else { return false };
        offer.speaker == Speaker::Agent
            && answer.speaker == Speaker::Caller
            && list.iter().any(|p| occurs(&offer.words, p, false))
            && super::ACCEPT.iter().any(|p| occurs(&answer.words, p, true))
            && !super::DECLINE
                .iter()
                .any(|p| occurs(&answer.words, p, false))
    })
}

/// The first plausible e-mail address said by `speaker`, newest call first.
pub(crate) fn find_email(calls: &[&Vec<Turn>], speaker: Speaker) -> Option<String> {
    calls
        .iter()
        .flat_map(|turns| turns.iter())
        .filter(|t| t.speaker == speaker)
        .flat_map(|t| t.text.split_whitespace())
        .map(|token| {
            let token = token.trim_matches(|c: char| "<>()[]{}\"'`,;:!?".contains(c));
            let token = token.strip_prefix("mailto:").unwrap_or(token);
            token.trim_end_matches('.').to_lowercase()
        })
        .find(|token| is_plausible_email(token))
}

/// Up to `max_words` capitalised words after one of `cues` in the caller's turns, newest call first.
pub(crate) fn find_after(calls: &[&Vec<Turn>], cues: &[&str], max_words: usize) -> Option<String> {
    calls
        .iter()
        .flat_map(|turns| turns.iter())
        .filter(|t| t.speaker == Speaker::Caller)
        .find_map(|t| capitalised_after(&t.text, cues, max_words))
}

fn capitalised_after(text: &str, cues: &[&str], max_words: usize) -> Option<String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let plain: Vec<String> = tokens
        .iter()
        .map(|t| {
            t.to_lowercase()
                .replace('\u{2019}', "'")
                .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_owned()
        })
        .collect();
    for cue in cues {
        let needle: Vec<&str> = cue.split(' ').collect();
        for start in 0..plain.len() {
            let end = start.saturating_add(needle.len());
            let Some(window) = plain.get(start..end) else {
                break;
            };
            // A cue ending a sentence ("… at." ) does not introduce a name.
            let cue_closed = tokens
                .get(end.saturating_sub(1))
                .is_some_and(|t| t.ends_with(['.', ',', '!', '?', ';', ':']));
            if window.iter().zip(&needle).all(|(w, n)| w == n) && !cue_closed {
                let found = capitalised_run(tokens.get(end..).unwrap_or(&[]), max_words);
                if found.is_some() {
                    return found;
                }
            }
        }
    }
    None
}

/// Capitalised words from the start of `tokens`, stopping at punctuation or a lowercase word.
fn capitalised_run(tokens: &[&str], max_words: usize) -> Option<String> {
    let mut run: Vec<&str> = Vec::new();
    for token in tokens.iter().take(max_words) {
        let core = token.trim_start_matches(|c: char| "\"'(".contains(c));
        let ends_clause = core.ends_with(['.', ',', '!', '?', ';', ':', ')', '"']);
        let core = core.trim_end_matches(|c: char| ".,!?;:)\"'".contains(c));
        let capitalised = core.chars().next().is_some_and(char::is_uppercase)
            && core.chars().all(|c| c.is_alphabetic() || "-'&".contains(c))
            && !NOT_A_NAME.contains(&core.to_lowercase().as_str());
        if !capitalised {
            break;
        }
        run.push(core);
        if ends_clause {
            break;
        }
    }
    (!run.is_empty()).then(|| run.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_turns_and_continues_unprefixed_lines() {
        let t = turns("assistant: Hi\nuser: Yes,\nthat's me\nAgent: ok");
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(1).map(|t| t.text.as_str()), Some("Yes,\nthat's me"));
        assert_eq!(
            turns("hello there").first().map(|t| t.speaker),
            Some(Speaker::Caller)
        );
        assert!(turns("  \n").is_empty());
    }

    #[test]
    fn negation_cancels_positive_phrases() {
        let w = words("I'm really not interested in a demo");
        assert!(!occurs(&w, "interested", true));
        assert!(occurs(&w, "not interested", false));
        assert!(occurs(&words("We need a demo."), "demo", true));
        assert!(!occurs(&words("we don't want a demo"), "demo", true));
    }

    #[test]
    fn finds_names_and_companies() {
        let cues = NAME_CUES;
        assert_eq!(
            capitalised_after("Hi, this is Rohan Mehta from Acme.", cues, 2).as_deref(),
            Some("Rohan Mehta")
        );
        assert_eq!(capitalised_after("this is great", cues, 2), None);
        assert_eq!(
            capitalised_after("I'm calling from Acme Logistics, hi", COMPANY_CUES, 4).as_deref(),
            Some("Acme Logistics")
        );
        assert_eq!(capitalised_after("free from Monday", COMPANY_CUES, 4), None);
    }
}
