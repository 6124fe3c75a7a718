//! Planning a result set: where each column lands in the call, checked once, up front.

use cdp_calls::{CallType, push_json_string};

use crate::{MAX_COLUMNS, MAX_NAME_CHARS, SyncError};

/// A top-level field of a call that one column sets whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scalar {
    UserId,
    AnonymousId,
    MessageId,
    Timestamp,
    Event,
    Name,
    GroupId,
    PreviousId,
}

impl Scalar {
    pub(crate) const fn wire_name(self) -> &'static str {
        match self {
            Scalar::UserId => "userId",
            Scalar::AnonymousId => "anonymousId",
            Scalar::MessageId => "messageId",
            Scalar::Timestamp => "timestamp",
            Scalar::Event => "event",
            Scalar::Name => "name",
            Scalar::GroupId => "groupId",
            Scalar::PreviousId => "previousId",
        }
    }
}

/// An object of the call that columns build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Object {
    /// `traits` (identify, group) or `properties` (track, page, screen).
    Payload,
    Context,
    Integrations,
}

/// How a value is checked and converted on its way into an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Any value, written by the value rules.
    Any,
    /// A JSON object (a JSON value or text holding one) or null:
    /// `traits.relationshipAttributes`.
    Object(&'static str),
    /// A positive integer, written as a string: the group's `objectTypeId`.
    ObjectTypeId,
}

/// Where one column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Scalar(Scalar),
    /// An unknown top-level field of the call (`groupId` of identify, `event` of page
    /// and screen): reserved, but the type has no such field.
    Extra(&'static str),
    /// A place inside an object; an empty path is the whole object.
    In {
        object: Object,
        path: Vec<String>,
        rule: Rule,
    },
}

/// A literal piece of an object's JSON text, then the value of a column.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub(crate) literal: Box<[u8]>,
    pub(crate) column: usize,
    pub(crate) rule: Rule,
}

/// How an object's JSON text is built from a row.
#[derive(Debug, Clone)]
pub(crate) enum ObjectPlan {
    /// One column holds the whole object (`context`): absent when null.
    Whole { column: usize },
    /// Columns fill fields: `pieces` in order, then `tail`. Always present.
    Fields { pieces: Vec<Piece>, tail: Box<[u8]> },
}

/// The plan for a result set.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Columns that set top-level fields, in column order.
    pub(crate) scalars: Vec<(usize, Scalar)>,
    /// Columns that set unknown top-level fields.
    pub(crate) extra: Vec<(usize, &'static str)>,
    /// Indexed by [`Object`] as `usize`.
    pub(crate) objects: [Option<ObjectPlan>; 3],
    /// Where each column lands, as a dotted wire path.
    pub(crate) fields: Vec<String>,
    /// The size of a row's JSON object without its values: braces, commas, and each
    /// name as a JSON string with its colon.
    pub(crate) names_json_len: usize,
}

/// The reserved keys of `context` (SPEC section 1), matched without regard to case.
const CONTEXT_KEYS: [&str; 10] =
    ["ip", "library", "page", "device", "os", "app", "locale", "userAgent", "campaign", "traits"];

/// The wire name of an object for the call type.
pub(crate) const fn object_name(object: Object, call_type: CallType) -> &'static str {
    match object {
        Object::Context => "context",
        Object::Integrations => "integrations",
        Object::Payload => match call_type {
            CallType::Identify | CallType::Group => "traits",
            _ => "properties",
        },
    }
}

