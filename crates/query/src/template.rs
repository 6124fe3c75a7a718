//! Rendering a query template with handlebars, keeping a map back to the template.

use std::fmt;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, SecondsFormat};
use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Context, Handlebars, Output, Path, RenderContext, RenderErrorReason, Renderable};

use crate::diagnostic::{ErrorKind, QueryError, offset_of};

/// The most characters a query template may have (measured on the template, before
/// rendering).
pub const MAX_QUERY_CHARS: usize = 131_072;

/// The variables a template can use, in the order the docs list them.
pub const VARIABLES: [&str; 4] =
    ["last_sync_time", "last_sync_time_iso", "sync_started_at", "sync_started_at_iso"];

/// Unix seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range RFC 3339
/// (four-digit years) can write.
const RFC3339_SECONDS: std::ops::RangeInclusive<i64> = -62_167_219_200..=253_402_300_799;

/// The values of a run's variables.
///
/// - `{{last_sync_time}}`: Unix time in whole seconds at which the previous successful
///   run of the sync started; `0` before the first run.
/// - `{{last_sync_time_iso}}`: the same instant in RFC 3339 (`2026-11-22T10:00:00Z`;
///   `1970-01-01T00:00:00Z` before the first run).
/// - `{{sync_started_at}}`: Unix time in whole seconds at which this run started, the
///   value the next run's `last_sync_time` will have if this run succeeds.
/// - `{{sync_started_at_iso}}`: the same instant in RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncVariables {
    last_sync_time: i64,
    sync_started_at: i64,
}

impl SyncVariables {
    /// The variables of a run that starts at `sync_started_at` (Unix seconds) after a
    /// successful run that started at `last_sync_time` (Unix seconds; `0` when there was
    /// none).
    pub const fn new(last_sync_time: i64, sync_started_at: i64) -> SyncVariables {
        SyncVariables { last_sync_time, sync_started_at }
    }

    /// The variables of a sync's first run: `last_sync_time` is `0`.
    pub const fn first_run(sync_started_at: i64) -> SyncVariables {
        SyncVariables::new(0, sync_started_at)
    }

    /// `{{last_sync_time}}`, in Unix seconds.
    pub const fn last_sync_time(&self) -> i64 {
        self.last_sync_time
    }

    /// `{{sync_started_at}}`, in Unix seconds.
    pub const fn sync_started_at(&self) -> i64 {
        self.sync_started_at
    }

    /// The handlebars data; an out-of-range time is `null` and reported by the caller if
    /// the template uses it.
    fn to_json(self) -> serde_json::Value {
        let mut data = serde_json::Map::with_capacity(VARIABLES.len());
        data.insert(VARIABLES[0].into(), self.last_sync_time.into());
        data.insert(VARIABLES[1].into(), rfc3339(self.last_sync_time).into());
        data.insert(VARIABLES[2].into(), self.sync_started_at.into());
        data.insert(VARIABLES[3].into(), rfc3339(self.sync_started_at).into());
        serde_json::Value::Object(data)
    }
}

fn rfc3339(seconds: i64) -> Option<String> {
    if !RFC3339_SECONDS.contains(&seconds) {
        return None;
    }
    DateTime::from_timestamp(seconds, 0).map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The registry every template renders with: strict, no HTML escaping, built-in helpers.
fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry
    })
}

/// A sync's query as the user wrote it: a handlebars template, compiled once and
/// rendered for each run.
///
/// Compiling checks the length limit, the template syntax, that every variable is one of
/// [`VARIABLES`] and that every helper exists, in every branch; rendering cannot meet an
/// unknown variable or helper after that.
#[derive(Clone)]
pub struct QueryTemplate {
    source: Arc<str>,
    template: Template,
    /// One entry per top-level element of `template`.
    elements: Vec<ElementInfo>,
    /// Byte offsets in `source` of the first reference to each variable.
    first_reference: [Option<usize>; 4],
}

