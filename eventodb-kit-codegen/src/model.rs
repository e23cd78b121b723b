//! The typed model between JSON Schema and Rust: named types, fields, value shapes and the
//! checks serde cannot express.

use serde_json::{Number, Value};
use std::collections::BTreeMap;

/// Everything generated from one folder.
#[derive(Debug, Default)]
pub(crate) struct Model {
    /// Named types by Rust name (sorted, so output is deterministic).
    pub(crate) types: BTreeMap<String, TypeDef>,
}

/// A named Rust type.
#[derive(Debug)]
pub(crate) struct TypeDef {
    pub(crate) name: String,
    pub(crate) doc: String,
    /// `file#pointer` it came from, for the doc comment.
    pub(crate) origin: String,
    pub(crate) kind: TypeKind,
}

#[derive(Debug)]
pub(crate) enum TypeKind {
    Struct(StructDef),
    /// A string enum: variant name and JSON value.
    Enum(Vec<(String, String)>),
    /// An integer enum: variant name and JSON value.
    IntEnum(Vec<(String, i64)>),
    /// `oneOf` of objects told apart by a `const` property: the tag and `(variant, value, struct)`.
    Union {
        tag: String,
        variants: Vec<UnionVariant>,
    },
}

#[derive(Debug)]
pub(crate) struct UnionVariant {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) doc: Option<String>,
    /// The struct holding the variant's other properties.
    pub(crate) payload: String,
}

#[derive(Debug)]
pub(crate) struct StructDef {
    pub(crate) fields: Vec<Field>,
    pub(crate) deny_unknown_fields: bool,
    pub(crate) event: Option<EventInfo>,
}

/// What makes a struct an event.
#[derive(Debug)]
pub(crate) struct EventInfo {
    pub(crate) event_type: String,
    pub(crate) category: String,
    /// The category's constant in the generated `categories` module, e.g. `USER`.
    pub(crate) category_const: String,
    pub(crate) stream: String,
    /// The template split into literal text and field references.
    pub(crate) parts: Vec<TemplatePart>,
}

#[derive(Debug)]
pub(crate) enum TemplatePart {
    Text(String),
    /// The Rust identifier of the field.
    Field(String),
}

#[derive(Debug)]
pub(crate) struct Field {
    /// The JSON property name.
    pub(crate) json_name: String,
    /// The Rust identifier (possibly `r#type`).
    pub(crate) ident: String,
    pub(crate) rename: bool,
    pub(crate) doc: Option<String>,
    pub(crate) shape: Shape,
    pub(crate) presence: Presence,
}

/// How a property may be absent or null.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Presence {
    /// Required, not nullable: `T`.
    Required,
    /// Required and nullable: `Option<T>`, the key must be there.
    RequiredNullable,
    /// Optional, not nullable: `Option<T>`, absent when `None`, `null` rejected.
    Optional,
    /// Optional and nullable: `Option<T>`; absent and `null` both read as `None`.
    OptionalNullable,
    /// Optional with a default: `T`, filled in when absent.
    Defaulted(Value),
}

/// The shape of one value.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) ty: Ty,
    /// `Option<..>` around the type (a nullable array item or map value).
    pub(crate) nullable: bool,
    pub(crate) checks: Vec<Check>,
    /// Keywords to repeat in the schemars schema (`#[schemars(extend(..))]`), so the derived
    /// schema accepts what the source accepts.
    pub(crate) extend: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    String,
    Uuid,
    DateTime,
    Date,
    I64,
    U64,
    F64,
    Bool,
    /// Any JSON value (only for an explicit `true` schema).
    Any,
    Vec(Box<Shape>),
    Map(Box<Shape>),
    /// A generated type; `boxed` for recursion.
    Named {
        name: String,
        boxed: bool,
    },
}

impl PartialEq for Shape {
    fn eq(&self, other: &Self) -> bool {
        self.ty == other.ty && self.nullable == other.nullable
    }
}

/// One rule checked by the generated `validate`.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    MinLength(u64),
    MaxLength(u64),
    Pattern(String),
    Format(Format),
    Minimum(Number),
    Maximum(Number),
    ExclusiveMinimum(Number),
    ExclusiveMaximum(Number),
    MultipleOf(Number),
    MinItems(u64),
    MaxItems(u64),
    UniqueItems,
    MinProperties(u64),
    MaxProperties(u64),
    Const(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Email,
    Uri,
    Ipv4,
    Ipv6,
}

impl Shape {
    pub(crate) fn new(ty: Ty) -> Self {
        Self {
            ty,
            nullable: false,
            checks: Vec::new(),
            extend: BTreeMap::new(),
        }
    }
}