/// Where a column lands, or why it cannot.
fn target(call_type: CallType, name: &str, lowercase: bool) -> Option<Target> {
    use CallType::*;
    let is = |reserved: &str| name.eq_ignore_ascii_case(reserved);
    let scalar = |s: Scalar| Some(Target::Scalar(s));
    let whole = |object: Object| Some(Target::In { object, path: Vec::new(), rule: Rule::Any });
    let alias = call_type == Alias;
    // Whole-name reserved fields.
    if is("userId") {
        return scalar(Scalar::UserId);
    }
    if is("messageId") {
        return scalar(Scalar::MessageId);
    }
    if is("timestamp") {
        return scalar(Scalar::Timestamp);
    }
    if is("context") {
        return whole(Object::Context);
    }
    match call_type {
        Alias if is("previousId") => return scalar(Scalar::PreviousId),
        Alias => {}
        _ if is("anonymousId") => return scalar(Scalar::AnonymousId),
        _ if is("integrations") => return whole(Object::Integrations),
        Identify if is("groupId") => return Some(Target::Extra("groupId")),
        Group if is("groupId") => return scalar(Scalar::GroupId),
        Group if is("objectTypeId") => {
            return Some(Target::In {
                object: Object::Payload,
                path: vec!["objectTypeId".to_owned()],
                rule: Rule::ObjectTypeId,
            });
        }
        Track if is("event") => return scalar(Scalar::Event),
        Page | Screen if is("event") => return Some(Target::Extra("event")),
        Page | Screen if is("name") => return scalar(Scalar::Name),
        _ => {}
    }
    let mut segments = name.split('.');
    let first = segments.next().unwrap_or_default();
    let fold = |s: &str| if lowercase { s.to_lowercase() } else { s.to_owned() };
    if first.eq_ignore_ascii_case("context") {
        let mut path = Vec::new();
        if let Some(key) = segments.next() {
            let canonical = CONTEXT_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key));
            path.push(canonical.map_or_else(|| fold(key), |k| (*k).to_owned()));
        }
        path.extend(segments.map(fold));
        return Some(Target::In { object: Object::Context, path, rule: Rule::Any });
    }
    if alias {
        return None;
    }
    if first.eq_ignore_ascii_case("integrations") {
        // Integration names (`All`, `Mixpanel`) are kept as returned.
        let path = segments.map(str::to_owned).collect();
        return Some(Target::In { object: Object::Integrations, path, rule: Rule::Any });
    }
    let mut path = Vec::new();
    let mut rule = Rule::Any;
    if call_type == Group && first.eq_ignore_ascii_case("relationshipAttributes") {
        path.push("relationshipAttributes".to_owned());
        if name.len() == first.len() {
            rule = Rule::Object("traits.relationshipAttributes");
        }
    } else {
        path.push(fold(first));
    }
    path.extend(segments.map(fold));
    Some(Target::In { object: Object::Payload, path, rule })
}

/// A dotted wire path for a target.
fn field_name(target: &Target, call_type: CallType) -> String {
    match target {
        Target::Scalar(s) => s.wire_name().to_owned(),
        Target::Extra(name) => (*name).to_owned(),
        Target::In { object, path, .. } => {
            let mut text = object_name(*object, call_type).to_owned();
            for segment in path {
                text.push('.');
                text.push_str(segment);
            }
            text
        }
    }
}

/// A node of an object's key tree, children in order of first appearance.
struct Node {
    key: String,
    leaf: Option<(usize, Rule)>,
    children: Vec<Node>,
}

fn insert(children: &mut Vec<Node>, path: &[String], column: usize, rule: Rule) {
    let Some((key, rest)) = path.split_first() else { return };
    let index = match children.iter().position(|n| &n.key == key) {
        Some(i) => i,
        None => {
            children.push(Node { key: key.clone(), leaf: None, children: Vec::new() });
            children.len() - 1
        }
    };
    let node = &mut children[index];
    if rest.is_empty() {
        node.leaf = Some((column, rule));
    } else {
        insert(&mut node.children, rest, column, rule);
    }
}

fn emit(children: &[Node], literal: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    literal.push(b'{');
    for (i, node) in children.iter().enumerate() {
        if i > 0 {
            literal.push(b',');
        }
        push_json_string(literal, &node.key);
        literal.push(b':');
        match node.leaf {
            Some((column, rule)) => {
                let literal = std::mem::take(literal).into_boxed_slice();
                pieces.push(Piece { literal, column, rule });
            }
            None => emit(&node.children, literal, pieces),
        }
    }
    literal.push(b'}');
}

