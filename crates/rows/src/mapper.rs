//! [`RowMapper`]: one row in, one call (or one [`RowError`]) out.

use cdp_calls::{
    Alias, Body, Call, CallError, CallType, Extra, Group, Identify, JsonObject, Page, Screen, Timestamp,
    TimestampText, Track,
};

use crate::decimal::decimal_id_text;
use crate::message_id::IdHasher;
use crate::plan::{Object, ObjectPlan, Plan, Rule, Scalar};
use crate::render::{self, MAX_DEPTH, RenderError, push_i64, push_time, push_u64, push_value, text_object};
use crate::time::{row_timestamp, shown};
use crate::{Columns, Row, RowError, RowErrorReason, SyncError, Value};

/// The most columns a result set may have.
pub const MAX_COLUMNS: usize = 512;
/// The longest column name, in characters.
pub const MAX_NAME_CHARS: usize = 128;
/// The largest single value, in bytes as JSON (128 KiB).
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// The largest row, in bytes as a JSON object of column name to value (512 KiB).
pub const MAX_RECORD_BYTES: usize = 512 * 1024;

/// How a row error records the row's values: each value at most this many bytes.
const ERROR_VALUE_BYTES: usize = 1024;

/// What a sync asks of the mapping: its name and call type, and options.
///
/// ```
/// use cdp_rows::MappingOptions;
/// use cdp_calls::CallType;
///
/// let options = MappingOptions::new("users", CallType::Identify)
///     .lowercase_names(true) // Snowflake: EMAIL becomes the trait `email`
///     .limit_call_size(true); // the HTTP destination: calls of at most 32 KiB
/// assert_eq!(options.sync_name(), "users");
/// assert!(options.parses_json_text());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingOptions {
    sync_name: String,
    call_type: CallType,
    lowercase_names: bool,
    limit_call_size: bool,
    parse_json_text: bool,
}

impl MappingOptions {
    /// Options for the sync called `sync_name`, making calls of `call_type`; names
    /// kept as returned, no call size limit, text holding a JSON object parsed.
    pub fn new(sync_name: impl Into<String>, call_type: CallType) -> MappingOptions {
        MappingOptions {
            sync_name: sync_name.into(),
            call_type,
            lowercase_names: false,
            limit_call_size: false,
            parse_json_text: true,
        }
    }

    /// Lower-cases the names of columns that are not reserved fields (for
    /// Snowflake, which returns unquoted names upper-cased). Off by default.
    pub fn lowercase_names(mut self, yes: bool) -> Self {
        self.lowercase_names = yes;
        self
    }

    /// Rejects, as a row error, a call over [`cdp_calls::MAX_CALL_BYTES`] (32 KiB) as
    /// compact JSON, as the HTTP ingestion API requires. Off by default.
    pub fn limit_call_size(mut self, yes: bool) -> Self {
        self.limit_call_size = yes;
        self
    }

    /// Parses text that holds a JSON object into a nested object (see the crate
    /// docs). On by default.
    pub fn parse_json_text(mut self, yes: bool) -> Self {
        self.parse_json_text = yes;
        self
    }

    /// The sync's name.
    pub fn sync_name(&self) -> &str {
        &self.sync_name
    }

    /// The type of call each row becomes.
    pub fn call_type(&self) -> CallType {
        self.call_type
    }

    /// Whether names that are not reserved are lower-cased.
    pub fn lowercases_names(&self) -> bool {
        self.lowercase_names
    }

    /// Whether calls over 32 KiB are row errors.
    pub fn limits_call_size(&self) -> bool {
        self.limit_call_size
    }

    /// Whether text holding a JSON object becomes an object.
    pub fn parses_json_text(&self) -> bool {
        self.parse_json_text
    }
}

/// Maps the rows of one result set of one run into calls.
///
/// Built once per result set from its column names, which is when every sync-level
/// problem is found ([`SyncError`]); then each row is mapped on its own, with its
/// row number, into a [`Call`] or a [`RowError`]. A mapper reuses its buffers, so map
/// every row of a result with the same one.
///
/// ```
/// use cdp_calls::{CallType, Timestamp};
/// use cdp_rows::{Columns, MappingOptions, RowMapper, Value};
///
/// let columns = Columns::new(["USERID", "EMAIL", "cart.total"]);
/// let run_started: Timestamp = "2026-11-22T10:00:00Z".parse()?;
/// let options = MappingOptions::new("carts", CallType::Identify).lowercase_names(true);
/// let mut mapper = RowMapper::new(options, &columns, run_started)?;
/// assert_eq!(mapper.fields(), ["userId", "traits.email", "traits.cart.total"]);
///
/// let call = mapper.map_values(1, &[Value::from(7), Value::from("ada@example.com"), Value::decimal("9.50")])?;
/// assert_eq!(call.user_id.as_deref(), Some("7"));
/// assert_eq!(call.traits().unwrap().as_str(), r#"{"email":"ada@example.com","cart":{"total":9.50}}"#);
///
/// let err = mapper.map_values(2, &[Value::Null, Value::from("x@example.com"), Value::Null]).unwrap_err();
/// assert_eq!(err.to_string(), "row 2: identify call needs `userId` or `anonymousId`");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RowMapper {
    options: MappingOptions,
    columns: Columns,
    plan: Plan,
    run_started_at: Timestamp,
    hasher: IdHasher,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// Per column, the text of the last timestamp written into an object.
    times: Vec<TimestampText>,
}

