//! The review workflow against both backends: decisions, the four-eyes
//! rule, plate edits, agency flags, the public lookup, and the audit chain
//! with its tamper checks.

mod common;

use common::{database, ingest_packages, session, store};
use sqlx::Executor;
use vigil_case::review::{Proposal, QueueFilter, ReviewError};
use vigil_case::Role;

async fn review_story(backend: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let db = database(backend, dir.path(), "review").await;
    let store = store(&db.url, dir.path()).await;
    let ids = ingest_packages(&store, dir.path(), "cam-a", 5, |n| n == 5).await;
    let (op1, sup1, sup2) = (
        session("op1", Role::Operator),
        session("sup1", Role::Supervisor),
        session("sup2", Role::Supervisor),
    );

    // Everything ingested waits in the open queue.
    let open = QueueFilter {
        status: Some("open".into()),
        ..QueueFilter::default()
    };
    assert_eq!(store.queue(&open).await.expect("queue").len(), 5);

    // Confirm, with a plate correction recorded first.
    let fixed = store
        .edit_plate(&op1, &ids[0], "12b1 23457")
        .await
        .expect("edit");
    assert_eq!(fixed, "12-B1 234.57", "valid plates are stored canonical");
    store.confirm(&op1, &ids[0]).await.expect("confirm");
    let edits = store.plate_edits(&ids[0]).await.expect("edits");
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].old_plate.as_deref(), Some("12-B1 234.56"));
    assert!(matches!(
        store.confirm(&op1, &ids[0]).await,
        Err(ReviewError::Conflict(_))
    ));
    assert!(
        matches!(
            store.edit_plate(&op1, &ids[0], "12B123458").await,
            Err(ReviewError::Conflict(_))
        ),
        "a closed event's plate does not change"
    );

    // A supervisor's own dismissal: pending, still open, and they cannot
    // approve it themselves.
    let reason = "vehicle stopped before the line";
    assert!(
        matches!(
            store
                .propose(&sup1, &ids[1], &Proposal::Dismiss, "not_a_violation", "")
                .await,
            Err(ReviewError::BadInput(_))
        ),
        "a dismissal needs free text"
    );
    assert!(
        matches!(
            store
                .propose(&sup1, &ids[1], &Proposal::Dismiss, "because", reason)
                .await,
            Err(ReviewError::BadInput(_))
        ),
        "a dismissal needs a known reason code"
    );
    let d = store
        .propose(
            &sup1,
            &ids[1],
            &Proposal::Dismiss,
            "not_a_violation",
            reason,
        )
        .await
        .expect("propose");
    let case = store.case(&ids[1]).await.expect("case").expect("row");
    assert_eq!(case.status, "dismissal_pending");
    assert!(case.is_open(), "not closed before approval");
    let err = store
        .settle(&sup1, d, true, "ok")
        .await
        .expect_err("four eyes");
    assert!(matches!(err, ReviewError::Forbidden(_)), "{err}");
    assert!(err.to_string().contains("different supervisor"), "{err}");
    assert!(
        matches!(
            store.settle(&op1, d, true, "ok").await,
            Err(ReviewError::Forbidden(_))
        ),
        "operators do not approve"
    );
    assert_eq!(
        store
            .case(&ids[1])
            .await
            .expect("case")
            .expect("row")
            .status,
        "dismissal_pending"
    );
    store
        .settle(&sup2, d, true, "agreed")
        .await
        .expect("approve");
    assert_eq!(
        store
            .case(&ids[1])
            .await
            .expect("case")
            .expect("row")
            .status,
        "dismissed"
    );
    assert!(matches!(
        store.settle(&sup2, d, true, "again").await,
        Err(ReviewError::Conflict(_))
    ));

    // Downgrades go only to lighter violations; a rejection reopens.
    assert!(matches!(
        store
            .propose(
                &op1,
                &ids[2],
                &Proposal::Downgrade {
                    to_type: "wrong_way".into()
                },
                "lesser_violation",
                "it was lighter"
            )
            .await,
        Err(ReviewError::BadInput(_))
    ));
    let g = store
        .propose(
            &op1,
            &ids[2],
            &Proposal::Downgrade {
                to_type: "stop_line_encroachment".into(),
            },
            "lesser_violation",
            "stopped over the line only",
        )
        .await
        .expect("downgrade");
    store
        .settle(&sup1, g, false, "the footage shows a crossing")
        .await
        .expect("reject");
    assert_eq!(
        store.case(&ids[2]).await.expect("c").expect("r").status,
        "new"
    );
    let g = store
        .propose(
            &op1,
            &ids[2],
            &Proposal::Downgrade {
                to_type: "stop_line_encroachment".into(),
            },
            "lesser_violation",
            "second look: over the line only",
        )
        .await
        .expect("downgrade again");
    store
        .settle(&sup1, g, true, "agreed")
        .await
        .expect("approve");
    let c = store.case(&ids[2]).await.expect("c").expect("r");
    assert_eq!(
        (
            c.status.as_str(),
            c.current_type.as_str(),
            c.violation_type.as_str()
        ),
        ("downgraded", "stop_line_encroachment", "red_light"),
        "the detection stays on record"
    );

    // Blue plates are flagged for their agency.
    let agency = store.agency_cases().await.expect("agency");
    assert_eq!(
        agency
            .iter()
            .map(|c| c.event_id.clone())
            .collect::<Vec<_>>(),
        vec![ids[4].clone()]
    );

    // The public sees confirmed (and downgraded) violations only.
    let found = store
        .confirmed_for_plate("12-B1 234.57")
        .await
        .expect("lookup");
    assert_eq!(
        found.iter().map(|c| c.event_id.clone()).collect::<Vec<_>>(),
        vec![ids[0].clone()]
    );
    let found = store
        .confirmed_for_plate("12b123456")
        .await
        .expect("lookup");
    assert_eq!(
        found.iter().map(|c| c.event_id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone()],
        "the dismissed and the unreviewed events of this plate are not shown"
    );

    // Every action is in the chain, which verifies...
    let report = store.verify_audit().await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.problems);
    let actions: Vec<String> = store
        .audit_rows()
        .await
        .expect("rows")
        .into_iter()
        .map(|r| r.action)
        .collect();
    for a in [
        "ingest",
        "plate_edit",
        "confirm",
        "propose_dismiss",
        "approve",
        "reject",
        "propose_downgrade",
        "user_created",
        "device_registered",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }

    // ...and any change to it is found: modified, removed, and cut short.
    let rows = store.audit_rows().await.expect("rows");
    let mid = rows[rows.len() / 2].seq;
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
    pool.execute(
        format!("UPDATE audit_log SET detail = 'nothing happened' WHERE seq = {mid}").as_str(),
    )
    .await
    .expect("tamper");
    let report = store.verify_audit().await.expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("row {mid}: content does not match"))),
        "{:?}",
        report.problems
    );
    pool.execute(format!("DELETE FROM audit_log WHERE seq = {mid}").as_str())
        .await
        .expect("remove");
    let report = store.verify_audit().await.expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("row {}: expected sequence {mid}", mid + 1))),
        "{:?}",
        report.problems
    );
    let last = rows.last().expect("rows").seq;
    pool.execute(format!("DELETE FROM audit_log WHERE seq > {}", last - 3).as_str())
        .await
        .expect("truncate");
    let report = store.verify_audit().await.expect("verify");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("rows removed from the end")),
        "{:?}",
        report.problems
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_workflow_and_audit_chain_on_sqlite() {
    review_story("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_workflow_and_audit_chain_on_postgresql() {
    review_story("postgres").await;
}