impl Plan {
    /// Plans `names` for a sync of `call_type`, or finds why they cannot be mapped.
    pub(crate) fn new(names: &[String], call_type: CallType, lowercase: bool) -> Result<Plan, SyncError> {
        if names.len() > MAX_COLUMNS {
            return Err(SyncError::TooManyColumns { count: names.len(), limit: MAX_COLUMNS });
        }
        let mut targets = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let chars = name.chars().count();
            if chars > MAX_NAME_CHARS {
                return Err(SyncError::NameTooLong {
                    column: name.clone(),
                    index: i + 1,
                    chars,
                    limit: MAX_NAME_CHARS,
                });
            }
            if name.split('.').any(str::is_empty) {
                return Err(SyncError::EmptyName { column: name.clone(), index: i + 1 });
            }
            match target(call_type, name, lowercase) {
                Some(t) => targets.push(t),
                None => return Err(SyncError::NoPlace { column: name.clone(), call_type }),
            }
        }
        let fields: Vec<String> = targets.iter().map(|t| field_name(t, call_type)).collect();
        check_conflicts(names, &targets, &fields)?;

        let mut plan = Plan {
            scalars: Vec::new(),
            extra: Vec::new(),
            objects: [None, None, None],
            fields,
            names_json_len: 2 + names.len().saturating_sub(1),
        };
        let mut scratch = Vec::new();
        for name in names {
            scratch.clear();
            push_json_string(&mut scratch, name);
            plan.names_json_len += scratch.len() + 1;
        }
        let mut trees: [Vec<Node>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for (column, t) in targets.into_iter().enumerate() {
            match t {
                Target::Scalar(s) => plan.scalars.push((column, s)),
                Target::Extra(name) => plan.extra.push((column, name)),
                Target::In { object, path, .. } if path.is_empty() => {
                    plan.objects[object as usize] = Some(ObjectPlan::Whole { column });
                }
                Target::In { object, path, rule } => insert(&mut trees[object as usize], &path, column, rule),
            }
        }
        for (slot, tree) in plan.objects.iter_mut().zip(trees) {
            if !tree.is_empty() {
                let mut literal = Vec::new();
                let mut pieces = Vec::new();
                emit(&tree, &mut literal, &mut pieces);
                *slot = Some(ObjectPlan::Fields { pieces, tail: literal.into_boxed_slice() });
            }
        }
        Ok(plan)
    }
}

/// Finds two columns that set the same field, or a field inside another's.
fn check_conflicts(names: &[String], targets: &[Target], fields: &[String]) -> Result<(), SyncError> {
    // Keys that sort a field right before the fields nested inside it.
    let mut keys: Vec<(u8, Vec<&str>, usize)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            Target::Scalar(_) | Target::Extra(_) => (0, vec![fields[i].as_str()], i),
            Target::In { object, path, .. } => {
                (1 + *object as u8, path.iter().map(String::as_str).collect(), i)
            }
        })
        .collect();
    keys.sort();
    for pair in keys.windows(2) {
        let (ka, pa, a) = &pair[0];
        let (kb, pb, b) = &pair[1];
        if ka != kb || !pb.starts_with(pa) {
            continue;
        }
        if pa.len() == pb.len() {
            let (first, second) = (*a.min(b), *a.max(b));
            return Err(SyncError::SameField {
                first: names[first].clone(),
                second: names[second].clone(),
                field: fields[first].clone(),
            });
        }
        return Err(SyncError::NestedInsideField {
            outer: names[*a].clone(),
            outer_field: fields[*a].clone(),
            inner: names[*b].clone(),
            inner_field: fields[*b].clone(),
        });
    }
    Ok(())
}