/// A failure inside a row: the column (index) at fault and why.
type Fault = (Option<usize>, RowErrorReason);

fn render_fault(e: RenderError) -> RowErrorReason {
    match e {
        RenderError::InvalidJson(e) => RowErrorReason::InvalidJson { message: e.to_string() },
        RenderError::TooDeep => RowErrorReason::TooDeep { limit: MAX_DEPTH },
    }
}

/// A quick lower bound of a value's size as JSON, to refuse huge values before
/// writing them.
fn size_at_least(value: &Value<'_>) -> usize {
    match value {
        Value::Text(t) => t.len() + 2,
        Value::Decimal(d) => d.len(),
        Value::Bytes(b) => b.len() / 3 * 4 + 2,
        _ => 0,
    }
}

fn json_kind(compact: &str) -> &'static str {
    match compact.as_bytes().first() {
        Some(b'{') => "JSON object",
        Some(b'[') => "JSON array",
        Some(b'"') => "JSON string",
        Some(b't' | b'f') => "JSON boolean",
        Some(b'n') => "JSON null",
        _ => "JSON number",
    }
}

/// Appends a value that must be a JSON object (or null); `field` names it in errors.
fn push_object(out: &mut Vec<u8>, value: &Value<'_>, field: &'static str) -> Result<(), RowErrorReason> {
    let wrong = |found| RowErrorReason::InvalidType { field, expected: "a JSON object", found };
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Json(j) => {
            let compact =
                cdp_calls::compact_json(j).map_err(|e| render_fault(RenderError::InvalidJson(e)))?;
            if !compact.starts_with('{') {
                return Err(wrong(json_kind(&compact)));
            }
            out.extend_from_slice(compact.as_bytes());
        }
        Value::Text(t) => out.extend_from_slice(text_object(t).ok_or(wrong("text"))?.as_bytes()),
        other => return Err(wrong(other.kind())),
    }
    Ok(())
}

/// Appends a group's `objectTypeId`: a positive integer as a JSON string, or null.
fn push_object_type_id(out: &mut Vec<u8>, value: &Value<'_>) -> Result<(), RowErrorReason> {
    let positive = match value {
        Value::Null => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::UInt(u) => Some(*u),
        Value::Float(f) if f.fract() == 0.0 && *f >= 1.0 && *f < 1.8e19 => Some(*f as u64),
        Value::Decimal(d) | Value::Text(d) => decimal_id_text(d.trim()).parse::<u64>().ok(),
        _ => None,
    };
    match positive.filter(|&n| n >= 1) {
        Some(n) => {
            out.push(b'"');
            push_u64(out, n);
            out.push(b'"');
            Ok(())
        }
        None => Err(RowErrorReason::InvalidObjectTypeId { found: value.kind(), value: shown(value) }),
    }
}

/// A value that sets a string field (`userId`, `event`, …): `None` for null.
fn id_text(value: &Value<'_>, field: &'static str) -> Result<Option<String>, RowErrorReason> {
    let wrong = |found| RowErrorReason::InvalidType { field, expected: "text or a number", found };
    match value {
        Value::Null => Ok(None),
        Value::Text(t) => Ok(Some(t.as_ref().to_owned())),
        Value::Int(i) => Ok(Some(digits(|out| push_i64(out, *i)))),
        Value::UInt(u) => Ok(Some(digits(|out| push_u64(out, *u)))),
        Value::Decimal(d) => Ok(Some(decimal_id_text(d))),
        Value::Float(f) if f.is_finite() => Ok(Some(f.to_string())),
        Value::Float(_) => Err(wrong("a NaN or infinite float")),
        other => Err(wrong(other.kind())),
    }
}