#[derive(Debug, Clone, Copy)]
struct ElementInfo {
    /// Where the element's output comes from in the template: for raw text the offset of
    /// that text, for anything else the offset of its `{{`.
    offset: usize,
    /// Raw text, copied to the output unchanged.
    literal: bool,
    /// The element uses `last_sync_time` or `last_sync_time_iso`.
    uses_last_sync_time: bool,
}

impl fmt::Debug for QueryTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryTemplate").field("source", &self.source).finish_non_exhaustive()
    }
}

impl QueryTemplate {
    /// Compiles a template.
    ///
    /// # Errors
    /// [`ErrorKind::TooLong`], [`ErrorKind::TemplateSyntax`], [`ErrorKind::UnknownVariable`],
    /// [`ErrorKind::UnknownHelper`] and [`ErrorKind::TooDeep`], each at its place in
    /// `source`.
    pub fn new(source: impl Into<String>) -> Result<QueryTemplate, QueryError> {
        let source: Arc<str> = Arc::from(source.into());
        if source.len() > MAX_QUERY_CHARS {
            let chars = source.chars().count();
            if chars > MAX_QUERY_CHARS {
                let first_over = source.char_indices().nth(MAX_QUERY_CHARS).map_or(source.len(), |(i, _)| i);
                let kind = ErrorKind::TooLong { chars, limit: MAX_QUERY_CHARS };
                return Err(QueryError::at(kind, &source, first_over));
            }
        }
        let template = compile(&source)?;
        let mut first_reference = [None; 4];
        check_references(&source, &template, &mut first_reference, 0)?;
        let elements = locate_elements(&source, &template);
        Ok(QueryTemplate { source, template, elements, first_reference })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template uses `{{last_sync_time}}` or `{{last_sync_time_iso}}`
    /// anywhere (the SQL check also looks at whether that use is commented out).
    pub fn uses_last_sync_time(&self) -> bool {
        self.first_reference[0].is_some() || self.first_reference[1].is_some()
    }

    /// Renders the query for a run.
    ///
    /// # Errors
    /// [`ErrorKind::Render`] when a helper fails (a parameter of the wrong type), and
    /// [`ErrorKind::TimeOutOfRange`] when the template uses an `_iso` variable whose
    /// value cannot be written in RFC 3339.
    pub fn render(&self, variables: &SyncVariables) -> Result<RenderedQuery, QueryError> {
        for (index, seconds) in [(1, variables.last_sync_time), (3, variables.sync_started_at)] {
            if let Some(offset) = self.first_reference[index]
                && rfc3339(seconds).is_none()
            {
                let kind = ErrorKind::TimeOutOfRange { variable: VARIABLES[index], seconds };
                return Err(QueryError::at(kind, &self.source, offset));
            }
        }
        let context = Context::from(variables.to_json());
        let registry = registry();
        let mut render_context = RenderContext::new(None);
        let mut sql = String::with_capacity(self.source.len() + 32);
        let mut pieces = Vec::with_capacity(self.elements.len());
        for (element, info) in self.template.elements.iter().zip(&self.elements) {
            let start = sql.len();
            let mut out = StringSink(&mut sql);
            element
                .render(registry, &context, &mut render_context, &mut out)
                .map_err(|e| self.render_error(&e, info.offset))?;
            if sql.len() > start || info.uses_last_sync_time {
                pieces.push(Piece {
                    rendered: start,
                    template: info.offset,
                    literal: info.literal,
                    uses_last_sync_time: info.uses_last_sync_time,
                });
            }
        }
        Ok(RenderedQuery { sql, template: Arc::clone(&self.source), pieces })
    }

    fn render_error(&self, error: &handlebars::RenderError, element_offset: usize) -> QueryError {
        let offset = match (error.line_no, error.column_no) {
            (Some(line), Some(column)) => offset_of(&self.source, line, column),
            _ => element_offset,
        };
        let kind = match error.reason() {
            RenderErrorReason::MissingVariable(name) => {
                let name = name.clone().unwrap_or_default();
                let offset = name_in_tag(&self.source, offset, &name);
                return QueryError::at(ErrorKind::UnknownVariable { name }, &self.source, offset);
            }
            RenderErrorReason::HelperNotFound(name)
            | RenderErrorReason::DecoratorNotFound(name)
            | RenderErrorReason::PartialNotFound(name) => ErrorKind::UnknownHelper { name: name.clone() },
            other => ErrorKind::Render { reason: other.to_string() },
        };
        QueryError::at(kind, &self.source, offset)
    }
}

/// Output that appends to a `String`.
struct StringSink<'a>(&'a mut String);

