//! [`Scheduler`]: every enabled sync runs every `every`, from its start.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cdp_calls::Timestamp;
use tokio::task::JoinHandle;

use crate::state::RunRecord;
use crate::{RunReport, Runner, RunnerError};

/// Starts the runs of the syncs as they fall due.
///
/// A sync's runs are due at `start`, `start + every`, `start + 2 × every`, …
/// (`start` is the configured instant, or when the scheduler first sees the sync).
/// Each due run starts in its own task, so a slow sync does not hold up the
/// others. A run that falls due while the previous run of the same sync is still
/// going is not started: it is recorded as skipped, and the sync waits for its next
/// due time. A disabled sync does not run; enabled again, it is due at once and
/// goes on from its last successful `last_sync_time`. A sync that is not set up
/// ([`Runner::setup_error`]: its query fails its checks, or its columns cannot be
/// mapped) does not run; its error is logged once, and the other syncs run.
///
/// [`Scheduler::tick`] does one round (tests drive it with a clock they control);
/// [`Scheduler::run`] ticks every second until told to stop.
#[derive(Debug)]
pub struct Scheduler {
    runner: Arc<Runner>,
    next_due: BTreeMap<String, Timestamp>,
    running: BTreeMap<String, JoinHandle<Result<RunReport, RunnerError>>>,
    /// The syncs found not set up, whose error was logged.
    not_set_up: BTreeSet<String>,
}

impl Scheduler {
    /// A scheduler for the runner's syncs.
    pub fn new(runner: Arc<Runner>) -> Scheduler {
        Scheduler { runner, next_due: BTreeMap::new(), running: BTreeMap::new(), not_set_up: BTreeSet::new() }
    }

    /// The runner.
    pub fn runner(&self) -> &Arc<Runner> {
        &self.runner
    }

    /// When the sync is next due, once the scheduler has seen it.
    pub fn next_due(&self, sync: &str) -> Option<Timestamp> {
        self.next_due.get(sync).copied()
    }

    /// One round: collects finished runs, then starts every run that is due (or
    /// records it as skipped). Returns the records of the runs that finished or were
    /// skipped in this round.
    pub async fn tick(&mut self) -> Result<Vec<RunRecord>, RunnerError> {
        let mut records = self.collect_finished().await?;
        let now = self.runner.clock().now();
        let syncs: Vec<(String, Duration, Option<Timestamp>)> =
            self.runner.config().syncs.iter().map(|s| (s.name.clone(), s.every, s.start)).collect();
        for (name, every, start) in syncs {
            if self.not_set_up.contains(&name) {
                continue;
            }
            if let Some(error) = self.runner.setup_error(&name) {
                tracing::error!(sync = %name, "not scheduled: {error}");
                self.not_set_up.insert(name);
                continue;
            }
            if !self.runner.is_enabled(&name)? {
                // Due again at once when it is enabled again.
                self.next_due.remove(&name);
                continue;
            }
            let due = *self.next_due.entry(name.clone()).or_insert_with(|| start.unwrap_or(now).max(now));
            if now < due {
                continue;
            }
            self.next_due.insert(name.clone(), next_after(due, every, now));
            if self.running.contains_key(&name) {
                records.push(self.runner.record_skipped(&name, now)?.record);
                continue;
            }
            let runner = self.runner.clone();
            let sync = name.clone();
            self.running.insert(name, tokio::spawn(async move { runner.run(&sync).await }));
        }
        Ok(records)
    }

    /// Waits for every run in progress and returns their records.
    pub async fn wait_idle(&mut self) -> Result<Vec<RunRecord>, RunnerError> {
        let mut records = Vec::new();
        for (name, task) in std::mem::take(&mut self.running) {
            records.extend(self.join(&name, task).await?);
        }
        Ok(records)
    }

    /// Ticks every second until `shutdown` completes, then waits for the runs in
    /// progress.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), RunnerError> {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    for record in self.tick().await? {
                        tracing::info!(sync = %record.sync, run = record.run, outcome = %record.outcome, "run ended");
                    }
                }
                () = &mut shutdown => break,
            }
        }
        tracing::info!("stopping: waiting for runs in progress");
        self.wait_idle().await?;
        Ok(())
    }

    async fn collect_finished(&mut self) -> Result<Vec<RunRecord>, RunnerError> {
        let finished: Vec<String> = self
            .running
            .iter()
            .filter(|(_, task)| task.is_finished())
            .map(|(name, _)| name.clone())
            .collect();
        let mut records = Vec::new();
        for name in finished {
            let task = self.running.remove(&name).expect("listed above");
            records.extend(self.join(&name, task).await?);
        }
        Ok(records)
    }

    /// The record of a finished run; `None` for a sync found not set up when the run
    /// was to start (its columns were checked then): it is not scheduled again.
    async fn join(
        &mut self,
        sync: &str,
        task: JoinHandle<Result<RunReport, RunnerError>>,
    ) -> Result<Option<RunRecord>, RunnerError> {
        let report = match task.await {
            Ok(Ok(report)) => report,
            Ok(Err(error)) if error.is_setup_error() => {
                tracing::error!(sync, "not scheduled: {error}");
                self.not_set_up.insert(sync.to_owned());
                return Ok(None);
            }
            Ok(Err(error)) => return Err(error),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a run's task was cancelled: {e}"),
        };
        Ok(Some(report.record))
    }
}

/// The first due time after `now` on the grid `due + k × every`.
fn next_after(due: Timestamp, every: Duration, now: Timestamp) -> Timestamp {
    let every = i64::try_from(every.as_micros()).unwrap_or(i64::MAX).max(1);
    let behind = now.micros_since(due).max(0);
    let steps = behind / every + 1;
    due.checked_add_micros(steps.saturating_mul(every)).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_stay_on_the_grid() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let every = Duration::from_secs(600);
        assert_eq!(
            next_after(t("2026-11-22T10:00:00Z"), every, t("2026-11-22T10:00:00Z")),
            t("2026-11-22T10:10:00Z")
        );
        assert_eq!(
            next_after(t("2026-11-22T10:00:00Z"), every, t("2026-11-22T10:09:59Z")),
            t("2026-11-22T10:10:00Z")
        );
        // Missed due times are not made up for: the next one after now.
        assert_eq!(
            next_after(t("2026-11-22T10:00:00Z"), every, t("2026-11-22T10:35:00Z")),
            t("2026-11-22T10:40:00Z")
        );
    }
}
