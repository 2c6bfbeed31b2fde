//! The review workflow: queue, assignment, plate edits, decisions and the
//! four-eyes rule.
//!
//! States of a case (one package = one case); nothing is ever deleted:
//!
//! ```text
//! new ──confirm──────────────────────────────▶ confirmed
//!  │ ──propose dismissal──▶ dismissal_pending ──approve (another supervisor)──▶ dismissed
//!  │ ──propose downgrade──▶ downgrade_pending ──approve (another supervisor)──▶ downgraded
//!  ◀──────────────── reject ───────────────┘
//! ```
//!
//! A dismissal or downgrade needs a reason code and free text, and stays
//! open until a supervisor *other than its proposer* approves it. A
//! downgrade may only go to a strictly lighter violation
//! ([`SEVERITY`]). Every change and its audit row commit together.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::audit::AuditEntry;
use crate::auth::{Role, Session};
use crate::store::{now_us, plate_key, Store, StoreError};

/// Violation kinds from the most to the least serious; a downgrade moves
/// down this list.
pub const SEVERITY: [&str; 5] = [
    "wrong_way",
    "red_light",
    "speeding",
    "lane_movement",
    "stop_line_encroachment",
];

/// Why an event may be dismissed or downgraded (the codes operators pick).
pub const REASON_CODES: [(&str, &str); 7] = [
    ("not_a_violation", "The footage shows no violation"),
    ("emergency_vehicle", "Emergency vehicle on duty"),
    (
        "directed_by_officer",
        "Directed through by a traffic officer",
    ),
    ("signal_fault", "Signal fault or wrong signal data"),
    ("detection_error", "Wrong vehicle or a detection error"),
    ("duplicate_event", "Duplicate of another event"),
    ("lesser_violation", "A lighter violation than detected"),
];

pub fn violation_label(kind: &str) -> &str {
    match kind {
        "red_light" => "Red light",
        "stop_line_encroachment" => "Stop-line encroachment",
        "speeding" => "Speeding",
        "wrong_way" => "Wrong way",
        "lane_movement" => "Lane movement",
        other => other,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no event {0}")]
    NotFound(String),
    /// The request does not fit the case's state.
    #[error("{0}")]
    Conflict(String),
    /// The four-eyes rule, or a role that may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        ReviewError::Store(e.into())
    }
}

/// A case as the queue and event page show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub event_id: String,
    pub device_id: String,
    pub camera: String,
    pub sequence: i64,
    pub violation_type: String,
    pub current_type: String,
    pub event_at_us: i64,
    pub plate: Option<String>,
    pub reviewed_plate: Option<String>,
    pub plate_colour: Option<String>,
    pub agency_flag: bool,
    pub agency_notified_by: Option<String>,
    pub status: String,
    pub assigned_to: Option<String>,
    pub received_at_us: i64,
    pub clock_sync: Option<String>,
    pub signal_conflict: bool,
    pub place: Option<String>,
    pub manifest_sha256: String,
}

impl Case {
    pub fn is_open(&self) -> bool {
        matches!(
            self.status.as_str(),
            "new" | "dismissal_pending" | "downgrade_pending"
        )
    }
}

const CASE_COLUMNS: &str = "event_id, device_id, camera, sequence, violation_type, \
    COALESCE(current_type, violation_type), event_at_us, plate, reviewed_plate, plate_colour, \
    agency_flag, agency_notified_by, status, assigned_to, received_at_us, clock_sync, \
    signal_conflict, place, manifest_sha256";