/// An integer's decimal text, written by `write` (without `fmt`'s machinery: ids are
/// written once per row).
fn digits(write: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut text = Vec::with_capacity(20);
    write(&mut text);
    String::from_utf8(text).unwrap_or_default()
}

/// The size of a value that sets a top-level field, as JSON; checks the value limit.
fn measure(scratch: &mut Vec<u8>, column: usize, value: &Value<'_>) -> Result<usize, Fault> {
    let too_large = |bytes| (Some(column), RowErrorReason::ValueTooLarge { bytes, limit: MAX_VALUE_BYTES });
    if size_at_least(value) > MAX_VALUE_BYTES {
        return Err(too_large(size_at_least(value)));
    }
    let bytes = match value {
        Value::Null => 4,
        Value::Timestamp(t) | Value::TimestampWithoutZone(t) => {
            if t.as_micros() % 1000 == 0 {
                26
            } else {
                29
            }
        }
        // Text with nothing to escape: its length and the quotes.
        Value::Text(t) if t.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => t.len() + 2,
        _ => {
            scratch.clear();
            // A value that cannot be written is refused by its field's conversion.
            let _ = push_value(scratch, value, false);
            scratch.len()
        }
    };
    if bytes > MAX_VALUE_BYTES {
        return Err(too_large(bytes));
    }
    Ok(bytes)
}

/// The fields of a call as found in a row.
#[derive(Default)]
struct Found {
    user_id: Option<String>,
    anonymous_id: Option<String>,
    message_id: Option<String>,
    timestamp: Option<Timestamp>,
    event: Option<String>,
    name: Option<String>,
    group_id: Option<String>,
    previous_id: Option<String>,
}

impl RowMapper {
    /// A mapper for the result set with `columns`, in a run that started at
    /// `run_started_at` (the time part of generated message ids for rows without a
    /// timestamp).
    ///
    /// Fails when the columns cannot be mapped at all: more than [`MAX_COLUMNS`], a
    /// name over [`MAX_NAME_CHARS`] characters or with an empty part, two columns
    /// setting the same field or one inside another's, or a column an alias call has
    /// no place for.
    pub fn new(
        options: MappingOptions,
        columns: &Columns,
        run_started_at: Timestamp,
    ) -> Result<RowMapper, SyncError> {
        let plan = Plan::new(columns.names(), options.call_type, options.lowercase_names)?;
        let hasher = IdHasher::new(&options.sync_name, options.call_type, columns.names());
        Ok(RowMapper {
            options,
            columns: columns.clone(),
            plan,
            run_started_at,
            hasher,
            buf: Vec::with_capacity(1024),
            scratch: Vec::with_capacity(256),
            times: vec![TimestampText::default(); columns.len()],
        })
    }

    /// The options the mapper was built with.
    pub fn options(&self) -> &MappingOptions {
        &self.options
    }

    /// The columns of the result set.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// Where each column lands, in column order, as a dotted wire path: `userId`,
    /// `traits.email`, `context.device.token`, `properties.cart.product_name`.
    pub fn fields(&self) -> &[String] {
        &self.plan.fields
    }

