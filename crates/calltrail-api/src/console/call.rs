//! `GET /calls/{execution_id}`: one call: status, duration, credits, recording, its campaign
//! with a form to attribute it by hand (or clear that), the timeline of its events,
//! transcript, lead analysis, and each event's raw payload from the event log. Another
//! tenant's call is a 404 page, exactly like a missing one.

use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_eventlog::EventPayload;
use calltrail_projections::views::{CallDetail, CallView, LeadAnalyticsView, TranscriptView};
use maud::{html, Markup};

use super::attribution::Notice;
use super::campaigns::{self, Campaigns};
use super::format::{
    self, call_href, contact_href, dash, duration, lead_tag, opt_text, opt_time, safe_url,
};
use super::page::{page, Nav, PageError};
use super::parse_query;
use super::session::Session;
use crate::error::ApiError;
use crate::params::parse_execution_id;
use crate::AppState;

/// `GET /calls/{execution_id}`.
pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    execution_id: web::Path<String>,
    query: web::Query<crate::calls::CallQuery>,
) -> Result<HttpResponse, PageError> {
    let notice: Notice = parse_query(&req)?;
    let execution_id = parse_execution_id(execution_id.into_inner())?;
    let tenant = session.tenant();
    let id = execution_id.clone();
    let provider = query.provider()?;
    let call = state
        .read(move |store| async move { store.get_call(tenant, provider, &id).await })
        .await?;
    let call = crate::calls::found(call, &execution_id)?;
    let positions: Vec<i64> = call.events.iter().map(|e| e.position).collect();
    let log = state.log().clone();
    let (id_t, id_a) = (execution_id.clone(), execution_id);
    let (p_t, p_a) = (call.call.provider.clone(), call.call.provider.clone());
    let (transcript, analysis, payloads, campaigns) = tokio::try_join!(
        state.read(move |store| async move {
            Ok(store
                .get_transcript(tenant, Some(&p_t), &id_t)
                .await?
                .found())
        }),
        state.read(move |store| async move { store.call_analysis(tenant, &p_a, &id_a).await }),
        async {
            state
                .on_db_runtime(async move { log.payloads(tenant, &positions).await })
                .await?
                .map_err(ApiError::from_log)
        },
        Campaigns::load(&state, tenant),
    )?;
    let title = format!("Call {}", call.call.execution_id);
    let body = html! {
        h1 { "Call " span.id { (call.call.execution_id) } }
        p { a href="/calls" { "← All calls" } }
        (summary(&call))
        (campaign_section(&session, &call.call, &campaigns, notice.saved.as_deref()))
        (timeline(&call))
        (transcript_section(transcript.as_ref()))
        (analysis_section(analysis.as_ref()))
        (payloads_section(&payloads))
    };
    Ok(page(&session, Nav::Calls, &title, body))
}

fn summary(detail: &CallDetail) -> Markup {
    let call = &detail.call;
    html! {
        section aria-labelledby="summary" {
            h2 id="summary" { "Summary" }
            dl.facts {
                dt { "Status" } dd { (format::status(&call.status)) }
                dt { "Provider status" } dd { (call.call_lifecycle_status) }
                dt { "Duration" } dd { (duration(call.duration_seconds)) " (" (call.duration_minutes) " min billed)" }
                dt { "Credits" } dd { (call.credits_used) }
                dt { "Outcome" } dd { (format::outcome(&call.outcome)) }
                dt { "Cost" } dd {
                    @match (call.cost, call.cost_unit.as_deref()) {
                        (Some(cost), Some(unit)) => {
                            (cost) " " (format::cost_unit(unit)) " (as the provider reported it)"
                        },
                        _ => (dash()),
                    }
                }
                dt { "Phone" } dd {
                    @match &call.phone_number {
                        Some(phone) => a href=(contact_href(phone)) { (phone) },
                        None => (dash()),
                    }
                }
                dt { "Direction" } dd { (opt_text(call.lead_type.as_deref())) }
                dt { "Agent" } dd { (opt_text(call.agent_id.as_deref())) }
                dt { "Recording" } dd {
                    @match call.recording_url.as_deref() {
                        Some(url) => @match safe_url(url) {
                            Some(url) => a href=(url) rel="noopener noreferrer" target="_blank" { "Open the recording" },
                            None => (url),
                        },
                        None => (dash()),
                    }
                }
                dt { "Created" } dd { (format::time(call.created_at)) }
                dt { "Ringing" } dd { (opt_time(call.ringing_started_at)) }
                dt { "Answered" } dd { (opt_time(call.call_answered_at)) }
                dt { "Disconnected" } dd { (opt_time(call.call_disconnected_at)) }
                dt { "Completed" } dd { (opt_time(call.completed_at)) }
                dt { "Hung up by" } dd { (opt_text(call.hangup_by.as_deref())) }
                dt { "Hang-up reason" } dd { (opt_text(call.hangup_reason.as_deref())) }
            }
        }
    }
}

