//! Lead analytics reads: the rows behind `GET /v1/calls/{id}/analysis` and
//! `GET /v1/contacts/{phone}/analysis`, and everything an analysis worker needs to analyse a
//! call (transcript, call facts, the contact's earlier analysed calls, the user's prompt ids).
//! Every query is scoped to one tenant.

use calltrail_core::{
    AnalysisKind, AnalysisMeta, Analyzer, ContactHints, LeadAnalysis, LeadStatusTag, PreviousCall,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::views::LeadAnalyticsView;
use crate::{Error, ReadStore, UserPrompts};

/// The columns of `lead_analytics` a [`LeadAnalyticsView`] is read from ([`lead_view`] reads
/// them by name); the fold's upsert writes the same list. The analysis fields among them are
/// [`LeadAnalysis`]'s field names.
pub(crate) const LEAD_COLUMNS: [&str; 32] = [
    "analysis_type",
    "execution_id",
    "user_id",
    "phone_number",
    "previous_calls_analyzed",
    "analysis_timestamp",
    "total_score",
    "intent_level",
    "intent_score",
    "urgency_level",
    "urgency_score",
    "budget_constraint",
    "budget_score",
    "fit_alignment",
    "fit_score",
    "engagement_health",
    "engagement_score",
    "lead_status_tag",
    "reasoning",
    "company_name",
    "extracted_name",
    "extracted_email",
    "smart_notification",
    "cta_pricing_clicked",
    "cta_demo_clicked",
    "cta_followup_clicked",
    "cta_sample_clicked",
    "cta_escalated_to_human",
    "demo_book_datetime",
    "analyzer",
    "model",
    "tokens_used",
];

/// What a worker needs to analyse one call.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisContext {
    /// The contact's phone number (E.164), when the call has one.
    pub phone_number: Option<String>,
    /// The call's transcript.
    pub transcript: String,
    /// The call's date.
    pub call_date: Option<NaiveDate>,
    /// The charged conversation length (`None` until charged).
    pub call_duration_seconds: Option<f64>,
    /// What the contact row knows.
    pub contact: ContactHints,
    /// The user's own prompt ids.
    pub prompts: UserPrompts,
    /// The call's individual analysis (complete jobs only).
    pub current: Option<(LeadAnalysis, AnalysisMeta)>,
    /// The contact's most recent other analysed calls, oldest first (complete jobs only).
    pub previous: Vec<PreviousCall>,
    /// How many other calls of the contact are analysed (may exceed `previous.len()`).
    pub other_analysed_calls: i64,
}

impl ReadStore {
    /// The individual analysis of `provider`'s call `execution_id` (`None` until it exists, or
    /// for another tenant).
    pub async fn call_analysis(
        &self,
        tenant: Uuid,
        provider: &str,
        execution_id: &str,
    ) -> Result<Option<LeadAnalyticsView>, Error> {
        self.lead_analytics(
            tenant,
            AnalysisKind::Individual,
            execution_id,
            Some(provider),
        )
        .await
    }

    /// The complete analysis of a contact (`None` until it exists, or for another tenant).
    pub async fn contact_analysis(
        &self,
        tenant: Uuid,
        phone: &str,
    ) -> Result<Option<LeadAnalyticsView>, Error> {
        self.lead_analytics(tenant, AnalysisKind::Complete, phone, None)
            .await
    }

    async fn lead_analytics(
        &self,
        tenant: Uuid,
        kind: AnalysisKind,
        key: &str,
        provider: Option<&str>,
    ) -> Result<Option<LeadAnalyticsView>, Error> {
        let client = self.client().await?;
        // A complete row is the contact's whatever its `provider` (the fold writes one per
        // phone); an individual row is one provider's call's.
        let sql = format!(
            "SELECT {}, provider FROM lead_analytics
              WHERE user_id = $1 AND analysis_type = $2 AND key = $3
                AND ($4::text IS NULL OR provider = $4)
              ORDER BY position DESC LIMIT 1",
            LEAD_COLUMNS.join(", ")
        );
        let row = client
            .query_opt(&sql, &[&tenant, &kind.as_str(), &key, &provider])
            .await?;
        row.as_ref().map(lead_view).transpose()
    }

