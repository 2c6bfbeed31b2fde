//! Site configuration: schema, parsing and semantic validation.
//!
//! [`check`] is the one entry point: it parses TOML text into a [`SiteConfig`]
//! and runs every semantic check, returning either a config that is safe to
//! run or every problem found, each placed at a line and column.

mod diagnostic;
mod schema;
mod validate;

pub use diagnostic::{Diagnostic, KeyPath, PathSeg, SourceMap};
pub use schema::*;
pub use validate::{validate, CatalogModel, Issue, ModelCatalog, ModelRole, TRAFFIC_LIGHT};

/// Every problem found in one config text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ConfigError {
    /// Sorted by position in the text.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses and validates a site config.
///
/// `origin` names the text in messages (usually its file path). `catalog`
/// describes the installed models; `None` skips the model checks.
pub fn check(
    origin: &str,
    text: &str,
    catalog: Option<&ModelCatalog>,
) -> Result<SiteConfig, ConfigError> {
    let map = SourceMap::new(text);
    let config: SiteConfig = toml::from_str(text).map_err(|e| {
        let (line, column) = map.line_col(e.span().map_or(0, |s| s.start));
        ConfigError {
            diagnostics: vec![Diagnostic {
                origin: origin.to_owned(),
                line,
                column,
                path: String::new(),
                message: e.message().trim_end().to_owned(),
            }],
        }
    })?;
    let mut diagnostics: Vec<Diagnostic> = validate(&config, catalog)
        .into_iter()
        .map(|issue| map.diagnostic(origin, &issue.path, issue.message))
        .collect();
    if diagnostics.is_empty() {
        return Ok(config);
    }
    diagnostics.sort_by_key(|d| (d.line, d.column));
    Err(ConfigError { diagnostics })
}