/// The call's campaign and how it got it, and the form to attribute it by hand or clear that.
fn campaign_section(
    session: &Session,
    call: &CallView,
    campaigns: &Campaigns,
    saved: Option<&str>,
) -> Markup {
    let action = format!(
        "{}/attribution?provider={}",
        call_href(&call.execution_id),
        format::segment(&call.provider)
    );
    let how = match call.attribution.as_deref() {
        Some("auto_batch") => "automatically, by its batch id",
        Some("auto_phone") => "automatically, by its phone number",
        Some("manual") => "by hand",
        _ => "",
    };
    html! {
        section aria-labelledby="campaign" {
            h2 id="campaign" { "Campaign" }
            @match saved {
                Some("set") => p.notice role="status" { "Saved, updating: the campaign below changes once the attribution is processed (reload in a moment)." },
                Some("cleared") => p.notice role="status" { "Cleared, updating: the automatic rules apply to this call again once the change is processed (reload in a moment)." },
                _ => {},
            }
            p data-campaign=[call.campaign_id] {
                @match call.campaign_id {
                    Some(id) => {
                        (campaigns.link(id, &campaigns::calls_href(id)))
                        @if !how.is_empty() { " — attributed " (how) "." }
                    }
                    None => "Unattributed.",
                }
            }
            @if campaigns.is_empty() {
                p { "No campaigns yet: create one with " code { "POST /v1/campaigns" } " to attribute calls to it." }
            } @else {
                form.attribute method="post" action=(action) {
                    input type="hidden" name="csrf" value=(session.csrf());
                    div.field {
                        label for="attribute_campaign" { "Attribute to" }
                        select id="attribute_campaign" name="campaign_id" required {
                            option value="" { "Pick a campaign" }
                            (campaigns.options(call.campaign_id))
                        }
                    }
                    div.actions {
                        button type="submit" name="action" value="set" { "Save" }
                        @if call.attribution.as_deref() == Some("manual") {
                            button.secondary type="submit" name="action" value="clear" formnovalidate { "Clear manual attribution" }
                        }
                    }
                }
            }
        }
    }
}