impl Output for StringSink<'_> {
    fn write(&mut self, seg: &str) -> Result<(), std::io::Error> {
        self.0.push_str(seg);
        Ok(())
    }
}

/// Compiles with handlebars, turning its errors into template positions.
fn compile(source: &str) -> Result<Template, QueryError> {
    Template::compile(source).map_err(|e| {
        let mut offset = e.pos().map_or(0, |(line, column)| offset_of(source, line, column));
        let mut reason = e.reason().to_string();
        if let handlebars::TemplateErrorReason::InvalidSyntax(_) = e.reason()
            && let Some(open) = unclosed_tag(source, offset)
        {
            // The parser reports where it gave up (often the end of the text); the place
            // to fix is the `{{` that was never closed.
            offset = open;
            reason = "`{{` is not closed by `}}`".to_owned();
        }
        QueryError::at(ErrorKind::TemplateSyntax { reason }, source, offset)
    })
}

/// The last `{{` before `offset` that has no `}}` between it and `offset`, when nothing
/// after it closes it either.
fn unclosed_tag(source: &str, offset: usize) -> Option<usize> {
    let offset = crate::diagnostic::floor_char_boundary(source, offset);
    let open = source[..offset].rfind("{{")?;
    let after = &source[open + 2..];
    (!after.contains("}}")).then_some(open)
}

/// Where `name` is written in the tag that starts at `tag`, or `tag` itself.
fn name_in_tag(source: &str, tag: usize, name: &str) -> usize {
    let tag = crate::diagnostic::floor_char_boundary(source, tag);
    let rest = &source[tag..];
    let end = rest.find("}}").unwrap_or(rest.len());
    match rest[..end].find(name) {
        Some(i) if !name.is_empty() => tag + i,
        _ => tag,
    }
}

/// How deeply blocks and subexpressions may nest in a template. Handlebars renders
/// recursively, so this bounds its stack.
pub(crate) const MAX_TEMPLATE_NESTING: usize = 32;

/// Checks that every path the template reads is one of [`VARIABLES`] and that blocks nest
/// at most [`MAX_TEMPLATE_NESTING`] deep, and records the first place each variable is used.
fn check_references(
    source: &str,
    template: &Template,
    first: &mut [Option<usize>; 4],
    depth: usize,
) -> Result<(), QueryError> {
    for (element, mapping) in template.elements.iter().zip(&template.mapping) {
        let tag = offset_of(source, mapping.0, mapping.1);
        if depth + subexpression_depth(element, 0) > MAX_TEMPLATE_NESTING {
            return Err(QueryError::at(ErrorKind::TooDeep { limit: MAX_TEMPLATE_NESTING }, source, tag));
        }
        if let Some(name) = unknown_helper(element) {
            let offset = name_in_tag(source, tag, &name);
            return Err(QueryError::at(ErrorKind::UnknownHelper { name }, source, offset));
        }
        let mut result = Ok(());
        visit_paths(element, &mut |raw| {
            if result.is_err() {
                return;
            }
            let name = raw.strip_prefix("@root.").unwrap_or(raw);
            match VARIABLES.iter().position(|v| *v == name) {
                Some(index) => {
                    let at = name_in_tag(source, tag, raw);
                    if first[index].is_none_or(|f| at < f) {
                        first[index] = Some(at);
                    }
                }
                None => {
                    let offset = name_in_tag(source, tag, raw);
                    let kind = ErrorKind::UnknownVariable { name: raw.to_owned() };
                    result = Err(QueryError::at(kind, source, offset));
                }
            }
        });
        result?;
        for inner in nested_templates(element) {
            check_references(source, inner, first, depth + 1)?;
        }
    }
    Ok(())
}