fn case_from(r: &AnyRow) -> Result<Case, sqlx::Error> {
    Ok(Case {
        event_id: r.try_get(0)?,
        device_id: r.try_get(1)?,
        camera: r.try_get(2)?,
        sequence: r.try_get(3)?,
        violation_type: r.try_get(4)?,
        current_type: r.try_get(5)?,
        event_at_us: r.try_get(6)?,
        plate: r.try_get(7)?,
        reviewed_plate: r.try_get(8)?,
        plate_colour: r.try_get(9)?,
        agency_flag: r.try_get::<i64, _>(10)? != 0,
        agency_notified_by: r.try_get(11)?,
        status: r.try_get(12)?,
        assigned_to: r.try_get(13)?,
        received_at_us: r.try_get(14)?,
        clock_sync: r.try_get(15)?,
        signal_conflict: r.try_get::<i64, _>(16)? != 0,
        place: r.try_get(17)?,
        manifest_sha256: r.try_get(18)?,
    })
}

/// Queue filters; `None` is "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilter {
    pub camera: Option<String>,
    pub violation_type: Option<String>,
    /// A status, or `open` for every status still waiting for someone.
    pub status: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
    pub assigned_to: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub reason_code: Option<String>,
    pub reason_text: Option<String>,
    pub from_type: String,
    pub to_type: Option<String>,
    pub decided_by: String,
    pub decided_at_us: i64,
    pub approval: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at_us: Option<i64>,
    pub approval_note: Option<String>,
}

const DECISION_COLUMNS: &str = "id, event_id, kind, reason_code, reason_text, from_type, to_type, \
    decided_by, decided_at_us, approval, approved_by, approved_at_us, approval_note";

