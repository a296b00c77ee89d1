//! Scheduled tasks: cron expressions in a time zone that start, stop, restart or command a
//! server. [`Catalyst::run_due_tasks`] fires what is due: each firing is claimed by moving the
//! task's `next_run_at` with a compare-and-swap, so with several control planes on one
//! database exactly one runs it. A task acts as its creator and runs only if the creator still
//! holds the permission when it fires.

use std::time::Duration;

use catalyst_core::id::{ServerId, TaskId};
use catalyst_core::model::{CatchUp, Page, Paged, ScheduledTask, TaskAction, Timestamp};
use catalyst_core::permission::{Permission, Principal};
use catalyst_core::schedule::Schedule;
use catalyst_core::{Error, ErrorKind, Result, validate};
use serde_json::json;

use super::{Catalyst, NewTask, TaskPatch, Who};

/// A firing later than this is "missed" and follows the task's catch-up policy.
pub const MISSED_AFTER: Duration = Duration::from_secs(60);
/// Tasks fired per pass.
const BATCH: u32 = 100;

/// The permission an action needs on its server.
fn needs(action: &TaskAction) -> Permission {
    match action {
        TaskAction::Start => Permission::ServerStart,
        TaskAction::Stop => Permission::ServerStop,
        TaskAction::Restart => Permission::ServerRestart,
        TaskAction::Backup => Permission::BackupCreate,
        TaskAction::Command(_) => Permission::ConsoleWrite,
    }
}

fn check_action(action: &TaskAction) -> Result<()> {
    match action {
        TaskAction::Command(c) if c.is_empty() || c.len() > 4096 || c.contains(['\n', '\r', '\0']) => {
            Err(Error::invalid("action: a command is one line of 1 to 4096 bytes"))
        }
        _ => Ok(()),
    }
}

impl Catalyst {
    /// Create a task (`task.create` on the server, plus what its action needs).
    pub async fn create_task(&self, who: &Principal, input: NewTask) -> Result<ScheduledTask> {
        let creator = who.user_id().ok_or_else(|| Error::invalid("tasks belong to users"))?;
        self.check_server_permission(who, input.server_id, Permission::TaskCreate).await?;
        self.check_server_permission(who, input.server_id, needs(&input.action)).await?;
        check_action(&input.action)?;
        let schedule = Schedule::parse(&input.cron, &input.timezone)?;
        let task = ScheduledTask {
            id: TaskId::new(),
            server_id: input.server_id,
            name: validate::name("name", &input.name, 100)?,
            cron: input.cron,
            timezone: input.timezone,
            action: input.action,
            enabled: input.enabled,
            catch_up: input.catch_up,
            created_by: creator,
            last_run_at: None,
            next_run_at: schedule.next_after(self.now()),
            run_count: 0,
            last_result: None,
            last_error: None,
            version: 0,
        };
        self.inner.store.create_task(&task).await?;
        let details = json!({"name": task.name, "cron": task.cron, "action": task.action});
        self.audit(Who::Principal(who), "task.create", ("task", Some(task.id.to_string())), true, details).await;
        Ok(task)
    }

    /// A task the caller may see (`task.read` on its server); others are `not_found`.
    pub async fn get_task(&self, who: &Principal, id: TaskId) -> Result<ScheduledTask> {
        self.task_with(who, id, Permission::TaskRead).await
    }

    /// Tasks of a server (`task.read`), or of every server with a global `task.read`.
    pub async fn list_tasks(
        &self,
        who: &Principal,
        server: Option<ServerId>,
        page: Page,
    ) -> Result<Paged<ScheduledTask>> {
        match server {
            Some(id) => self.check_server_permission(who, id, Permission::TaskRead).await?,
            None if who.holds(Permission::TaskRead) => {}
            None => return Err(Error::invalid("server_id: required unless you may read every task")),
        }
        self.inner.store.list_tasks(server, page).await
    }

    /// Change, enable or disable a task (`task.update`).
    pub async fn update_task(&self, who: &Principal, id: TaskId, patch: TaskPatch) -> Result<ScheduledTask> {
        let mut task = self.task_with(who, id, Permission::TaskUpdate).await?;
        if let Some(name) = &patch.name {
            task.name = validate::name("name", name, 100)?;
        }
        if let Some(action) = patch.action {
            check_action(&action)?;
            self.check_server_permission(who, task.server_id, needs(&action)).await?;
            task.action = action;
        }
        task.cron = patch.cron.unwrap_or(task.cron);
        task.timezone = patch.timezone.unwrap_or(task.timezone);
        task.enabled = patch.enabled.unwrap_or(task.enabled);
        task.catch_up = patch.catch_up.unwrap_or(task.catch_up);
        task.next_run_at = Schedule::parse(&task.cron, &task.timezone)?.next_after(self.now());
        let task = self.inner.store.update_task(&task).await?;
        self.audit(Who::Principal(who), "task.update", ("task", Some(id.to_string())), true, json!({})).await;
        Ok(task)
    }

    /// Delete a task (`task.delete`).
    pub async fn delete_task(&self, who: &Principal, id: TaskId) -> Result<()> {
        self.task_with(who, id, Permission::TaskDelete).await?;
        self.inner.store.delete_task(id).await?;
        self.audit(Who::Principal(who), "task.delete", ("task", Some(id.to_string())), true, json!({})).await;
        Ok(())
    }

