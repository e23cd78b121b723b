//! The typed model of a `#[derive(Event)]` input. It keeps the syn nodes, so every later
//! diagnostic can point at the token that is wrong.

use syn::{Attribute, Data, DeriveInput, Field, Fields, Ident, LitStr};

use crate::attr::{self, Errors, Slot};

/// The attribute this derive reads.
pub(crate) const ATTR: &str = "event";

/// The keys `#[event(...)]` accepts, in the order the docs list them.
pub(crate) const KEYS: &[&str] = &["type", "category", "stream", "crate", "validate"];

/// A `#[derive(Event)]` input.
pub(crate) struct Input<'a> {
    pub(crate) original: &'a DeriveInput,
    pub(crate) attrs: Attrs<'a>,
    /// `None` when the item has no shape an event can take (the error is already recorded).
    pub(crate) shape: Option<Shape<'a>>,
}

/// The values of `#[event(...)]`, each the literal as written.
#[derive(Default)]
pub(crate) struct Attrs<'a> {
    /// The first `#[event]` attribute, where a missing key is reported.
    pub(crate) first: Option<&'a Attribute>,
    pub(crate) type_name: Option<LitStr>,
    pub(crate) category: Option<LitStr>,
    pub(crate) stream: Option<LitStr>,
    pub(crate) krate: Option<LitStr>,
    pub(crate) validate: Option<LitStr>,
    /// Every key written, even with a bad value (so it is not also reported missing).
    pub(crate) given: Vec<String>,
}

/// The fields the stream template can refer to.
pub(crate) enum Shape<'a> {
    /// A struct with named fields.
    Struct(Vec<&'a Field>),
    /// An enum; every variant is one case.
    Enum(Vec<Variant<'a>>),
}

/// One enum variant.
pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    /// Its named fields; empty for unit and tuple variants.
    pub(crate) fields: Vec<&'a Field>,
}

impl<'a> Input<'a> {
    /// Reads the attributes and the shape, recording every mistake in `errors`.
    pub(crate) fn from_syn(input: &'a DeriveInput, errors: &mut Errors) -> Self {
        let attrs = Attrs::from_syn(&input.attrs, errors);
        let shape = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => {
                    reject_attrs(fields.named.iter().flat_map(|f| &f.attrs), "field", errors);
                    Some(Shape::Struct(fields.named.iter().collect()))
                }
                Fields::Unnamed(_) | Fields::Unit => {
                    errors.at(
                        input.ident.span(),
                        "`#[derive(Event)]` needs a struct with named fields (`struct Name { .. }`): \
                         event data is a JSON object",
                    );
                    None
                }
            },
            Data::Enum(data) => {
                let variants = data
                    .variants
                    .iter()
                    .map(|variant| {
                        reject_attrs(&variant.attrs, "variant", errors);
                        reject_attrs(
                            variant.fields.iter().flat_map(|f| &f.attrs),
                            "field",
                            errors,
                        );
                        Variant {
                            ident: &variant.ident,
                            fields: match &variant.fields {
                                Fields::Named(fields) => fields.named.iter().collect(),
                                Fields::Unnamed(_) | Fields::Unit => Vec::new(),
                            },
                        }
                    })
                    .collect();
                Some(Shape::Enum(variants))
            }
            Data::Union(data) => {
                errors.at(
                    data.union_token.span,
                    "`#[derive(Event)]` works on structs and enums, not unions",
                );
                None
            }
        };
        Self {
            original: input,
            attrs,
            shape,
        }
    }
}

impl<'a> Attrs<'a> {
    /// Whether `key` was written, whatever its value.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.given.iter().any(|given| given == key)
    }

    fn from_syn(attrs: &'a [Attribute], errors: &mut Errors) -> Self {
        let mut type_name = Slot::default();
        let mut category = Slot::default();
        let mut stream = Slot::default();
        let mut krate = Slot::default();
        let mut validate = Slot::default();
        let mut first = None;
        let mut given = Vec::new();
        for attr in attrs.iter().filter(|attr| attr.path().is_ident(ATTR)) {
            first.get_or_insert(attr);
            attr::parse_attribute(attr, errors, |meta, errors| {
                let key = attr::key_of(meta)?;
                let slot = match key.to_string().as_str() {
                    "type" => &mut type_name,
                    "category" => &mut category,
                    "stream" => &mut stream,
                    "crate" => &mut krate,
                    "validate" => &mut validate,
                    _ => {
                        given.extend(attr::closest(&key, KEYS).map(str::to_owned));
                        return Err(attr::unknown_key(&key, ATTR, KEYS));
                    }
                };
                given.push(key.to_string());
                let value = attr::string_value(meta, &key)?;
                slot.set(errors, ATTR, &key, value);
                Ok(())
            });
        }
        Self {
            first,
            type_name: type_name.into_inner(),
            category: category.into_inner(),
            stream: stream.into_inner(),
            krate: krate.into_inner(),
            validate: validate.into_inner(),
            given,
        }
    }
}

/// `#[event]` belongs on the type: report it anywhere else instead of ignoring it.
fn reject_attrs<'a>(attrs: impl IntoIterator<Item = &'a Attribute>, on: &str, errors: &mut Errors) {
    for attr in attrs {
        if attr.path().is_ident(ATTR) {
            errors.spanned(
                attr,
                format_args!("`#[event(...)]` goes on the event type, not on a {on}"),
            );
        }
    }
}
