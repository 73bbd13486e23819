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

/// The analysis result columns of `lead_analytics`, shared by reads and the fold's upsert.
pub(crate) const ANALYSIS_COLUMNS: [&str; 26] = [
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

/// The columns of a [`LeadAnalyticsView`], in the order [`lead_view`] reads them.
fn lead_columns() -> impl Iterator<Item = &'static str> {
    [
        "analysis_type",
        "execution_id",
        "user_id",
        "phone_number",
        "previous_calls_analyzed",
        "analysis_timestamp",
    ]
    .into_iter()
    .chain(ANALYSIS_COLUMNS)
}

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
    /// The individual analysis of a call (`None` until it exists, or for another tenant).
    pub async fn call_analysis(
        &self,
        tenant: Uuid,
        execution_id: &str,
    ) -> Result<Option<LeadAnalyticsView>, Error> {
        self.lead_analytics(tenant, AnalysisKind::Individual, execution_id)
            .await
    }

    /// The complete analysis of a contact (`None` until it exists, or for another tenant).
    pub async fn contact_analysis(
        &self,
        tenant: Uuid,
        phone: &str,
    ) -> Result<Option<LeadAnalyticsView>, Error> {
        self.lead_analytics(tenant, AnalysisKind::Complete, phone)
            .await
    }

    async fn lead_analytics(
        &self,
        tenant: Uuid,
        kind: AnalysisKind,
        key: &str,
    ) -> Result<Option<LeadAnalyticsView>, Error> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {} FROM lead_analytics
              WHERE user_id = $1 AND analysis_type = $2 AND key = $3",
            lead_columns().collect::<Vec<_>>().join(", ")
        );
        let row = client
            .query_opt(&sql, &[&tenant, &kind.as_str(), &key])
            .await?;
        row.map(|r| lead_view(&r, 0)).transpose()
    }

    /// Everything needed to analyse call `execution_id` of `user_id` (`None` when the call or
    /// its transcript does not exist). For a complete analysis also the call's individual
    /// analysis and at most `max_previous` of the contact's other analysed calls.
    #[tracing::instrument(skip_all, fields(%execution_id, kind = kind.as_str()), err)]
    pub async fn analysis_context(
        &self,
        user_id: Uuid,
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
                   LEFT JOIN contacts k ON k.user_id = c.user_id AND k.phone_number = c.phone_number
                   LEFT JOIN users u ON u.id = c.user_id
                  WHERE c.user_id = $1 AND c.execution_id = $2",
                &[&user_id, &execution_id],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let phone_number: Option<String> = row.try_get(0)?;
        let created_at: DateTime<Utc> = row.try_get(2)?;
        let mut context = AnalysisContext {
            phone_number: phone_number.clone(),
            transcript: row.try_get(1)?,
            call_date: Some(created_at.date_naive()),
            call_duration_seconds: seconds(row.try_get(3)?),
            contact: ContactHints {
                name: row.try_get(4)?,
                email: row.try_get(5)?,
                company: row.try_get(6)?,
            },
            prompts: UserPrompts {
                individual_prompt_id: row.try_get(7)?,
                complete_prompt_id: row.try_get(8)?,
            },
            current: None,
            previous: Vec::new(),
            other_analysed_calls: 0,
        };
        if kind == AnalysisKind::Individual {
            return Ok(Some(context));
        }
        context.current = self
            .lead_analytics(user_id, AnalysisKind::Individual, execution_id)
            .await?
            .map(|view| analysis_of(&view))
            .transpose()?;
        let Some(phone) = phone_number else {
            return Ok(Some(context));
        };
        let columns: Vec<String> = lead_columns().map(|c| format!("la.{c}")).collect();
        let sql = format!(
            "SELECT c.execution_id, c.created_at, c.duration_seconds, t.content,
                    count(*) OVER (), {}
               FROM calls c
               JOIN transcripts t ON t.user_id = c.user_id AND t.execution_id = c.execution_id
               JOIN lead_analytics la ON la.user_id = c.user_id
                AND la.analysis_type = 'individual' AND la.key = c.execution_id
              WHERE c.user_id = $1 AND c.phone_number = $2 AND c.execution_id <> $3
              ORDER BY c.created_at DESC, c.execution_id DESC
              LIMIT $4",
            columns.join(", ")
        );
        let rows = client
            .query(
                &sql,
                &[&user_id, &phone, &execution_id, &max_previous.max(0)],
            )
            .await?;
        for row in rows.iter().rev() {
            let created_at: DateTime<Utc> = row.try_get(1)?;
            context.other_analysed_calls = row.try_get(4)?;
            let (analysis, _) = analysis_of(&lead_view(row, 5)?)?;
            context.previous.push(PreviousCall {
                execution_id: row.try_get(0)?,
                transcript: row.try_get(3)?,
                call_date: Some(created_at.date_naive()),
                call_duration_seconds: seconds(row.try_get(2)?),
                analysis: Some(analysis),
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

/// Reads a [`LeadAnalyticsView`] from `row`, its columns starting at `at` in [`lead_columns`] order.
fn lead_view(r: &Row, at: usize) -> Result<LeadAnalyticsView, Error> {
    let analysis_type: String = r.try_get(at)?;
    let execution_id: String = r.try_get(at + 1)?;
    let (individual, complete) = if analysis_type == "complete" {
        (None, Some(execution_id))
    } else {
        (Some(execution_id), None)
    };
    Ok(LeadAnalyticsView {
        analysis_type,
        execution_id: individual,
        latest_execution_id: complete,
        user_id: r.try_get(at + 2)?,
        phone_number: r.try_get(at + 3)?,
        previous_calls_analyzed: r.try_get(at + 4)?,
        analysis_timestamp: r.try_get(at + 5)?,
        total_score: r.try_get(at + 6)?,
        intent_level: r.try_get(at + 7)?,
        intent_score: r.try_get(at + 8)?,
        urgency_level: r.try_get(at + 9)?,
        urgency_score: r.try_get(at + 10)?,
        budget_constraint: r.try_get(at + 11)?,
        budget_score: r.try_get(at + 12)?,
        fit_alignment: r.try_get(at + 13)?,
        fit_score: r.try_get(at + 14)?,
        engagement_health: r.try_get(at + 15)?,
        engagement_score: r.try_get(at + 16)?,
        lead_status_tag: r.try_get(at + 17)?,
        reasoning: r.try_get(at + 18)?,
        company_name: r.try_get(at + 19)?,
        extracted_name: r.try_get(at + 20)?,
        extracted_email: r.try_get(at + 21)?,
        smart_notification: r.try_get(at + 22)?,
        cta_pricing_clicked: r.try_get(at + 23)?,
        cta_demo_clicked: r.try_get(at + 24)?,
        cta_followup_clicked: r.try_get(at + 25)?,
        cta_sample_clicked: r.try_get(at + 26)?,
        cta_escalated_to_human: r.try_get(at + 27)?,
        demo_book_datetime: r.try_get(at + 28)?,
        analyzer: r.try_get(at + 29)?,
        model: r.try_get(at + 30)?,
        tokens_used: r.try_get(at + 31)?,
    })
}

/// The analysis and metadata a stored row holds (the response id is not stored).
fn analysis_of(view: &LeadAnalyticsView) -> Result<(LeadAnalysis, AnalysisMeta), Error> {
    let lead_status_tag =
        LeadStatusTag::parse(&view.lead_status_tag).ok_or_else(|| Error::CorruptRow {
            table: "lead_analytics",
            reason: format!(
                "lead_status_tag `{}` is not Hot, Warm or Cold",
                view.lead_status_tag
            ),
        })?;
    let analyzer = match view.analyzer.as_str() {
        "openai" => Analyzer::OpenAi,
        "local" => Analyzer::Local,
        other => {
            return Err(Error::CorruptRow {
                table: "lead_analytics",
                reason: format!("analyzer `{other}` is unknown"),
            })
        }
    };
    let reasoning = match &view.reasoning {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let analysis = LeadAnalysis {
        total_score: view.total_score,
        intent_level: view.intent_level.clone(),
        intent_score: view.intent_score,
        urgency_level: view.urgency_level.clone(),
        urgency_score: view.urgency_score,
        budget_constraint: view.budget_constraint.clone(),
        budget_score: view.budget_score,
        fit_alignment: view.fit_alignment.clone(),
        fit_score: view.fit_score,
        engagement_health: view.engagement_health.clone(),
        engagement_score: view.engagement_score,
        lead_status_tag,
        reasoning,
        company_name: view.company_name.clone(),
        extracted_name: view.extracted_name.clone(),
        extracted_email: view.extracted_email.clone(),
        smart_notification: view.smart_notification.clone(),
        cta_pricing_clicked: view.cta_pricing_clicked,
        cta_demo_clicked: view.cta_demo_clicked,
        cta_followup_clicked: view.cta_followup_clicked,
        cta_sample_clicked: view.cta_sample_clicked,
        cta_escalated_to_human: view.cta_escalated_to_human,
        demo_book_datetime: view.demo_book_datetime.clone(),
    };
    let meta = AnalysisMeta {
        analyzer,
        model: view.model.clone(),
        response_id: None,
        tokens_used: view.tokens_used,
    };
    Ok((analysis, meta))
}
