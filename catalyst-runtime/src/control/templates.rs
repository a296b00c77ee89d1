//! Templates.

use catalyst_core::id::TemplateId;
use catalyst_core::model::{Page, Paged, Template};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::ports::Signal;
use catalyst_core::{Error, Result, render, validate};
use serde_json::json;

use super::servers::BUILTIN_VARIABLES;
use super::{Catalyst, NewTemplate, Who};

fn build(id: TemplateId, input: NewTemplate, now: catalyst_core::model::Timestamp, version: i64) -> Result<Template> {
    let image = input.image.trim().to_string();
    if image.is_empty() || image.len() > 512 || image.chars().any(char::is_whitespace) {
        return Err(Error::invalid("image must be a non-empty image reference without spaces"));
    }
    if input.startup.trim().is_empty() || input.startup.len() > 8192 {
        return Err(Error::invalid("startup must be 1-8192 bytes"));
    }
    if input.variables.len() > 128 || input.env.len() > 256 || input.done_patterns.len() > 32 {
        return Err(Error::invalid("too many variables, env entries or done patterns"));
    }
    if let catalyst_core::model::StopAction::Signal(s) = &input.stop {
        Signal::parse(s)?;
    }
    for p in &input.done_patterns {
        if let catalyst_core::model::DonePattern::Regex(r) = p {
            regex::Regex::new(r).map_err(|e| Error::invalid(format!("done pattern {r:?}: {e}")))?;
        }
    }
    if let Some(install) = &input.install
        && (install.image.trim().is_empty() || install.script.len() > 1 << 20)
    {
        return Err(Error::invalid("install needs an image and a script under 1 MiB"));
    }
    for edit in &input.config_files {
        if edit.path.starts_with('/') || edit.path.split('/').any(|c| c == "..") || edit.path.is_empty() {
            return Err(Error::invalid(format!("config file path {:?} must be relative, without '..'", edit.path)));
        }
    }
    let t = Template {
        id,
        name: validate::name("name", &input.name, 64)?,
        description: validate::text("description", &input.description, 4096)?,
        image,
        startup: input.startup,
        env: input.env,
        variables: input.variables,
        install: input.install,
        stop: input.stop,
        done_patterns: input.done_patterns,
        config_files: input.config_files,
        created_at: now,
        version,
    };
    render::validate_template(&t, BUILTIN_VARIABLES)?;
    Ok(t)
}

impl Catalyst {
    /// Create a template (`template.create`).
    pub async fn create_template(&self, who: &Principal, input: NewTemplate) -> Result<Template> {
        let grant = authorize(who, Permission::TemplateCreate, Scope::Global)?;
        let t = build(TemplateId::new(), input, self.now(), 0)?;
        self.inner.store.create_template(&t).await?;
        self.audit(
            Who::Grant(&grant, who),
            "template.create",
            ("template", Some(t.id.to_string())),
            true,
            json!({"name": t.name}),
        )
        .await;
        Ok(t)
    }

    /// Templates (`template.read`).
    pub async fn list_templates(&self, who: &Principal, page: Page) -> Result<Paged<Template>> {
        authorize(who, Permission::TemplateRead, Scope::Global)?;
        self.inner.store.list_templates(page).await
    }

    /// One template (`template.read`).
    pub async fn get_template(&self, who: &Principal, id: TemplateId) -> Result<Template> {
        authorize(who, Permission::TemplateRead, Scope::Global)?;
        self.inner.store.get_template(id).await
    }

    /// Replace a template (`template.update`). Servers pick it up at their next start.
    pub async fn update_template(&self, who: &Principal, id: TemplateId, input: NewTemplate) -> Result<Template> {
        let grant = authorize(who, Permission::TemplateUpdate, Scope::Global)?;
        let old = self.inner.store.get_template(id).await?;
        let t = build(id, input, old.created_at, old.version)?;
        let t = self.inner.store.update_template(&t).await?;
        self.audit(Who::Grant(&grant, who), "template.update", ("template", Some(id.to_string())), true, json!({}))
            .await;
        Ok(t)
    }

    /// Delete a template (`template.delete`); refused while servers use it.
    pub async fn delete_template(&self, who: &Principal, id: TemplateId) -> Result<()> {
        let grant = authorize(who, Permission::TemplateDelete, Scope::Global)?;
        self.inner.store.delete_template(id).await?;
        self.audit(Who::Grant(&grant, who), "template.delete", ("template", Some(id.to_string())), true, json!({}))
            .await;
        Ok(())
    }
}
