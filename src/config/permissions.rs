//! The `[parties.<name>.permissions]` and `[parties.<name>.schema]` sections.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::ConfigError;
use crate::protocol::persister::{CellType, Permissions};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PermissionsSection {
    #[serde(default)]
    read_only_tables: Vec<String>,
    #[serde(default)]
    read_only_values: Vec<String>,
    #[serde(default)]
    no_delete_tables: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct SchemaSection {
    #[serde(default)]
    tables: BTreeMap<String, BTreeMap<String, String>>,
    values: Option<BTreeMap<String, String>>,
}

/// Builds a party's permissions; `key` is the party's dotted key, for messages.
pub(super) fn resolve(
    permissions: Option<PermissionsSection>,
    schema: Option<SchemaSection>,
    source: &Path,
    key: &str,
) -> Result<Permissions, ConfigError> {
    let permissions = permissions.unwrap_or_default();
    let schema = schema.unwrap_or_default();
    let types = |cells: BTreeMap<String, String>, at: String| {
        cells
            .into_iter()
            .map(|(cell, name)| match CellType::parse(&name) {
                Some(kind) => Ok((cell, kind)),
                None => Err(ConfigError::Invalid {
                    path: source.to_path_buf(),
                    key: format!("{at}.{cell}"),
                    message: format!("{name:?} is not one of \"string\", \"number\", \"boolean\", \"null\", \"array\", \"object\""),
                }),
            })
            .collect::<Result<_, _>>()
    };
    let mut table_schemas = std::collections::HashMap::new();
    for (table, cells) in schema.tables {
        let at = format!("{key}.schema.tables.{table}");
        table_schemas.insert(table, types(cells, at)?);
    }
    let value_schema =
        schema.values.map(|values| types(values, format!("{key}.schema.values"))).transpose()?;
    Ok(Permissions {
        read_only_tables: permissions.read_only_tables.into_iter().collect(),
        read_only_values: permissions.read_only_values.into_iter().collect(),
        no_delete_tables: permissions.no_delete_tables.into_iter().collect(),
        table_schemas,
        value_schema,
    })
}
