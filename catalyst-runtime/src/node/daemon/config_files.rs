//! A template's config edits, applied through the server's sandbox before every start (what
//! Wings does with an egg's `config.files`): the file is read if it exists, edited by its
//! parser, and written back; a missing file (and its directories) is created, owned by the
//! server's user. A file that cannot be edited is left as it was, and the console says why.

use std::path::Path;

use catalyst_core::config_edit;
use catalyst_core::model::ConfigFileEdit;
use catalyst_core::render::with_node_interface;
use catalyst_core::{Error, ErrorKind, Result};

use crate::node::data::sandbox::Sandbox;

/// Apply every edit under `root`; returns one line per file that could not be edited.
pub(super) fn apply_all(
    root: &Path,
    edits: &[ConfigFileEdit],
    address: &str,
    owner: Option<(u32, u32)>,
) -> Vec<String> {
    let sandbox = match Sandbox::open(root) {
        Ok(s) => s,
        Err(e) => return vec![format!("config files were not edited: {}", e.message())],
    };
    edits
        .iter()
        .filter_map(|edit| {
            apply_one(&sandbox, &with_node_interface(edit, address), owner)
                .err()
                .map(|e| format!("config file {} was not edited: {}", edit.path, e.message()))
        })
        .collect()
}

fn apply_one(sandbox: &Sandbox, edit: &ConfigFileEdit, owner: Option<(u32, u32)>) -> Result<()> {
    let current = match sandbox.read(&edit.path) {
        Ok(bytes) => Some(String::from_utf8(bytes).map_err(|_| Error::invalid("it is not UTF-8 text"))?),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let text = config_edit::apply(edit.format, current.as_deref(), &config_edit::plan(edit))
        .map_err(|e| Error::invalid(e.message))?;
    if current.as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    if current.is_none()
        && let Some((parent, _)) = edit.path.rsplit_once('/')
    {
        sandbox.mkdir_as(parent, owner)?;
    }
    sandbox.write(&edit.path, text.as_bytes())?;
    match (current, owner) {
        // A new file is the server's, like the rest of its directory.
        (None, Some(owner)) => sandbox.chown_tree(&edit.path, owner),
        _ => Ok(()),
    }
}
