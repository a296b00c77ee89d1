//! Templates, and eggs imported into them.

use catalyst_core::denylist::Denylist;
use catalyst_core::egg::{self, EggFormat};
use catalyst_core::id::TemplateId;
use catalyst_core::model::{DonePattern, NewTemplate, Page, Paged, StartupMode, StopAction, Template};
use catalyst_core::permission::{Permission, Principal, Scope, authorize};
use catalyst_core::ports::Signal;
use catalyst_core::{Error, Result, render, validate};
use serde_json::json;

use super::servers::BUILTIN_VARIABLES;
use super::{Catalyst, Who};

fn image_ref(field: &str, image: &str) -> Result<String> {
    let image = image.trim();
    if image.is_empty() || image.len() > 512 || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!("{field} must be a non-empty image reference without spaces")));
    }
    Ok(image.to_string())
}

fn check_choices(input: &mut NewTemplate) -> Result<()> {
    input.image = image_ref("image", &input.image)?;
    if input.images.len() > 32 || input.startup_commands.len() > 32 {
        return Err(Error::invalid("at most 32 images and 32 startup commands"));
    }
    for choice in &mut input.images {
        choice.name = validate::name("images[].name", &choice.name, 191)?;
        choice.image = image_ref("images[].image", &choice.image)?;
    }
    let mut names = std::collections::BTreeSet::new();
    for s in &input.startup_commands {
        validate::name("startup_commands[].name", &s.name, 64)?;
        if !names.insert(s.name.as_str()) {
            return Err(Error::invalid(format!("startup command {:?} is named twice", s.name)));
        }
    }
    let startups = std::iter::once(&input.startup).chain(input.startup_commands.iter().map(|s| &s.command));
    for startup in startups {
        let empty_ok = input.startup_mode == StartupMode::Entrypoint;
        if (startup.trim().is_empty() && !empty_ok) || startup.len() > 8192 {
            return Err(Error::invalid("startup must be 1-8192 bytes (it may be empty only in entrypoint mode)"));
        }
    }
    Ok(())
}

fn check_extras(input: &NewTemplate) -> Result<()> {
    if input.variables.len() > 128 || input.env.len() > 256 || input.done_patterns.len() > 32 {
        return Err(Error::invalid("too many variables, env entries or done patterns"));
    }
    if input.config_files.len() > 64 || input.file_denylist.len() > 256 || input.features.len() > 32 {
        return Err(Error::invalid("too many config files, denylist patterns or features"));
    }
    for f in &input.features {
        validate::name("features[]", f, 64)?;
    }
    Denylist::new(&input.file_denylist)?;
    if let StopAction::Signal(s) = &input.stop {
        Signal::parse(s)?;
    }
    for p in &input.done_patterns {
        if let DonePattern::Regex(r) = p {
            regex::Regex::new(r).map_err(|e| Error::invalid(format!("done pattern {r:?}: {e}")))?;
        }
    }
    if let Some(install) = &input.install
        && (install.image.trim().is_empty() || install.script.len() > 1 << 20)
    {
        return Err(Error::invalid("install needs an image and a script under 1 MiB"));
    }
    if let Some(origin) = &input.egg {
        let icon = origin.icon.as_deref().unwrap_or_default();
        if origin.uuid.len() > 64 || origin.tags.len() > 32 || icon.len() > 1 << 20 {
            return Err(Error::invalid("egg: uuid up to 64 bytes, up to 32 tags, an icon under 1 MiB"));
        }
    }
    Ok(())
}

fn build(
    id: TemplateId,
    mut input: NewTemplate,
    now: catalyst_core::model::Timestamp,
    version: i64,
) -> Result<Template> {
    check_choices(&mut input)?;
    check_extras(&input)?;
    input.name = validate::name("name", &input.name, 64)?;
    input.description = validate::text("description", &input.description, 4096)?;
    input.group = validate::text("group", input.group.trim(), 64)?;
    for edit in &mut input.config_files {
        edit.path = validate::relative_path("config file", &edit.path)?;
    }
    let t = input.into_template(id, now, version);
    render::validate_template(&t, BUILTIN_VARIABLES)?;
    Ok(t)
}

impl Catalyst {
    /// Create a template (`template.create`).
    pub async fn create_template(&self, who: &Principal, input: NewTemplate) -> Result<Template> {
        let grant = authorize(who, Permission::TemplateCreate, Scope::Global)?;
        let t = build(TemplateId::new(), input, self.now(), 0)?;
        let t = self.inner.store.create_template(&t).await?;
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

    /// Import a Pterodactyl or Pelican egg (`template.create`, and `template.update` when a
    /// template from the same egg exists: it is updated, keeping its group). The whole egg is
    /// checked before anything is stored, so a refusal changes nothing.
    pub async fn import_template(&self, who: &Principal, egg_file: &[u8]) -> Result<Template> {
        let grant = authorize(who, Permission::TemplateCreate, Scope::Global)?;
        let mut input = egg::import(egg_file)?;
        let uuid = input.egg.as_ref().map(|o| o.uuid.clone()).unwrap_or_default();
        let existing = self.template_from_egg(&uuid).await?;
        let t = match existing {
            Some(old) => {
                authorize(who, Permission::TemplateUpdate, Scope::Global)?;
                input.group = old.group.clone();
                let t = build(old.id, input, old.created_at, old.version)?;
                self.inner.store.update_template(&t).await?
            }
            None => {
                let t = build(TemplateId::new(), input, self.now(), 0)?;
                self.inner.store.create_template(&t).await?
            }
        };
        self.audit(
            Who::Grant(&grant, who),
            "template.import",
            ("template", Some(t.id.to_string())),
            true,
            json!({"name": t.name, "egg": uuid}),
        )
        .await;
        Ok(t)
    }

    /// Write a template as an egg (`template.read`).
    pub async fn export_template(&self, who: &Principal, id: TemplateId, format: EggFormat) -> Result<String> {
        authorize(who, Permission::TemplateRead, Scope::Global)?;
        let t = self.inner.store.get_template(id).await?;
        egg::export(&t, format, self.now())
    }

    /// The template imported from the egg `uuid`, if any (templates number in the hundreds).
    async fn template_from_egg(&self, uuid: &str) -> Result<Option<Template>> {
        let limit = Page::MAX_LIMIT;
        let mut offset = 0;
        loop {
            let page = self.inner.store.list_templates(Page { offset, limit }).await?;
            if let Some(t) = page.items.iter().find(|t| t.egg.as_ref().is_some_and(|o| o.uuid == uuid)) {
                return Ok(Some(t.clone()));
            }
            if page.items.len() < limit as usize {
                return Ok(None);
            }
            offset += u64::from(limit);
        }
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
