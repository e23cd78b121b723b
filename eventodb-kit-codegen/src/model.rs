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
    /// An integer: its Rust type from `format` (`int32`, `uint64`, ...), or from the bounds.
    Int(Int),
    F64,
    /// A number with `"format": "float"`.
    F32,
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

/// The Rust integer types a schema can ask for by `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Int {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Int {
    /// Every integer format, by name (the names typify and OpenAPI use).
    pub(crate) const FORMATS: [(&'static str, Int); 8] = [
        ("int8", Int::I8),
        ("int16", Int::I16),
        ("int32", Int::I32),
        ("int64", Int::I64),
        ("uint8", Int::U8),
        ("uint16", Int::U16),
        ("uint32", Int::U32),
        ("uint64", Int::U64),
    ];

    /// The type an integer `format` names.
    pub(crate) fn from_format(name: &str) -> Option<Int> {
        Int::FORMATS
            .iter()
            .find(|(format, _)| *format == name)
            .map(|(_, int)| *int)
    }

    /// Whether the type holds negative numbers.
    pub(crate) fn signed(self) -> bool {
        matches!(self, Int::I8 | Int::I16 | Int::I32 | Int::I64)
    }

    /// The type's smallest and largest values.
    pub(crate) fn range(self) -> (i128, i128) {
        match self {
            Int::I8 => (i8::MIN.into(), i8::MAX.into()),
            Int::I16 => (i16::MIN.into(), i16::MAX.into()),
            Int::I32 => (i32::MIN.into(), i32::MAX.into()),
            Int::I64 => (i64::MIN.into(), i64::MAX.into()),
            Int::U8 => (0, u8::MAX.into()),
            Int::U16 => (0, u16::MAX.into()),
            Int::U32 => (0, u32::MAX.into()),
            Int::U64 => (0, u64::MAX.into()),
        }
    }

    /// Whether `value` is an integer this type holds (a `const`, a `default`).
    pub(crate) fn holds(self, value: &Value) -> bool {
        let n = match value {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from)),
            _ => None,
        };
        let (min, max) = self.range();
        n.is_some_and(|n| (min..=max).contains(&n))
    }
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