    /// Everything needed to analyse `provider`'s call `execution_id` of `user_id` (`None` when the call or
    /// its transcript does not exist). For a complete analysis also the call's individual
    /// analysis and at most `max_previous` of the contact's other analysed calls.
    #[tracing::instrument(skip_all, fields(%execution_id, kind = kind.as_str()), err)]
    pub async fn analysis_context(
        &self,
        user_id: Uuid,
        provider: &str,
        execution_id: &str,
        kind: AnalysisKind,
        max_previous: i64,
    ) -> Result<Option<AnalysisContext>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT c.phone_number, t.content, c.created_at, c.duration_seconds,
                        k.name, k.email, k.company, u.individual_prompt_id, u.complete_prompt_id
                   FROM calls c
                   JOIN transcripts t ON t.user_id = c.user_id AND t.execution_id = c.execution_id
                    AND t.provider = c.provider
                   LEFT JOIN contacts k ON k.user_id = c.user_id AND k.phone_number = c.phone_number
                   LEFT JOIN users u ON u.id = c.user_id
                  WHERE c.user_id = $1 AND c.execution_id = $2 AND c.provider = $3",
                &[&user_id, &execution_id, &provider],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let phone_number: Option<String> = row.try_get("phone_number")?;
        let created_at: DateTime<Utc> = row.try_get("created_at")?;
        let mut context = AnalysisContext {
            phone_number: phone_number.clone(),
            transcript: row.try_get("content")?,
            call_date: Some(created_at.date_naive()),
            call_duration_seconds: seconds(row.try_get("duration_seconds")?),
            contact: ContactHints {
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                company: row.try_get("company")?,
            },
            prompts: UserPrompts {
                individual_prompt_id: row.try_get("individual_prompt_id")?,
                complete_prompt_id: row.try_get("complete_prompt_id")?,
            },
            current: None,
            previous: Vec::new(),
            other_analysed_calls: 0,
        };
        if kind == AnalysisKind::Individual {
            return Ok(Some(context));
        }
        context.current = self
            .lead_analytics(
                user_id,
                AnalysisKind::Individual,
                execution_id,
                Some(provider),
            )
            .await?
            .map(analysis_of);
        let Some(phone) = phone_number else {
            return Ok(Some(context));
        };
        let columns: Vec<String> = LEAD_COLUMNS
            .iter()
            .chain(&["provider"])
            .map(|c| format!("la.{c}"))
            .collect();
        let sql = format!(
            "SELECT c.created_at AS call_created_at, c.duration_seconds AS call_duration_seconds,
                    t.content AS transcript, count(*) OVER () AS analysed_calls, {}
               FROM calls c
               JOIN transcripts t ON t.user_id = c.user_id AND t.execution_id = c.execution_id
                AND t.provider = c.provider
               JOIN lead_analytics la ON la.user_id = c.user_id
                AND la.analysis_type = 'individual' AND la.key = c.execution_id
                AND la.provider = c.provider
              WHERE c.user_id = $1 AND c.phone_number = $2
                AND (c.execution_id, c.provider) <> ($3, $5)
              ORDER BY c.created_at DESC, c.execution_id DESC, c.provider DESC
              LIMIT $4",
            columns.join(", ")
        );
        let rows = client
            .query(
                &sql,
                &[
                    &user_id,
                    &phone,
                    &execution_id,
                    &max_previous.max(0),
                    &provider,
                ],
            )
            .await?;
        for row in rows.iter().rev() {
            let created_at: DateTime<Utc> = row.try_get("call_created_at")?;
            context.other_analysed_calls = row.try_get("analysed_calls")?;
            // An individual row: its `execution_id` is the call's (the join's key).
            let view = lead_view(row)?;
            context.previous.push(PreviousCall {
                execution_id: view.execution_id.unwrap_or_default(),
                transcript: row.try_get("transcript")?,
                call_date: Some(created_at.date_naive()),
                call_duration_seconds: seconds(row.try_get("call_duration_seconds")?),
                analysis: Some(view.analysis),
            });
        }
        Ok(Some(context))
    }
}

