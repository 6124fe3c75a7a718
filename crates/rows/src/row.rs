//! [`Columns`] and [`Row`]: a result set's ordered column names and one row of values.

use std::fmt;
use std::sync::Arc;

use crate::Value;

/// The ordered column names of a result set, as the database returns them.
///
/// Known once per result set, before any row; cheap to clone (shared), so every
/// [`Row`] of the result can carry them.
///
/// ```
/// use cdp_rows::Columns;
///
/// let columns = Columns::new(["USERID", "EMAIL"]);
/// assert_eq!(columns.len(), 2);
/// assert_eq!(columns.position("EMAIL"), Some(1));
/// assert_eq!(columns.names(), ["USERID", "EMAIL"]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Columns(Arc<[String]>);

impl Columns {
    /// Column names in result order.
    pub fn new<I, S>(names: I) -> Columns
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Columns(names.into_iter().map(Into::into).collect())
    }

    /// The names in result order.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The name of column `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.0.get(index).map(String::as_str)
    }

    /// The index of the first column called exactly `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|n| n == name)
    }

    /// How many columns there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when both are the same shared list (a cheap pointer comparison).
    pub(crate) fn same_as(&self, other: &Columns) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Columns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<S: Into<String>> FromIterator<S> for Columns {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Columns::new(iter)
    }
}

/// One row of a result set: its [`Columns`] and one [`Value`] per column.
///
/// ```
/// use cdp_rows::{Columns, Row, Value};
///
/// let columns = Columns::new(["userId", "email"]);
/// let row = Row::new(columns.clone(), vec![Value::from(7), Value::from("ada@example.com")]);
/// assert_eq!(row.get("email"), Some(&Value::from("ada@example.com")));
///
/// // The same row, built from pairs (handy in tests and examples).
/// let same = Row::from_pairs([("userId", Value::from(7)), ("email", Value::from("ada@example.com"))]);
/// assert_eq!(same.values(), row.values());
/// assert_eq!(same.columns(), row.columns());
/// ```
#[derive(Clone, PartialEq)]
pub struct Row<'a> {
    columns: Columns,
    values: Vec<Value<'a>>,
}

impl<'a> Row<'a> {
    /// A row of `values` under `columns`. A row with a different number of values
    /// than columns is reported as a row error when it is mapped.
    pub fn new(columns: Columns, values: Vec<Value<'a>>) -> Row<'a> {
        Row { columns, values }
    }

    /// A row from `(name, value)` pairs, with columns of its own.
    pub fn from_pairs<I, S>(pairs: I) -> Row<'a>
    where
        I: IntoIterator<Item = (S, Value<'a>)>,
        S: Into<String>,
    {
        let (names, values): (Vec<String>, Vec<Value<'a>>) =
            pairs.into_iter().map(|(n, v)| (n.into(), v)).unzip();
        Row { columns: Columns::new(names), values }
    }

    /// The row's columns.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value<'a>] {
        &self.values
    }

    /// The value of the first column called exactly `name`.
    pub fn get(&self, name: &str) -> Option<&Value<'a>> {
        self.columns.position(name).and_then(|i| self.values.get(i))
    }

    /// The values, giving up the columns.
    pub fn into_values(self) -> Vec<Value<'a>> {
        self.values
    }

    /// The row with all borrowed data copied.
    pub fn into_owned(self) -> Row<'static> {
        Row { columns: self.columns, values: self.values.into_iter().map(Value::into_owned).collect() }
    }
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (i, value) in self.values.iter().enumerate() {
            map.entry(&self.columns.name(i).unwrap_or("?"), value);
        }
        map.finish()
    }
}