    /// Required fields that no column sets, so that every row will be a row error
    /// (`"userId or anonymousId"`, `"event"`, `"name"`, `"groupId"`, `"previousId"`,
    /// `"userId"`). Useful to warn before a run or in a preview.
    pub fn missing_required_fields(&self) -> Vec<&'static str> {
        let has = |s: Scalar| self.plan.scalars.iter().any(|(_, x)| *x == s);
        let mut missing = Vec::new();
        let call_type = self.options.call_type;
        if call_type == CallType::Alias {
            missing.extend(
                [(Scalar::UserId, "userId"), (Scalar::PreviousId, "previousId")]
                    .into_iter()
                    .filter(|(s, _)| !has(*s))
                    .map(|(_, f)| f),
            );
            return missing;
        }
        if !has(Scalar::UserId) && !has(Scalar::AnonymousId) {
            missing.push("userId or anonymousId");
        }
        match call_type {
            CallType::Track if !has(Scalar::Event) => missing.push("event"),
            CallType::Page | CallType::Screen if !has(Scalar::Name) => missing.push("name"),
            CallType::Group if !has(Scalar::GroupId) => missing.push("groupId"),
            _ => {}
        }
        missing
    }

    /// Maps a [`Row`] of this mapper's result set (see [`RowMapper::map_values`]).
    pub fn map(&mut self, row_number: u64, row: &Row<'_>) -> Result<Call, RowError> {
        if !row.columns().same_as(&self.columns) && row.columns() != &self.columns {
            let reason = RowErrorReason::ColumnsDiffer;
            return Err(self.row_error(row_number, None, reason, row.values()));
        }
        self.map_values(row_number, row.values())
    }

    /// Maps one row's values, in column order, into a call of the sync's type; or
    /// reports why it cannot as a [`RowError`] carrying `row_number`.
    ///
    /// The call has what the row sets and nothing else: no `receivedAt` (the run
    /// stamps calls when it sends them, [`Call::stamp_received`]), and a `messageId`
    /// from the row's `messageId` column or else the deterministic one (see the crate
    /// docs).
    pub fn map_values(&mut self, row_number: u64, values: &[Value<'_>]) -> Result<Call, RowError> {
        match self.try_map(values) {
            Ok(call) => Ok(call),
            Err((column, reason)) => Err(self.row_error(row_number, column, reason, values)),
        }
    }

    fn try_map(&mut self, values: &[Value<'_>]) -> Result<Call, Fault> {
        if values.len() != self.columns.len() {
            return Err((
                None,
                RowErrorReason::ColumnCount { expected: self.columns.len(), found: values.len() },
            ));
        }
        let mut value_bytes = 0usize;
        let mut objects: [Option<JsonObject>; 3] = [None, None, None];
        for (slot, object) in objects.iter_mut().zip([Object::Payload, Object::Context, Object::Integrations])
        {
            *slot = self.build_object(object, values, &mut value_bytes)?;
        }
        let mut found = Found::default();
        for &(column, scalar) in &self.plan.scalars {
            let value = &values[column];
            value_bytes += measure(&mut self.scratch, column, value)?;
            let field = scalar.wire_name();
            let fault = |reason| (Some(column), reason);
            if scalar == Scalar::Timestamp {
                found.timestamp = row_timestamp(value).map_err(fault)?;
                continue;
            }
            let text = id_text(value, field).map_err(fault)?;
            let slot = match scalar {
                Scalar::UserId => &mut found.user_id,
                Scalar::AnonymousId => &mut found.anonymous_id,
                Scalar::MessageId => &mut found.message_id,
                Scalar::Event => &mut found.event,
                Scalar::Name => &mut found.name,
                Scalar::GroupId => &mut found.group_id,
                Scalar::PreviousId | Scalar::Timestamp => &mut found.previous_id,
            };
            *slot = text;
        }
        let mut extra = Extra::default();
        for &(column, key) in &self.plan.extra {
            let value = &values[column];
            if size_at_least(value) > MAX_VALUE_BYTES {
                let bytes = size_at_least(value);
                return Err((Some(column), RowErrorReason::ValueTooLarge { bytes, limit: MAX_VALUE_BYTES }));
            }
            self.scratch.clear();
            push_value(&mut self.scratch, value, self.options.parse_json_text)
                .map_err(|e| (Some(column), render_fault(e)))?;
            let bytes = self.scratch.len();
            if bytes > MAX_VALUE_BYTES {
                return Err((Some(column), RowErrorReason::ValueTooLarge { bytes, limit: MAX_VALUE_BYTES }));
            }
            value_bytes += bytes;
            let text = String::from_utf8_lossy(&self.scratch);
            extra
                .insert_json(key, &text)
                .map_err(|e| (Some(column), render_fault(RenderError::InvalidJson(e))))?;
        }
        let record = self.plan.names_json_len + value_bytes;
        if record > MAX_RECORD_BYTES {
            return Err((None, RowErrorReason::RecordTooLarge { bytes: record, limit: MAX_RECORD_BYTES }));
        }

        let call_type = self.options.call_type;
        let [payload, context, integrations] = objects;
        let body = match call_type {
            CallType::Identify => Body::Identify(Identify { traits: payload }),
            CallType::Group => Body::Group(Group { group_id: found.group_id, traits: payload }),
            CallType::Track => Body::Track(Track { event: found.event, properties: payload }),
            CallType::Page => Body::Page(Page { name: found.name.clone(), properties: payload }),
            CallType::Screen => Body::Screen(Screen { name: found.name.clone(), properties: payload }),
            CallType::Alias => Body::Alias(Alias { previous_id: found.previous_id }),
        };
        if matches!(call_type, CallType::Page | CallType::Screen)
            && found.name.as_deref().is_none_or(str::is_empty)
        {
            return Err((None, RowErrorReason::Call(CallError::MissingField { call_type, field: "name" })));
        }
        let mut call = Call::new(body);
        call.user_id = found.user_id;
        call.anonymous_id = found.anonymous_id;
        call.timestamp = found.timestamp;
        call.context = context;
        call.integrations = integrations;
        call.extra = extra;
        call.message_id = match found.message_id {
            Some(id) if !id.is_empty() => Some(id),
            _ => {
                let at = found.timestamp.unwrap_or(self.run_started_at);
                Some(self.hasher.message_id(values, at))
            }
        };
        match call.validate() {
            Ok(()) => Ok(call),
            Err(CallError::TooLarge { .. }) if !self.options.limit_call_size => Ok(call),
            Err(e) => {
                let column = match e {
                    CallError::MessageIdTooLong { .. } => self.scalar_column(Scalar::MessageId),
                    _ => None,
                };
                Err((column, RowErrorReason::Call(e)))
            }
        }
    }

    fn scalar_column(&self, scalar: Scalar) -> Option<usize> {
        self.plan.scalars.iter().find(|(_, s)| *s == scalar).map(|(c, _)| *c)
    }

    /// Builds one object of the call from the row, adding the size of the values it
    /// holds to `value_bytes`.
    fn build_object(
        &mut self,
        object: Object,
        values: &[Value<'_>],
        value_bytes: &mut usize,
    ) -> Result<Option<JsonObject>, Fault> {
        let field = crate::plan::object_name(object, self.options.call_type);
        let buf = &mut self.buf;
        buf.clear();
        match &self.plan.objects[object as usize] {
            None => return Ok(None),
            Some(ObjectPlan::Whole { column }) => {
                let value = &values[*column];
                let fault = |reason| (Some(*column), reason);
                match value {
                    Value::Null => return Ok(None),
                    Value::Json(j) if j.trim() == "null" => return Ok(None),
                    _ => {}
                }
                if size_at_least(value) > MAX_VALUE_BYTES {
                    let bytes = size_at_least(value);
                    return Err(fault(RowErrorReason::ValueTooLarge { bytes, limit: MAX_VALUE_BYTES }));
                }
                push_object(buf, value, field).map_err(fault)?;
                if buf.len() > MAX_VALUE_BYTES {
                    let bytes = buf.len();
                    return Err(fault(RowErrorReason::ValueTooLarge { bytes, limit: MAX_VALUE_BYTES }));
                }
                *value_bytes += buf.len();
            }
            Some(ObjectPlan::Fields { pieces, tail }) => {
                for piece in pieces {
                    buf.extend_from_slice(&piece.literal);
                    let value = &values[piece.column];
                    let fault = |reason| (Some(piece.column), reason);
                    let at_least = size_at_least(value);
                    if at_least > MAX_VALUE_BYTES {
                        return Err(fault(RowErrorReason::ValueTooLarge {
                            bytes: at_least,
                            limit: MAX_VALUE_BYTES,
                        }));
                    }
                    let start = buf.len();
                    match (piece.rule, value) {
                        (Rule::Any, Value::Timestamp(t) | Value::TimestampWithoutZone(t)) => {
                            match self.times.get_mut(piece.column) {
                                Some(last) => push_time(buf, last, *t),
                                None => push_time(buf, &mut TimestampText::default(), *t),
                            }
                        }
                        (Rule::Any, _) => push_value(buf, value, self.options.parse_json_text)
                            .map_err(|e| fault(render_fault(e)))?,
                        (Rule::Object(field), _) => push_object(buf, value, field).map_err(fault)?,
                        (Rule::ObjectTypeId, _) => push_object_type_id(buf, value).map_err(fault)?,
                    }
                    let bytes = buf.len() - start;
                    if bytes > MAX_VALUE_BYTES {
                        return Err(fault(RowErrorReason::ValueTooLarge { bytes, limit: MAX_VALUE_BYTES }));
                    }
                    *value_bytes += bytes;
                }
                buf.extend_from_slice(tail);
            }
        }
        // Only UTF-8 text and ASCII were written, so this does not fail.
        let text = String::from_utf8(buf.clone()).unwrap_or_default();
        Ok(Some(JsonObject::from_compact_unchecked(text)))
    }

    /// A row error, with the row's values written out.
    fn row_error(
        &mut self,
        row_number: u64,
        column: Option<usize>,
        reason: RowErrorReason,
        values: &[Value<'_>],
    ) -> RowError {
        let out = &mut self.scratch;
        out.clear();
        out.push(b'{');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match self.columns.name(i) {
                Some(name) => cdp_calls::push_json_string(out, name),
                None => cdp_calls::push_json_string(out, &format!("(value {} beyond the columns)", i + 1)),
            }
            out.push(b':');
            render::push_value_lenient(out, value, ERROR_VALUE_BYTES);
        }
        out.push(b'}');
        RowError {
            row_number,
            column: column.and_then(|c| self.columns.name(c)).map(Box::from),
            reason,
            values: String::from_utf8_lossy(out).into(),
        }
    }
}