/// Calls `f` with the raw text of each variable path that `element`'s own tag reads (not
/// those of the templates nested in a block).
fn visit_paths(element: &TemplateElement, f: &mut dyn FnMut(&str)) {
    use TemplateElement::*;
    match element {
        Expression(helper) | HtmlExpression(helper) | HelperBlock(helper) => {
            // `{{name}}` reads a variable; `{{helper arg}}` and blocks call a helper.
            if let Parameter::Path(path) = &helper.name {
                visit_path(path, f);
            }
            helper.params.iter().chain(helper.hash.values()).for_each(|p| visit_parameter(p, f));
        }
        DecoratorExpression(decorator)
        | DecoratorBlock(decorator)
        | PartialExpression(decorator)
        | PartialBlock(decorator) => {
            decorator.params.iter().chain(decorator.hash.values()).for_each(|p| visit_parameter(p, f));
        }
        _ => {}
    }
}

/// The helpers handlebars registers (its built-ins, without the `string_helpers`
/// feature); a template may call these and no others.
const HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and",
    "or", "not", "len",
];

/// The first helper, partial or decorator that `element`'s own tag calls and that does
/// not exist (there are no partials, and `inline` is the only decorator).
fn unknown_helper(element: &TemplateElement) -> Option<String> {
    use TemplateElement::*;
    match element {
        Expression(helper) | HtmlExpression(helper) | HelperBlock(helper) => {
            if let Parameter::Name(name) = &helper.name
                && !HELPERS.contains(&name.as_str())
            {
                return Some(name.clone());
            }
            helper.params.iter().chain(helper.hash.values()).find_map(|p| match p {
                Parameter::Subexpression(sub) => unknown_helper(sub.as_element()),
                _ => None,
            })
        }
        DecoratorExpression(decorator) | DecoratorBlock(decorator) => {
            decorator.name.as_name().filter(|name| *name != "inline").map(str::to_owned)
        }
        PartialExpression(partial) | PartialBlock(partial) => {
            Some(partial.name.as_name().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// How deeply subexpressions nest in an element's own tag, stopping past the limit.
fn subexpression_depth(element: &TemplateElement, depth: usize) -> usize {
    use TemplateElement::*;
    if depth > MAX_TEMPLATE_NESTING {
        return depth;
    }
    let parameters: Box<dyn Iterator<Item = &Parameter>> = match element {
        Expression(helper) | HtmlExpression(helper) | HelperBlock(helper) => {
            Box::new(helper.params.iter().chain(helper.hash.values()))
        }
        DecoratorExpression(decorator)
        | DecoratorBlock(decorator)
        | PartialExpression(decorator)
        | PartialBlock(decorator) => Box::new(decorator.params.iter().chain(decorator.hash.values())),
        _ => return depth,
    };
    parameters
        .map(|p| match p {
            Parameter::Subexpression(sub) => subexpression_depth(sub.as_element(), depth + 1),
            _ => depth,
        })
        .max()
        .unwrap_or(depth)
}

fn visit_parameter(parameter: &Parameter, f: &mut dyn FnMut(&str)) {
    match parameter {
        Parameter::Path(path) => visit_path(path, f),
        Parameter::Subexpression(sub) => visit_paths(sub.as_element(), f),
        _ => {}
    }
}

fn visit_path(path: &Path, f: &mut dyn FnMut(&str)) {
    match path {
        Path::Relative((_, raw)) | Path::Local((_, _, raw)) => f(raw),
    }
}

/// The templates nested in a block element: its body and its `{{else}}` part.
fn nested_templates(element: &TemplateElement) -> Vec<&Template> {
    use TemplateElement::*;
    match element {
        HelperBlock(helper) | Expression(helper) | HtmlExpression(helper) => {
            helper.template.iter().chain(helper.inverse.iter()).collect()
        }
        DecoratorBlock(decorator) | PartialBlock(decorator) => decorator.template.iter().collect(),
        _ => Vec::new(),
    }
}

/// Finds where each top-level element's output comes from in the template.
fn locate_elements(source: &str, template: &Template) -> Vec<ElementInfo> {
    let starts: Vec<usize> = template.mapping.iter().map(|m| offset_of(source, m.0, m.1)).collect();
    let mut previous_tag = 0;
    let mut infos = Vec::with_capacity(template.elements.len());
    for (index, element) in template.elements.iter().enumerate() {
        let info = match element {
            TemplateElement::RawString(text) => {
                // Raw text lies between the previous tag and the next one; trimming
                // (`~`, standalone blocks) only drops whitespace around it, so its last
                // occurrence in that window is where it was written. Escaped `\{{` makes
                // the text differ from the source: then it is placed just before the next
                // tag, which is off by the escapes at most.
                let next_tag = starts.get(index + 1).copied().unwrap_or(source.len()).max(previous_tag);
                let window = &source[previous_tag..next_tag];
                let offset = match window.rfind(text.as_str()) {
                    Some(i) => previous_tag + i,
                    None => crate::diagnostic::floor_char_boundary(
                        source,
                        next_tag.saturating_sub(text.len()).max(previous_tag),
                    ),
                };
                ElementInfo { offset, literal: true, uses_last_sync_time: false }
            }
            other => {
                previous_tag = starts[index];
                let mut uses = false;
                mark_last_sync_time(other, &mut uses);
                ElementInfo { offset: starts[index], literal: false, uses_last_sync_time: uses }
            }
        };
        infos.push(info);
    }
    infos
}

fn mark_last_sync_time(element: &TemplateElement, uses: &mut bool) {
    visit_paths(element, &mut |raw| {
        let name = raw.strip_prefix("@root.").unwrap_or(raw);
        *uses |= name == VARIABLES[0] || name == VARIABLES[1];
    });
    for inner in nested_templates(element) {
        for element in &inner.elements {
            mark_last_sync_time(element, uses);
        }
    }
}

/// A stretch of the rendered SQL and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    /// Byte offset in the rendered SQL where the stretch starts.
    pub(crate) rendered: usize,
    /// Byte offset in the template: of the same text for a literal stretch, of the tag
    /// that produced it otherwise.
    pub(crate) template: usize,
    /// Copied unchanged from the template, so offsets inside map one to one.
    pub(crate) literal: bool,
    /// Produced by a tag that uses `last_sync_time`.
    pub(crate) uses_last_sync_time: bool,
}

/// A query rendered for one run: the SQL to send, and a map from each byte of it back
/// to the template, so that diagnostics point at what the user wrote.
#[derive(Debug, Clone)]
pub struct RenderedQuery {
    pub(crate) sql: String,
    pub(crate) template: Arc<str>,
    /// Sorted by `rendered`; empty stretches only for tags that use `last_sync_time`.
    pub(crate) pieces: Vec<Piece>,
}

impl RenderedQuery {
    /// The SQL to run.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The SQL to run, without the map.
    pub fn into_sql(self) -> String {
        self.sql
    }

    /// The template this was rendered from.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The place in the template that byte `offset` of the rendered SQL comes from: the
    /// same text when it was copied, the `{{` of the tag when a tag produced it. Use it
    /// to point a database's own error position back at the template.
    pub fn template_position(&self, offset: usize) -> crate::Position {
        crate::Position::at(&self.template, self.template_offset(offset))
    }

    /// The template byte offset of rendered byte `offset` (see [`Self::template_position`]).
    pub(crate) fn template_offset(&self, offset: usize) -> usize {
        let offset = offset.min(self.sql.len());
        let index = self.pieces.partition_point(|p| p.rendered <= offset);
        let Some(piece) = index.checked_sub(1).and_then(|i| self.pieces.get(i)) else {
            return 0;
        };
        if piece.literal { piece.template.saturating_add(offset - piece.rendered) } else { piece.template }
    }

    /// The rendered byte ranges produced by tags that use `last_sync_time`, with the
    /// template offset of each tag.
    pub(crate) fn last_sync_time_uses(&self) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> + '_ {
        self.pieces.iter().enumerate().filter(|(_, p)| p.uses_last_sync_time).map(|(i, p)| {
            let end = self.pieces.get(i + 1).map_or(self.sql.len(), |next| next.rendered);
            (p.rendered..end, p.template)
        })
    }
}