/// A charged duration as seconds (`None` while 0, i.e. not charged yet).
fn seconds(duration: i64) -> Option<f64> {
    u32::try_from(duration)
        .ok()
        .filter(|s| *s > 0)
        .map(f64::from)
}

/// Reads a [`LeadAnalyticsView`] from `r`, which holds the [`LEAD_COLUMNS`] and `provider`
/// (by name).
fn lead_view(r: &Row) -> Result<LeadAnalyticsView, Error> {
    let analysis_type: String = r.try_get("analysis_type")?;
    let execution_id: String = r.try_get("execution_id")?;
    let provider: String = r.try_get("provider")?;
    let (individual, complete, provider) = if analysis_type == "complete" {
        (None, Some(execution_id), None)
    } else {
        (Some(execution_id), None, Some(provider))
    };
    let tag: &str = r.try_get("lead_status_tag")?;
    let lead_status_tag = LeadStatusTag::parse(tag).ok_or_else(|| Error::CorruptRow {
        table: "lead_analytics",
        reason: format!("lead_status_tag `{tag}` is not Hot, Warm or Cold"),
    })?;
    let analyzer = match r.try_get("analyzer")? {
        "openai" => Analyzer::OpenAi,
        "local" => Analyzer::Local,
        other => {
            return Err(Error::CorruptRow {
                table: "lead_analytics",
                reason: format!("analyzer `{other}` is unknown"),
            })
        }
    };
    let reasoning = match r.try_get("reasoning")? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(LeadAnalyticsView {
        analysis_type,
        execution_id: individual,
        provider,
        latest_execution_id: complete,
        user_id: r.try_get("user_id")?,
        phone_number: r.try_get("phone_number")?,
        previous_calls_analyzed: r.try_get("previous_calls_analyzed")?,
        analysis_timestamp: r.try_get("analysis_timestamp")?,
        analysis: LeadAnalysis {
            total_score: r.try_get("total_score")?,
            intent_level: r.try_get("intent_level")?,
            intent_score: r.try_get("intent_score")?,
            urgency_level: r.try_get("urgency_level")?,
            urgency_score: r.try_get("urgency_score")?,
            budget_constraint: r.try_get("budget_constraint")?,
            budget_score: r.try_get("budget_score")?,
            fit_alignment: r.try_get("fit_alignment")?,
            fit_score: r.try_get("fit_score")?,
            engagement_health: r.try_get("engagement_health")?,
            engagement_score: r.try_get("engagement_score")?,
            lead_status_tag,
            reasoning,
            company_name: r.try_get("company_name")?,
            extracted_name: r.try_get("extracted_name")?,
            extracted_email: r.try_get("extracted_email")?,
            smart_notification: r.try_get("smart_notification")?,
            cta_pricing_clicked: r.try_get("cta_pricing_clicked")?,
            cta_demo_clicked: r.try_get("cta_demo_clicked")?,
            cta_followup_clicked: r.try_get("cta_followup_clicked")?,
            cta_sample_clicked: r.try_get("cta_sample_clicked")?,
            cta_escalated_to_human: r.try_get("cta_escalated_to_human")?,
            demo_book_datetime: r.try_get("demo_book_datetime")?,
        },
        analyzer,
        model: r.try_get("model")?,
        tokens_used: r.try_get("tokens_used")?,
    })
}

/// The analysis and metadata a stored row holds (the response id is not stored).
fn analysis_of(view: LeadAnalyticsView) -> (LeadAnalysis, AnalysisMeta) {
    let meta = AnalysisMeta {
        analyzer: view.analyzer,
        model: view.model,
        response_id: None,
        tokens_used: view.tokens_used,
    };
    (view.analysis, meta)
}
