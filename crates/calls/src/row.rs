//! The warehouse row view of a call: the columns of every exported file.

use std::borrow::Cow;

use crate::{Call, CallType, JsonObject, Timestamp, event_slug};

/// How a column's values are typed in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// An instant: RFC 3339 text in JSON and CSV, `TIMESTAMP(MICROS, UTC)` in Parquet.
    Timestamp,
    /// UTF-8 text.
    Text,
    /// A JSON object: an object in NDJSON, its compact text in CSV, UTF-8 annotated
    /// as JSON in Parquet.
    Json,
}

/// One column of a warehouse table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Column {
    /// The column name (`received_at`).
    pub name: &'static str,
    /// How its values are typed.
    pub kind: ColumnKind,
    /// Which field of a call fills it.
    source: Source,
}

/// The field of a call behind a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    ReceivedAt,
    SentAt,
    Timestamp,
    OriginalTimestamp,
    MessageId,
    UserId,
    AnonymousId,
    EventSlug,
    EventText,
    Name,
    GroupId,
    ObjectTypeId,
    PreviousId,
    Traits,
    Properties,
    Context,
}

const fn ts(name: &'static str, source: Source) -> Column {
    Column { name, kind: ColumnKind::Timestamp, source }
}
const fn text(name: &'static str, source: Source) -> Column {
    Column { name, kind: ColumnKind::Text, source }
}
const fn json(name: &'static str, source: Source) -> Column {
    Column { name, kind: ColumnKind::Json, source }
}

macro_rules! columns {
    ($($extra:expr),*) => {
        &[
            ts("received_at", Source::ReceivedAt),
            text("id", Source::MessageId),
            text("user_id", Source::UserId),
            text("anonymous_id", Source::AnonymousId),
            ts("sent_at", Source::SentAt),
            ts("timestamp", Source::Timestamp),
            ts("original_timestamp", Source::OriginalTimestamp),
            $($extra),*
        ]
    };
}

const IDENTIFY: &[Column] = columns!(json("traits", Source::Traits), json("context", Source::Context));
const TRACK: &[Column] = columns!(
    text("event", Source::EventSlug),
    text("event_text", Source::EventText),
    json("properties", Source::Properties),
    json("context", Source::Context)
);
const PAGE: &[Column] = columns!(
    text("name", Source::Name),
    json("properties", Source::Properties),
    json("context", Source::Context)
);
const GROUP: &[Column] = columns!(
    text("group_id", Source::GroupId),
    text("object_type_id", Source::ObjectTypeId),
    json("traits", Source::Traits),
    json("context", Source::Context)
);
const ALIAS: &[Column] = columns!(text("previous_id", Source::PreviousId), json("context", Source::Context));

/// Index of `received_at`, the sort key, in every column list.
pub const RECEIVED_AT_COLUMN: usize = 0;

impl CallType {
    /// The columns of this type's warehouse table, in file order.
    ///
    /// ```
    /// use cdp_calls::CallType;
    ///
    /// let names: Vec<_> = CallType::Alias.columns().iter().map(|c| c.name).collect();
    /// assert_eq!(
    ///     names,
    ///     ["received_at", "id", "user_id", "anonymous_id", "sent_at", "timestamp",
    ///      "original_timestamp", "previous_id", "context"]
    /// );
    /// ```
    pub const fn columns(self) -> &'static [Column] {
        match self {
            CallType::Identify => IDENTIFY,
            CallType::Track => TRACK,
            CallType::Page | CallType::Screen => PAGE,
            CallType::Group => GROUP,
            CallType::Alias => ALIAS,
        }
    }
}

/// One cell of a warehouse row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// The call has no value here.
    Null,
    /// A [`ColumnKind::Timestamp`] value.
    Timestamp(Timestamp),
    /// A [`ColumnKind::Text`] value.
    Text(Cow<'a, str>),
    /// A [`ColumnKind::Json`] value: compact JSON text of an object.
    Json(&'a JsonObject),
}

/// A call seen as a row of its type's warehouse table ([`CallType::columns`]).
///
/// ```
/// use cdp_calls::{Call, Value};
///
/// let call = Call::track("u1", "Order Completed").with_message_id("m1");
/// let row = call.row();
/// assert_eq!(row.value(1), Value::Text("m1".into()));
/// assert_eq!(row.get("event"), Some(Value::Text("order_completed".into())));
/// assert_eq!(row.get("event_text"), Some(Value::Text("Order Completed".into())));
/// assert_eq!(row.get("properties"), Some(Value::Null));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WarehouseRow<'a> {
    call: &'a Call,
    columns: &'static [Column],
}

