use std::time::Duration;

use calltrail_eventlog::{Checkpoint, EventLog, Wakeups};
use calltrail_testkit::TestDb;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::support::{config, event, log};

/// A follower: waits for wake-ups and forwards every new event's stream id.
fn follow(log: EventLog, mut wakeups: Wakeups) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut checkpoint = Checkpoint::START;
        loop {
            let Ok(batch) = log.read_after(checkpoint, 100).await else {
                return;
            };
            for e in batch {
                checkpoint = e.checkpoint();
                if tx.send(e.stream_id).is_err() {
                    return;
                }
            }
            wakeups.wait().await;
        }
    });
    rx
}

/// How long a follower may take to see an event. Well under the 60 s poll interval of the
/// NOTIFY case (so seeing the event there still proves NOTIFY and its re-checks woke the
/// follower), and generous beside the 300 ms polling interval: a gap-safe read waits for the
/// oldest transaction on the whole server, which other databases' work (parallel test runs)
/// can hold for seconds.
const DEADLINE: Duration = Duration::from_secs(30);

async fn appended_event_is_seen(notify: bool) {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    // A long poll interval proves NOTIFY is what wakes the follower; a short one with
    // polling only proves a lost notification costs at most one interval.
    let mut wakeups = if notify {
        log.wakeups(Duration::from_secs(60))
    } else {
        log.polling_wakeups(Duration::from_millis(300))
    };
    assert_eq!(
        wakeups.listen_now().await,
        notify,
        "LISTEN is in place before anything is appended"
    );
    let mut seen = follow(log.clone(), wakeups);

    appender
        .append(event(Uuid::new_v4(), "wake-me", "ringing", "{}"))
        .await
        .unwrap();
    let got = tokio::time::timeout(DEADLINE, seen.recv()).await;
    assert_eq!(got.ok().flatten().as_deref(), Some("wake-me"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_is_woken_by_notify() {
    appended_event_is_seen(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_still_sees_events_when_notify_is_lost() {
    appended_event_is_seen(false).await;
}