    /// Run a task now (`task.execute`), outside its schedule; returns it with the outcome.
    pub async fn execute_task(&self, who: &Principal, id: TaskId) -> Result<ScheduledTask> {
        let task = self.task_with(who, id, Permission::TaskExecute).await?;
        self.fire(task, "manual").await
    }

    async fn task_with(&self, who: &Principal, id: TaskId, permission: Permission) -> Result<ScheduledTask> {
        let task = self.inner.store.get_task(id).await?;
        self.check_server_permission(who, task.server_id, permission)
            .await
            .map_err(|e| if e.kind() == ErrorKind::NotFound { Error::not_found("task") } else { e })?;
        Ok(task)
    }

    /// Fire every task due now; returns how many ran. The scheduler calls this every second;
    /// tests call it under a manual clock.
    pub async fn run_due_tasks(&self) -> Result<usize> {
        let now = self.now();
        let mut ran = 0;
        for task in self.inner.store.due_tasks(now, BATCH).await? {
            let planned = task.next_run_at.unwrap_or(now);
            let missed = is_missed(planned, now);
            let run = !missed || task.catch_up == CatchUp::RunOnce;
            let mut claim = task.clone();
            claim.next_run_at = match Schedule::parse(&task.cron, &task.timezone) {
                Ok(s) => s.next_after(now),
                Err(_) => None,
            };
            if !run {
                claim.last_result = Some(format!("skipped the firing planned for {planned} (missed)"));
            }
            let claimed = match self.inner.store.update_task(&claim).await {
                Ok(t) => t,
                // Another control plane claimed this firing, or the task was deleted.
                Err(e) if matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound) => continue,
                Err(e) => return Err(e),
            };
            if run {
                self.fire(claimed, if missed { "catch-up" } else { "schedule" }).await?;
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Run a task's action as its creator and record the outcome.
    async fn fire(&self, task: ScheduledTask, why: &str) -> Result<ScheduledTask> {
        let creator = self.principal_for(task.created_by).await;
        let outcome = match &creator {
            Ok(who) => self.act(who, &task).await,
            Err(e) => Err(Error::denied(format!("the task's creator cannot act: {}", e.message()))),
        };
        let at = self.now();
        let mut stored = task;
        for _ in 0..8 {
            let mut t = stored.clone();
            t.last_run_at = Some(at);
            t.run_count += 1;
            (t.last_result, t.last_error) = match &outcome {
                Ok(()) => (Some("ok".into()), None),
                Err(e) => (Some(e.code().into()), Some(e.message().to_string())),
            };
            match self.inner.store.update_task(&t).await {
                Ok(t) => {
                    stored = t;
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Conflict => stored = self.inner.store.get_task(t.id).await?,
                Err(e) => return Err(e),
            }
        }
        let details = json!({"why": why, "action": stored.action, "error": stored.last_error});
        let target = ("task", Some(stored.id.to_string()));
        match &creator {
            Ok(who) => self.audit(Who::Principal(who), "task.run", target, outcome.is_ok(), details).await,
            Err(_) => self.audit(Who::Anonymous(None), "task.run", target, false, details).await,
        }
        Ok(stored)
    }

    async fn act(&self, who: &Principal, task: &ScheduledTask) -> Result<()> {
        let id = task.server_id;
        match &task.action {
            TaskAction::Start => self.start_server(who, id).await.map(|_| ()),
            TaskAction::Stop => self.stop_server(who, id).await.map(|_| ()),
            TaskAction::Restart => self.restart_server(who, id).await.map(|_| ()),
            TaskAction::Command(line) => self.send_command(who, id, line).await,
            TaskAction::Backup => self.create_backup(who, id, None).await.map(|_| ()),
        }
    }
}

/// Metrics roll-ups and retention run once per this many scheduler ticks.
const MAINTENANCE_EVERY: u32 = 300;

/// Fire due tasks every `every`, evaluate alert rules and maintain metrics now and then, until
/// the control plane shuts down or is dropped (the loop holds it weakly).
pub(super) fn spawn_scheduler(owner: &Catalyst, every: Duration) {
    let weak = owner.downgrade();
    owner.background().spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut alerts_at = tokio::time::Instant::now();
        for n in 0u32.. {
            tick.tick().await;
            let Some(catalyst) = weak.upgrade() else { return };
            if let Err(e) = catalyst.run_due_tasks().await {
                tracing::warn!(error = %e, "scheduled tasks could not run");
            }
            if tokio::time::Instant::now() >= alerts_at {
                alerts_at = tokio::time::Instant::now() + catalyst.inner.alert_interval;
                if let Err(e) = catalyst.evaluate_alerts().await {
                    tracing::warn!(error = %e, "alert rules could not be evaluated");
                }
            }
            if n % MAINTENANCE_EVERY == 0
                && let Err(e) = catalyst.run_metrics_maintenance().await
            {
                tracing::warn!(error = %e, "metrics maintenance failed");
            }
        }
    });
}

/// When a task planned at `planned` counts as missed at `now`.
fn is_missed(planned: Timestamp, now: Timestamp) -> bool {
    now - planned > chrono::Duration::from_std(MISSED_AFTER).unwrap_or_default()
}