impl Call {
    /// The call as a row of its type's warehouse table.
    pub fn row(&self) -> WarehouseRow<'_> {
        WarehouseRow { call: self, columns: self.call_type().columns() }
    }

    /// `object_type_id` of a group call: `traits.objectTypeId` as text (a number's
    /// decimal form, a string as is), `"1"` when absent or null. Other types: `None`.
    pub fn object_type_id(&self) -> Option<Cow<'_, str>> {
        if self.call_type() != CallType::Group {
            return None;
        }
        let Some(traits) = self.traits() else { return Some(Cow::Borrowed("1")) };
        #[derive(serde::Deserialize)]
        struct Probe<'a> {
            #[serde(rename = "objectTypeId", borrow)]
            object_type_id: Option<&'a serde_json::value::RawValue>,
        }
        let found;
        let raw = match serde_json::from_str::<Probe<'_>>(traits.as_str()) {
            Ok(probe) => probe.object_type_id.map(|raw| raw.get()),
            // The probe rejects a duplicate key: then the last one wins, as in `lookup`.
            Err(_) => {
                found = traits.lookup("objectTypeId");
                found.as_deref()
            }
        };
        let text = match raw {
            None | Some("null") => Cow::Borrowed("1"),
            Some(raw) if raw.starts_with('"') => {
                Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned()))
            }
            Some(raw) => Cow::Owned(raw.to_owned()),
        };
        Some(text)
    }
}

fn text_value(value: Option<&str>) -> Value<'_> {
    value.map_or(Value::Null, |s| Value::Text(Cow::Borrowed(s)))
}

impl<'a> WarehouseRow<'a> {
    /// The call behind the row.
    pub fn call(&self) -> &'a Call {
        self.call
    }

    /// The row's columns.
    pub fn columns(&self) -> &'static [Column] {
        self.columns
    }

    /// The value of column `index` of [`WarehouseRow::columns`].
    ///
    /// # Panics
    /// If `index` is not a column of the row's type.
    pub fn value(&self, index: usize) -> Value<'a> {
        let c = self.call;
        match self.columns[index].source {
            Source::ReceivedAt => c.received_at.map_or(Value::Null, Value::Timestamp),
            Source::SentAt => c.sent_at.map_or(Value::Null, Value::Timestamp),
            Source::Timestamp => c.timestamp.map_or(Value::Null, Value::Timestamp),
            Source::OriginalTimestamp => c.original_timestamp.map_or(Value::Null, Value::Timestamp),
            Source::MessageId => text_value(c.message_id.as_deref()),
            Source::UserId => text_value(c.user_id.as_deref()),
            Source::AnonymousId => text_value(c.anonymous_id.as_deref()),
            Source::EventSlug => c.event().map_or(Value::Null, |e| Value::Text(Cow::Owned(event_slug(e)))),
            Source::EventText => text_value(c.event()),
            Source::Name => text_value(c.name()),
            Source::GroupId => text_value(c.group_id()),
            Source::ObjectTypeId => c.object_type_id().map_or(Value::Null, Value::Text),
            Source::PreviousId => text_value(c.previous_id()),
            Source::Traits => c.traits().map_or(Value::Null, Value::Json),
            Source::Properties => c.properties().map_or(Value::Null, Value::Json),
            Source::Context => c.context.as_ref().map_or(Value::Null, Value::Json),
        }
    }

    /// The value of the column called `name`, if the row's type has it.
    pub fn get(&self, name: &str) -> Option<Value<'a>> {
        self.columns.iter().position(|c| c.name == name).map(|i| self.value(i))
    }

    /// All values in column order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = Value<'a>> + '_ {
        (0..self.columns.len()).map(|i| self.value(i))
    }
}
