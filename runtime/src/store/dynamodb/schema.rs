//! The table layout, read from `terraform/modules/dynamodb-ledger/tables.json`: the one
//! source of truth for table names, key names, key types and the TTL attribute, shared
//! with the Terraform module. The runtime embeds the file; nothing here repeats it.

use serde::Deserialize;

use super::DynamoError;

/// The file the Terraform module reads with `jsondecode(file())`.
pub const TABLES_JSON: &str =
    include_str!("../../../../terraform/modules/dynamodb-ledger/tables.json");

#[derive(Debug, Clone, Deserialize)]
pub struct Key {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TableSpec {
    pub suffix: String,
    pub hash_key: Key,
    pub range_key: Option<Key>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct TablesFile {
    tables: Tables,
    runtime_actions: Vec<String>,
}

/// The four tables of the dynamodb store.
#[derive(Debug, Clone, Deserialize)]
pub struct Tables {
    pub journal: TableSpec,
    pub checkpoints: TableSpec,
    pub idempotency: TableSpec,
    pub leases: TableSpec,
}

/// The IAM actions the store's calls need (`TransactWriteItems` is authorised per item:
/// `PutItem` and `ConditionCheckItem`). `create_tables` is not among them: tables come
/// from Terraform, and the runtime's role cannot create them.
pub const STORE_ACTIONS: &[&str] = &[
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
];

/// The tables with their full names (`table_prefix` + suffix).
#[derive(Debug, Clone)]
pub struct Schema {
    pub tables: Tables,
    pub prefix: String,
    /// The IAM actions the runtime is granted (Terraform's `runtime_actions`).
    pub runtime_actions: Vec<String>,
}

impl Schema {
    pub fn load(prefix: &str) -> Result<Schema, DynamoError> {
        let file: TablesFile =
            serde_json::from_str(TABLES_JSON).map_err(|e| DynamoError::Config {
                field: "tables.json",
                reason: e.to_string(),
            })?;
        let schema = Schema {
            tables: file.tables,
            prefix: prefix.to_string(),
            runtime_actions: file.runtime_actions,
        };
        schema.check()?;
        Ok(schema)
    }

    /// The store needs range keys of type N on the journal and checkpoints, a string hash
    /// key everywhere, and no range key on leases.
    fn check(&self) -> Result<(), DynamoError> {
        let bad = |reason: &str| DynamoError::Config {
            field: "tables.json",
            reason: reason.to_string(),
        };
        for spec in self.all() {
            if spec.hash_key.kind != "S" {
                return Err(bad("every hash key must be of type S"));
            }
        }
        for spec in [&self.tables.journal, &self.tables.checkpoints] {
            if spec.range_key.as_ref().is_none_or(|k| k.kind != "N") {
                return Err(bad("journal and checkpoints need a range key of type N"));
            }
        }
        if self.tables.leases.range_key.is_some() {
            return Err(bad("leases must not have a range key"));
        }
        for action in STORE_ACTIONS {
            if !self.runtime_actions.iter().any(|a| a == action) {
                return Err(bad(&format!("runtime_actions must allow {action}")));
            }
        }
        Ok(())
    }

    pub fn all(&self) -> [&TableSpec; 4] {
        [
            &self.tables.journal,
            &self.tables.checkpoints,
            &self.tables.idempotency,
            &self.tables.leases,
        ]
    }

    pub fn name(&self, spec: &TableSpec) -> String {
        format!("{}{}", self.prefix, spec.suffix)
    }

    /// Name of the range key of a table that has one (checked in `load`).
    pub fn range_key(spec: &TableSpec) -> &str {
        spec.range_key.as_ref().map_or("seq", |k| k.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_tables_json_parses_and_has_the_keys_the_store_uses() {
        let schema = Schema::load("tg-").unwrap();
        assert_eq!(schema.name(&schema.tables.journal), "tg-journal");
        assert_eq!(Schema::range_key(&schema.tables.journal), "seq");
        assert_eq!(
            schema.tables.idempotency.ttl_attribute.as_deref(),
            Some("expires_at_s")
        );
        assert_eq!(schema.runtime_actions.len(), 9);
    }
}