fn decision_from(r: &AnyRow) -> Result<Decision, sqlx::Error> {
    Ok(Decision {
        id: r.try_get(0)?,
        event_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        reason_code: r.try_get(3)?,
        reason_text: r.try_get(4)?,
        from_type: r.try_get(5)?,
        to_type: r.try_get(6)?,
        decided_by: r.try_get(7)?,
        decided_at_us: r.try_get(8)?,
        approval: r.try_get(9)?,
        approved_by: r.try_get(10)?,
        approved_at_us: r.try_get(11)?,
        approval_note: r.try_get(12)?,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlateEdit {
    pub old_plate: Option<String>,
    pub new_plate: String,
    pub edited_by: String,
    pub edited_at_us: i64,
}

/// Per-camera integrity, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraHealth {
    pub device_id: String,
    pub camera: String,
    pub packages: i64,
    pub last_sequence: i64,
    pub last_contact_us: i64,
    pub gaps: i64,
    pub gap_alerts: i64,
    pub other_alerts: i64,
    pub clock_sync: Option<String>,
    pub signal_conflicts: i64,
}

/// A proposal to close an event without confirming it as detected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    Dismiss,
    /// To a lighter violation kind.
    Downgrade {
        to_type: String,
    },
}

impl Store {
    pub async fn case(&self, event_id: &str) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM packages WHERE event_id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(case_from).transpose()?)
    }

    /// The stored manifest JSON and media path of an event.
    pub async fn package_files(
        &self,
        event_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT manifest, media_path FROM packages WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    pub async fn queue(&self, f: &QueueFilter) -> Result<Vec<Case>, StoreError> {
        let mut sql = format!("SELECT {CASE_COLUMNS} FROM packages WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&clause.replace("?", &format!("${}", binds.len())));
        };
        if let Some(c) = &f.camera {
            push(&mut sql, " AND camera = ?", Bind::Text(c.clone()));
        }
        if let Some(t) = &f.violation_type {
            push(
                &mut sql,
                " AND COALESCE(current_type, violation_type) = ?",
                Bind::Text(t.clone()),
            );
        }
        match f.status.as_deref() {
            Some("open") => {
                sql.push_str(" AND status IN ('new', 'dismissal_pending', 'downgrade_pending')")
            }
            Some(s) => push(&mut sql, " AND status = ?", Bind::Text(s.to_owned())),
            None => {}
        }
        if let Some(t) = f.from_us {
            push(&mut sql, " AND event_at_us >= ?", Bind::Int(t));
        }
        if let Some(t) = f.to_us {
            push(&mut sql, " AND event_at_us < ?", Bind::Int(t));
        }
        if let Some(a) = &f.assigned_to {
            push(&mut sql, " AND assigned_to = ?", Bind::Text(a.clone()));
        }
        push(
            &mut sql,
            " ORDER BY event_at_us, event_id LIMIT ?",
            Bind::Int(if f.limit > 0 { f.limit } else { 200 }),
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        Ok(rows.iter().map(case_from).collect::<Result<_, _>>()?)
    }

    /// Distinct cameras with events, for the queue's filter.
    pub async fn cameras(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT camera FROM packages ORDER BY camera")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
    }

    /// The next open event after `event_id` in queue order (for "next").
    pub async fn next_open(&self, after: &Case) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT event_id FROM packages \
             WHERE status IN ('new', 'dismissal_pending', 'downgrade_pending') \
             AND (event_at_us > $1 OR (event_at_us = $1 AND event_id > $2)) \
             ORDER BY event_at_us, event_id LIMIT 1",
        )
        .bind(after.event_at_us)
        .bind(&after.event_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn decisions(&self, event_id: &str) -> Result<Vec<Decision>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE event_id = $1 ORDER BY id"
        ))
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decision_from).collect::<Result<_, _>>()?)
    }

    /// Every decision, oldest first (the CSV export).
    pub async fn all_decisions(&self) -> Result<Vec<Decision>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decision_from).collect::<Result<_, _>>()?)
    }

    /// Dismissals and downgrades waiting for approval.
    pub async fn pending_decisions(&self) -> Result<Vec<Decision>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions \
             WHERE approval IS NULL AND kind IN ('dismiss', 'downgrade') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(decision_from).collect::<Result<_, _>>()?)
    }

    pub async fn plate_edits(&self, event_id: &str) -> Result<Vec<PlateEdit>, StoreError> {
        let rows = sqlx::query(
            "SELECT old_plate, new_plate, edited_by, edited_at_us FROM plate_edits \
             WHERE event_id = $1 ORDER BY id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PlateEdit {
                    old_plate: r.try_get(0)?,
                    new_plate: r.try_get(1)?,
                    edited_by: r.try_get(2)?,
                    edited_at_us: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Records that `who` looked at an event.
    pub async fn record_view(&self, who: &str, event_id: &str) -> Result<(), StoreError> {
        self.audit(AuditEntry::new(who, "view", event_id, "")).await
    }

    /// Corrects an event's plate. Valid Vietnamese plates are stored in
    /// their canonical form; anything else must at least look like a plate.
    pub async fn edit_plate(
        &self,
        who: &Session,
        event_id: &str,
        plate: &str,
    ) -> Result<String, ReviewError> {
        let key = plate_key(plate);
        if !(4..=12).contains(&key.len())
            || !plate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ' '))
        {
            return Err(ReviewError::BadInput(format!(
                "plate {plate:?}: use 4 to 12 letters and digits, with '-', '.' or spaces"
            )));
        }
        let text = vigil_plate::parse_compact(&key).map_or(key.clone(), |p| p.canonical());
        let mut tx = self.begin_audited().await?;
        let case = case_in(tx.conn(), event_id).await?;
        if !case.is_open() {
            return Err(ReviewError::Conflict(format!(
                "event {event_id} is {}; its plate can no longer change",
                case.status
            )));
        }
        let old = case.reviewed_plate.clone();
        if old.as_deref() == Some(text.as_str()) {
            return Ok(text);
        }
        sqlx::query(
            "INSERT INTO plate_edits (id, event_id, old_plate, new_plate, edited_by, edited_at_us) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5 FROM plate_edits",
        )
        .bind(event_id)
        .bind(&old)
        .bind(&text)
        .bind(&who.username)
        .bind(now_us())
        .execute(tx.conn())
        .await?;
        sqlx::query("UPDATE packages SET reviewed_plate = $1, plate_key = $2 WHERE event_id = $3")
            .bind(&text)
            .bind(plate_key(&text))
            .bind(event_id)
            .execute(tx.conn())
            .await?;
        tx.record(AuditEntry::new(
            &who.username,
            "plate_edit",
            event_id,
            format!("{} -> {text}", old.as_deref().unwrap_or("(none)")),
        ))
        .await?;
        tx.commit().await?;
        Ok(text)
    }

    /// Assigns an open event to a reviewer. Operators may take an event
    /// for themselves; supervisors may assign it to anyone who reviews.
    pub async fn assign(&self, who: &Session, event_id: &str, to: &str) -> Result<(), ReviewError> {
        if who.role == Role::Operator && to != who.username {
            return Err(ReviewError::Forbidden(
                "operators may only take events for themselves".into(),
            ));
        }
        let mut tx = self.begin_audited().await?;
        let role = sqlx::query("SELECT role FROM users WHERE username = $1 AND active = 1")
            .bind(to)
            .fetch_optional(tx.conn())
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?;
        if !matches!(role.as_deref(), Some("operator" | "supervisor")) {
            return Err(ReviewError::BadInput(format!(
                "{to:?} is not an active operator or supervisor"
            )));
        }
        let case = case_in(tx.conn(), event_id).await?;
        if !case.is_open() {
            return Err(ReviewError::Conflict(format!(
                "event {event_id} is {}",
                case.status
            )));
        }
        sqlx::query("UPDATE packages SET assigned_to = $1 WHERE event_id = $2")
            .bind(to)
            .bind(event_id)
            .execute(tx.conn())
            .await?;
        tx.record(AuditEntry::new(
            &who.username,
            "assign",
            event_id,
            format!("to {to}"),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms a new event as detected (or as last edited).
    pub async fn confirm(&self, who: &Session, event_id: &str) -> Result<(), ReviewError> {
        let mut tx = self.begin_audited().await?;
        let case = case_in(tx.conn(), event_id).await?;
        if case.status != "new" {
            return Err(ReviewError::Conflict(format!(
                "event {event_id} is {}; only a new event can be confirmed",
                case.status
            )));
        }
        insert_decision(
            tx.conn(),
            event_id,
            "confirm",
            None,
            None,
            &case.current_type,
            None,
            &who.username,
        )
        .await?;
        set_status(tx.conn(), event_id, "confirmed").await?;
        tx.record(AuditEntry::new(
            &who.username,
            "confirm",
            event_id,
            format!(
                "{} plate {}",
                case.current_type,
                case.reviewed_plate.as_deref().unwrap_or("(unread)")
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Proposes a dismissal or downgrade; it waits for another supervisor.
    pub async fn propose(
        &self,
        who: &Session,
        event_id: &str,
        proposal: &Proposal,
        reason_code: &str,
        reason_text: &str,
    ) -> Result<i64, ReviewError> {
        if !REASON_CODES.iter().any(|(c, _)| *c == reason_code) {
            return Err(ReviewError::BadInput(format!(
                "reason code {reason_code:?} is not one of {}",
                REASON_CODES.map(|(c, _)| c).join(", ")
            )));
        }
        let text = reason_text.trim();
        if text.chars().count() < 5 {
            return Err(ReviewError::BadInput(
                "explain the reason in a few words (5 characters at least)".into(),
            ));
        }
        let mut tx = self.begin_audited().await?;
        let case = case_in(tx.conn(), event_id).await?;
        if case.status != "new" {
            return Err(ReviewError::Conflict(format!(
                "event {event_id} is {}; only a new event can be dismissed or downgraded",
                case.status
            )));
        }
        let (kind, to_type, status) = match proposal {
            Proposal::Dismiss => ("dismiss", None, "dismissal_pending"),
            Proposal::Downgrade { to_type } => {
                let rank = |k: &str| SEVERITY.iter().position(|s| *s == k);
                match (rank(&case.current_type), rank(to_type)) {
                    (Some(from), Some(to)) if to > from => {}
                    _ => {
                        return Err(ReviewError::BadInput(format!(
                            "{to_type:?} is not a lighter violation than {}",
                            case.current_type
                        )))
                    }
                }
                ("downgrade", Some(to_type.as_str()), "downgrade_pending")
            }
        };
        let id = insert_decision(
            tx.conn(),
            event_id,
            kind,
            Some(reason_code),
            Some(text),
            &case.current_type,
            to_type,
            &who.username,
        )
        .await?;
        set_status(tx.conn(), event_id, status).await?;
        tx.record(AuditEntry::new(
            &who.username,
            format!("propose_{kind}"),
            event_id,
            format!(
                "decision {id}: {reason_code}: {text}{}",
                to_type.map(|t| format!(" (to {t})")).unwrap_or_default()
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Approves (`approve = true`) or rejects a pending dismissal or
    /// downgrade. Only a supervisor who did not propose it may.
    pub async fn settle(
        &self,
        who: &Session,
        decision_id: i64,
        approve: bool,
        note: &str,
    ) -> Result<String, ReviewError> {
        if who.role != Role::Supervisor {
            return Err(ReviewError::Forbidden(
                "only a supervisor approves or rejects".into(),
            ));
        }
        let mut tx = self.begin_audited().await?;
        let row = sqlx::query(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1"
        ))
        .bind(decision_id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(d) = row.as_ref().map(decision_from).transpose()? else {
            return Err(ReviewError::NotFound(format!("decision {decision_id}")));
        };
        if d.approval.is_some() || !matches!(d.kind.as_str(), "dismiss" | "downgrade") {
            return Err(ReviewError::Conflict(format!(
                "decision {decision_id} is not waiting for approval"
            )));
        }
        if d.decided_by == who.username {
            return Err(ReviewError::Forbidden(format!(
                "{} proposed this {}; a different supervisor must approve or reject it",
                who.username, d.kind
            )));
        }
        let (verdict, status) = match (approve, d.kind.as_str()) {
            (true, "dismiss") => ("approved", "dismissed"),
            (true, _) => ("approved", "downgraded"),
            (false, _) => ("rejected", "new"),
        };
        sqlx::query(
            "UPDATE decisions SET approval = $1, approved_by = $2, approved_at_us = $3, \
             approval_note = $4 WHERE id = $5 AND approval IS NULL",
        )
        .bind(verdict)
        .bind(&who.username)
        .bind(now_us())
        .bind(note.trim())
        .bind(decision_id)
        .execute(tx.conn())
        .await?;
        set_status(tx.conn(), &d.event_id, status).await?;
        if approve {
            if let Some(to) = &d.to_type {
                sqlx::query("UPDATE packages SET current_type = $1 WHERE event_id = $2")
                    .bind(to)
                    .bind(&d.event_id)
                    .execute(tx.conn())
                    .await?;
            }
        }
        tx.record(AuditEntry::new(
            &who.username,
            if approve { "approve" } else { "reject" },
            &d.event_id,
            format!(
                "decision {decision_id} ({} by {}): {}",
                d.kind,
                d.decided_by,
                note.trim()
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(d.event_id)
    }

    /// Records that a state-agency vehicle's agency was notified.
    pub async fn mark_agency_notified(
        &self,
        who: &Session,
        event_id: &str,
        note: &str,
    ) -> Result<(), ReviewError> {
        let mut tx = self.begin_audited().await?;
        let case = case_in(tx.conn(), event_id).await?;
        if !case.agency_flag {
            return Err(ReviewError::Conflict(format!(
                "event {event_id} is not flagged for an agency"
            )));
        }
        sqlx::query("UPDATE packages SET agency_notified_by = $1 WHERE event_id = $2")
            .bind(&who.username)
            .bind(event_id)
            .execute(tx.conn())
            .await?;
        tx.record(AuditEntry::new(
            &who.username,
            "agency_notified",
            event_id,
            note.trim(),
        ))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events with a state-agency plate, newest first.
    pub async fn agency_cases(&self) -> Result<Vec<Case>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM packages WHERE agency_flag = 1 \
             ORDER BY event_at_us DESC LIMIT 500"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(case_from).collect::<Result<_, _>>()?)
    }

    /// Confirmed (or downgraded) violations of a plate: the public lookup.
    pub async fn confirmed_for_plate(&self, plate: &str) -> Result<Vec<Case>, StoreError> {
        let key = plate_key(plate);
        if key.len() < 4 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM packages WHERE plate_key = $1 \
             AND status IN ('confirmed', 'downgraded') ORDER BY event_at_us DESC LIMIT 200"
        ))
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(case_from).collect::<Result<_, _>>()?)
    }

    /// Per-camera integrity figures.
    pub async fn camera_health(&self) -> Result<Vec<CameraHealth>, StoreError> {
        let rows = sqlx::query(
            "SELECT device_id, camera, COUNT(*), MAX(sequence), MAX(received_at_us), \
             COUNT(CASE WHEN signal_conflict = 1 THEN 1 END) FROM packages GROUP BY device_id, camera \
             ORDER BY device_id, camera",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let device_id: String = r.try_get(0)?;
            let camera: String = r.try_get(1)?;
            let packages: i64 = r.try_get(2)?;
            let last_sequence: i64 = r.try_get(3)?;
            let clock_sync = sqlx::query(
                "SELECT clock_sync FROM packages WHERE device_id = $1 AND camera = $2 \
                 ORDER BY sequence DESC LIMIT 1",
            )
            .bind(&device_id)
            .bind(&camera)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<String>, _>(0))
            .transpose()?
            .flatten();
            let alerts = sqlx::query(
                "SELECT kind, COUNT(*) FROM alerts WHERE device_id = $1 AND camera = $2 \
                 GROUP BY kind",
            )
            .bind(&device_id)
            .bind(&camera)
            .fetch_all(&self.pool)
            .await?;
            let (mut gap_alerts, mut other_alerts) = (0, 0);
            for a in alerts {
                let kind: String = a.try_get(0)?;
                let n: i64 = a.try_get(1)?;
                match kind.as_str() {
                    "sequence_gap" => gap_alerts += n,
                    // A late package closing a gap is good news.
                    "gap_filled" => {}
                    _ => other_alerts += n,
                }
            }
            out.push(CameraHealth {
                device_id,
                camera,
                packages,
                last_sequence,
                last_contact_us: r.try_get(4)?,
                // Missing sequence numbers up to the newest one received.
                gaps: last_sequence - packages,
                gap_alerts,
                other_alerts,
                clock_sync,
                signal_conflicts: r.try_get(5)?,
            });
        }
        Ok(out)
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

async fn case_in(conn: &mut sqlx::AnyConnection, event_id: &str) -> Result<Case, ReviewError> {
    let row = sqlx::query(&format!(
        "SELECT {CASE_COLUMNS} FROM packages WHERE event_id = $1"
    ))
    .bind(event_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref()
        .map(case_from)
        .transpose()?
        .ok_or_else(|| ReviewError::NotFound(event_id.to_owned()))
}

async fn set_status(
    conn: &mut sqlx::AnyConnection,
    event_id: &str,
    status: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE packages SET status = $1 WHERE event_id = $2")
        .bind(status)
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn insert_decision(
    conn: &mut sqlx::AnyConnection,
    event_id: &str,
    kind: &str,
    reason_code: Option<&str>,
    reason_text: Option<&str>,
    from_type: &str,
    to_type: Option<&str>,
    by: &str,
) -> Result<i64, sqlx::Error> {
    let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM decisions")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO decisions (id, event_id, kind, reason_code, reason_text, from_type, to_type, \
         decided_by, decided_at_us, approval) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id)
    .bind(event_id)
    .bind(kind)
    .bind(reason_code)
    .bind(reason_text)
    .bind(from_type)
    .bind(to_type)
    .bind(by)
    .bind(now_us())
    // A confirmation needs no second person.
    .bind((kind == "confirm").then_some("not_required"))
    .execute(&mut *conn)
    .await?;
    Ok(id)
}