fn timeline(detail: &CallDetail) -> Markup {
    html! {
        section aria-labelledby="timeline" {
            h2 id="timeline" { "Timeline" }
            @if detail.events.is_empty() {
                p { "No events yet." }
            } @else {
                ol.timeline {
                    @for event in &detail.events {
                        li {
                            (format::time(event.occurred_at)) " — " strong { (event.event_type) }
                            @if event.recorded_at != event.occurred_at {
                                " " span.none { "(recorded " (event.recorded_at.format("%Y-%m-%d %H:%M:%S")) " UTC)" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn transcript_section(transcript: Option<&TranscriptView>) -> Markup {
    html! {
        section aria-labelledby="transcript" {
            h2 id="transcript" { "Transcript" }
            @match transcript {
                None => p { "No transcript." },
                Some(t) => {
                    p { "Analysis: " (t.analysis_status)
                        @if let Some(error) = &t.analysis_error { " — " (error) } }
                    pre.transcript { (t.content) }
                }
            }
        }
    }
}

fn analysis_section(analysis: Option<&LeadAnalyticsView>) -> Markup {
    html! {
        section aria-labelledby="analysis" {
            h2 id="analysis" { "Lead analysis" }
            @match analysis {
                None => p { "Not analysed." },
                Some(a) => (analysis_facts(a)),
            }
        }
    }
}

/// The scores, labels, extracted details and calls to action of an analysis.
pub fn analysis_facts(view: &LeadAnalyticsView) -> Markup {
    let a = &view.analysis;
    let dimensions = [
        ("Intent", a.intent_score, a.intent_level.as_deref()),
        ("Urgency", a.urgency_score, a.urgency_level.as_deref()),
        ("Budget", a.budget_score, a.budget_constraint.as_deref()),
        ("Fit", a.fit_score, a.fit_alignment.as_deref()),
        (
            "Engagement",
            a.engagement_score,
            a.engagement_health.as_deref(),
        ),
    ];
    let ctas = [
        ("Asked about pricing", a.cta_pricing_clicked),
        ("Asked for a demo", a.cta_demo_clicked),
        ("Asked for a follow-up", a.cta_followup_clicked),
        ("Asked for a sample", a.cta_sample_clicked),
        ("Asked for a human", a.cta_escalated_to_human),
    ];
    let asked: Vec<&str> = ctas.iter().filter(|(_, on)| *on).map(|(l, _)| *l).collect();
    html! {
        p { (lead_tag(a.lead_status_tag.as_str())) " Score " strong { (a.total_score) } " / 100" }
        @if let Some(note) = &a.smart_notification { p { (note) } }
        table {
            thead { tr { th scope="col" { "Dimension" } th.num scope="col" { "Score (0–5)" } th scope="col" { "Assessment" } } }
            tbody {
                @for (name, score, label) in dimensions {
                    tr { th scope="row" { (name) } td.num { (score) } td { (opt_text(label)) } }
                }
            }
        }
        dl.facts {
            dt { "Name" } dd { (opt_text(a.extracted_name.as_deref())) }
            dt { "E-mail" } dd { (opt_text(a.extracted_email.as_deref())) }
            dt { "Company" } dd { (opt_text(a.company_name.as_deref())) }
            dt { "Calls to action" } dd {
                @if asked.is_empty() { (dash()) } @else { (asked.join(", ")) }
            }
            dt { "Demo booked for" } dd { (opt_text(a.demo_book_datetime.as_deref())) }
            dt { "Analysed" } dd { (format::time(view.analysis_timestamp)) " by " (view.analyzer.as_str())
                @if let Some(model) = &view.model { " (" (model) ")" } }
        }
        @if let Some(reasons) = Some(&a.reasoning).filter(|r| !r.is_empty()) {
            details {
                summary { "Reasoning" }
                dl.facts {
                    @for (key, value) in reasons {
                        dt { (key) }
                        dd { @match value.as_str() { Some(text) => (text), None => (value.to_string()) } }
                    }
                }
            }
        }
    }
}

fn payloads_section(payloads: &[EventPayload]) -> Markup {
    html! {
        section aria-labelledby="payloads" data-details-group {
            h2 id="payloads" { "Raw payloads" }
            p { "Each event as calltrail received it (key order as stored)." }
            @for event in payloads {
                details {
                    summary { strong { (event.event_type) } " — " (format::time(event.occurred_at)) " · " (event.provider) }
                    @match &event.payload {
                        Some(payload) => pre.payload { (payload) },
                        None => p { "Recorded by calltrail itself; no provider payload." },
                    }
                }
            }
        }
    }
}
