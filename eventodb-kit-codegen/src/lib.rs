//! Build-script code generation: a folder of JSON Schema files becomes typed eventodb-kit events.
//!
//! ```no_run
//! // build.rs
//! eventodb_kit_codegen::Settings::new("schemas").run();
//! ```
//!
//! ```ignore
//! // src/events.rs (one generated file per module: it imports `__eventodb*` aliases)
//! eventodb_kit::include_events!();
//! ```
//!
//! Each event schema becomes a struct deriving `Debug`, `Clone`, `PartialEq`, serde's
//! `Serialize`/`Deserialize` and schemars' `JsonSchema`, implementing `eventodb_kit::Event`
//! (type, category, stream template, validation). The folder also yields an `AnyEvent` enum,
//! an `Events` registry (`eventodb_kit::registry::EventRegistry`) and a `categories` module.
//! The generated code names only `eventodb_kit` (override with [`Settings::crate_path`]): the
//! using crate needs no serde, schemars, uuid, chrono or regex dependency of its own.
//!
//! # The schema dialect
//!
//! **Files.** Every `*.json` file under the folder, recursively, is read; dot-files and
//! dot-folders (an editor's `.#x.json` lock file) are skipped. A file with an
//! `x-eventodb` object is an *event*; any other file (e.g. `common/address.json`) holds shared
//! definitions, generated once however many events refer to them.
//!
//! **Drafts.** `$schema` may be draft 2020-12 (the default when absent), 2019-09 or draft-07;
//! `$defs` and `definitions` are both read.
//!
//! **Events.** One event per file:
//!
//! ```json
//! {
//!   "$schema": "https://json-schema.org/draft/2020-12/schema",
//!   "title": "UserCreated",
//!   "description": "A user signed up.",
//!   "x-eventodb": { "category": "user", "stream": "user-{user_id}" },
//!   "type": "object",
//!   "required": ["user_id", "email", "created_at"],
//!   "properties": {
//!     "user_id":    { "type": "string", "format": "uuid" },
//!     "email":      { "type": "string", "format": "email" },
//!     "plan":       { "enum": ["free", "pro"], "default": "free" },
//!     "address":    { "$ref": "common/address.json" },
//!     "created_at": { "type": "string", "format": "date-time" }
//!   },
//!   "additionalProperties": false
//! }
//! ```
//!
//! - `title` is the event type and the struct name, in UpperCamelCase; two files with one
//!   event type fail the build.
//! - `x-eventodb.category` is the category (no `-`, braces, spaces or control characters, as for
//!   `#[derive(Event)]`), `x-eventodb.stream` the stream-name
//!   template: the category, a dash, then text and `{property}` placeholders, e.g.
//!   `user-{user_id}` or the compound `class_membership-{class_id}+{student_id}`. Each
//!   placeholder must name a required, non-nullable string, uuid or integer property.
//! - The root must be `"type": "object"` with `properties`.
//!
//! **Types.**
//!
//! | schema | Rust |
//! |---|---|
//! | `string` | `String` |
//! | `string` + `format: uuid` / `date-time` / `date` | `Uuid` / `DateTime<Utc>` / `NaiveDate` |
//! | `string` + `format: email` / `uri` / `ipv4` / `ipv6` | `String`, checked by `validate()` |
//! | `integer` | `i64`; `u64` when `minimum` or `exclusiveMinimum` is `>= 0` |
//! | `integer` + `format: int8` … `int64` / `uint8` … `uint64` | `i8` … `i64` / `u8` … `u64` |
//! | `number` / `boolean` | `f64` / `bool` |
//! | `number` + `format: float` / `double` | `f32` / `f64` |
//! | `array` with `items` | `Vec<T>` |
//! | `object` with `properties` | a named struct (its `title`, else parent name + property name) |
//! | `object` with only an `additionalProperties` schema | `BTreeMap<String, T>` |
//! | `enum` of strings | a Rust enum, each variant renamed to its value |
//! | `enum` of integers (`"type": "integer"`, or no `type`) | a Rust enum written and read as its number (`value()` gives it); variants `Value1`, `ValueMinus1`, or the names in `x-enum-varnames`, in order of value; a `format` (`int32`, …) must hold every value |
//! | `oneOf` of objects sharing a required `const` property | `#[serde(tag = "...")]` enum |
//! | `const` | the type of the value, checked by `validate()` |
//! | `"type": ["string", "null"]` (or `null` in an `enum` whose `type`, if any, has `"null"` too) | `Option<T>` |
//! | a `$ref` to such a type, or `oneOf`/`anyOf` of a `$ref` and `{"type": "null"}` | `Option<T>` |
//! | the `true` schema (e.g. `"additionalProperties": true`) | `serde_json::Value` |
//!
//! Properties not in `required` are `Option<T>`, left out when `None`; a `null` is refused
//! unless the type is nullable. An optional property with a `default` (string, number,
//! boolean or enum value) is a plain `T` filled in when absent; `"default": null` on a nullable
//! one (as Pydantic writes it) is no default: absent and `null` both read as `None`. `"additionalProperties":
//! false` becomes `#[serde(deny_unknown_fields)]`; otherwise unknown properties are ignored.
//! Struct fields are in alphabetical order. Property names that are not Rust identifiers or
//! are keywords are renamed (`first-name` → `first_name`, `type` → `r#type`) with
//! `#[serde(rename)]`. Names keep only ASCII letters and digits (`area_m²` → `area_m`); a name
//! with none left is a schema error. A type named `Self` becomes `SelfType`; `AnyEvent` and
//! `Events` are the registry's and refused as type names, as are two categories that make one
//! `categories` constant (`user_command`, `user:command`). `description`s become doc comments;
//! a code fence in one that rustdoc would run as a doctest (no language, or `rust`) is marked
//! `text`.
//!
//! **References.** `$ref` may point into the same file (`#/$defs/Money`,
//! `#/definitions/Money`), to another file relative to the referring one
//! (`common/address.json`, `../common/address.json`), or into one
//! (`common/money.json#/$defs/Currency`); `%XX` escapes are decoded (`#/$defs/Foo%20Bar`). A referenced object, enum or union is generated once,
//! named by its `title`, else its `$defs` key, else as it is in its own file (parent and
//! property name: `user.json#/properties/address` is `UserAddress`), and a file's root by its
//! file name; a referenced scalar schema
//! is inlined; one that holds itself with no object in between (an array of itself) is
//! refused. Remote (`https://...`) references are refused.
//!
//! **Validation.** `validate()` (called by `Event::decode`) checks what serde cannot:
//! `minLength`, `maxLength`, `pattern` (Rust `regex` syntax, compiled at build time),
//! `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minItems`,
//! `maxItems`, `uniqueItems`, `minProperties`, `maxProperties`, `const` and the string formats,
//! recursively, returning every violation with its JSON pointer (`/address/zip`, `/items/2/qty`).
//! The same keywords are copied into the schemars schema, so `schemars::schema_for!` of a
//! generated type accepts what the source schema accepts.
//!
//! **Refused.** Anything else fails the build with the file, the JSON pointer and what is
//! wrong: unknown keywords (extensions must start with `x-`), `allOf`, `anyOf`, `not`,
//! `if`/`then`/`else`, `patternProperties`, tuple `items`, several non-null types, unknown
//! formats, keywords a generated struct, enum or union could not check (`minProperties` or
//! `const` beside `properties`, `minLength` beside a string `enum`, `required` on a map),
//! an unknown `$ref`, a placeholder that is not a required property, two files with
//! one event type, an event that is not an object, a schema without a `type`. Never a panic,
//! never a silent `serde_json::Value`.
//!
//! **Registry.** `AnyEvent` has one variant per event; `Events` implements
//! `eventodb_kit::registry::EventRegistry` (`TYPES`, `CATEGORIES`, `category_of`,
//! `types_in`, `decode(type, data)`) and has `Events::json_schema(type)`; `categories::USER`
//! etc. list each category's types as `&[&str]` constants for compile-time checks
//! (`eventodb_kit::registry::missing_type` is a `const fn`: a proc macro cannot read another
//! crate's constants, but the code it expands to can).
//!
//! **Known differences** from a JSON Schema validator: serde reads a struct from a JSON
//! array of its fields; the `uuid` and `chrono` parsers accept some spellings the formats do
//! not (a UUID without hyphens); `1.0` is not an integer for serde; `format` keeps its
//! 2020-12 meaning in draft-07 files; a `date-time` keeps the instant but not its offset
//! (`DateTime<Utc>`: `+02:00` is written back as `Z`); `pattern` is a Rust regex, whose `\d`
//! and `\w` are Unicode-aware (ECMA-262's are ASCII): write `[0-9]` for ASCII digits.
//! `Settings::derive("Eq")` (or `Hash`, `Ord`) fails to compile for a type with a `number`
//! (`f64`) field or an `additionalProperties: true` value.

mod convert;
mod emit;
mod error;
mod load;
mod model;
mod naming;

pub use error::{Error, Result, SchemaError};

use proc_macro2::TokenStream;
use std::path::{Path, PathBuf};

/// The default output file name, the one `eventodb_kit::include_events!()` includes.
pub const DEFAULT_FILE_NAME: &str = "eventodb_events.rs";

/// What to generate and where: a by-value builder.
///
/// # Examples
///
/// ```no_run
/// eventodb_kit_codegen::Settings::new("schemas")
///     .derive("Eq")          // extra derives on every generated type
///     .crate_path("::kit")   // if eventodb-kit is renamed in Cargo.toml
///     .run();
/// ```
#[derive(Debug, Clone)]
pub struct Settings {
    schema_dir: PathBuf,
    file_name: String,
    derives: Vec<String>,
    crate_path: String,
    out_dir: Option<PathBuf>,
    derive_event: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new("schemas")
    }
}

impl Settings {
    /// Settings for the schema folder `schema_dir` (relative paths are taken from the
    /// package root, where Cargo runs build scripts).
    pub fn new(schema_dir: impl Into<PathBuf>) -> Self {
        Self {
            schema_dir: schema_dir.into(),
            file_name: DEFAULT_FILE_NAME.to_owned(),
            derives: Vec::new(),
            crate_path: "::eventodb_kit".to_owned(),
            out_dir: None,
            derive_event: true,
        }
    }

    /// The output file name in `$OUT_DIR` (default [`DEFAULT_FILE_NAME`]).
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// Adds a derive to every generated type, e.g. `"Eq"` or `"my_crate::MyTrait"`.
    ///
    /// The derive must hold for every field: `Eq`, `Hash` and `Ord` do not compile for a
    /// type with a `number` (`f64`) field or any JSON value (`serde_json::Value`).
    pub fn derive(mut self, path: impl Into<String>) -> Self {
        self.derives.push(path.into());
        self
    }

    /// The path generated code uses for the runtime crate (default `::eventodb_kit`).
    pub fn crate_path(mut self, path: impl Into<String>) -> Self {
        self.crate_path = path.into();
        self
    }

    /// Where to write (default `$OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Implement `Event` through `#[derive(eventodb_kit::Event)]` and its `#[event(..)]`
    /// attribute (the default), or with `false` through a generated `impl` block, which costs
    /// no proc-macro expansion. Events whose stream placeholders are renamed properties
    /// (`{user-id}`) always get the generated impl.
    pub fn derive_event(mut self, yes: bool) -> Self {
        self.derive_event = yes;
        self
    }

    fn schema_dir(&self) -> PathBuf {
        match std::env::var_os("CARGO_MANIFEST_DIR") {
            Some(root) if self.schema_dir.is_relative() => Path::new(&root).join(&self.schema_dir),
            _ => self.schema_dir.clone(),
        }
    }

    /// Reads the folder and generates the code, without writing anything.
    ///
    /// # Errors
    /// [`Error::Setting`] for a `crate_path` or `derive` that is not a Rust path,
    /// [`Error::Io`] or [`Error::Json`] for unreadable files, [`Error::Schema`] listing every
    /// schema the dialect does not accept.
    pub fn generate(&self) -> Result<Generated> {
        let options = self.options()?;
        let folder = load::Folder::read(&self.schema_dir())?;
        generate_folder(folder, &options)
    }

    /// Generates from in-memory files (`(relative path, JSON text)`), for tests and tools.
    ///
    /// # Errors
    /// As [`Settings::generate`].
    pub fn generate_sources<'a>(
        &self,
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Generated> {
        let options = self.options()?;
        generate_folder(load::Folder::from_sources(sources)?, &options)
    }

    /// The emitter's options, checked before any schema is read: a bad path is the caller's
    /// mistake, not a schema's nor the generator's.
    fn options(&self) -> Result<emit::Options> {
        Ok(emit::Options {
            krate: parse_path("crate_path", &self.crate_path)?,
            derives: self
                .derives
                .iter()
                .map(|path| parse_path("derive", path))
                .collect::<Result<_>>()?,
            derive_event: self.derive_event,
        })
    }

    /// Generates and writes `$OUT_DIR/<file_name>`, printing `cargo:rerun-if-changed` for the
    /// folder and every schema file. Returns the path written.
    ///
    /// # Errors
    /// As [`Settings::generate`], plus [`Error::NoOutDir`] and [`Error::Io`] for the output.
    pub fn write(&self) -> Result<PathBuf> {
        let dir = self.schema_dir();
        println!("cargo:rerun-if-changed={}", dir.display());
        let generated = self.generate()?;
        for path in generated.watched() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let path = out_dir.join(&self.file_name);
        let text = generated.to_pretty_string()?;
        // Leave the file untouched when nothing changed, so Cargo sees no new mtime.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(path)
    }

    /// [`Settings::write`] for `build.rs`: on error, prints it for Cargo and exits with status 1
    /// (a readable build failure rather than a panic backtrace).
    pub fn run(self) {
        if let Err(error) = self.write() {
            eprintln!("error: eventodb-kit-codegen: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::exit(1);
        }
    }
}

fn generate_folder(folder: load::Folder, options: &emit::Options) -> Result<Generated> {
    let model = convert::convert(&folder).map_err(|errors| Error::Schema { errors })?;
    Ok(Generated {
        chunks: emit::emit(&model, options),
        watched: folder.watched,
    })
}

/// A setting that must be a plain Rust path (`::eventodb_kit`, `my_crate::Marker`): no generic
/// arguments, which would not fit where the generated code puts the path.
fn parse_path(setting: &'static str, text: &str) -> Result<syn::Path> {
    let invalid = |message: String| Error::Setting {
        setting,
        value: text.to_owned(),
        message,
    };
    let path: syn::Path = syn::parse_str(text)
        .map_err(|error| invalid(format!("not a Rust path ({error}), e.g. `::eventodb_kit`")))?;
    if path
        .segments
        .iter()
        .any(|segment| !segment.arguments.is_none())
    {
        return Err(invalid(
            "a path without generic arguments is needed, e.g. `::eventodb_kit`".to_owned(),
        ));
    }
    Ok(path)
}

/// Generated code and the files it came from.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Items that parse on their own: formatted in parallel.
    chunks: Vec<TokenStream>,
    watched: Vec<PathBuf>,
}

impl Generated {
    /// The code as tokens.
    pub fn tokens(&self) -> TokenStream {
        self.chunks.iter().cloned().collect()
    }

    /// Folders and files read (for `cargo:rerun-if-changed`).
    pub fn watched(&self) -> &[PathBuf] {
        &self.watched
    }

    /// The code formatted with `prettyplease`, with a header saying it is generated.
    ///
    /// # Errors
    /// [`Error::Syntax`] if the tokens do not parse (a generator bug).
    pub fn to_pretty_string(&self) -> Result<String> {
        // Each chunk is parsed and printed on its own (smaller token buffers; the result is
        // the same as formatting the whole file at once). `proc_macro2` tokens are not
        // `Send`, so this stays on one thread.
        let parts = self.chunks.iter().map(|chunk| {
            syn::parse2::<syn::File>(chunk.clone())
                .map(|file| prettyplease::unparse(&file))
                .map_err(Error::Syntax)
        });
        let mut out = String::from(
            "// @generated by eventodb-kit-codegen. Do not edit: change the schemas instead.\n\n",
        );
        for part in parts {
            out.push_str(&part?);
        }
        Ok(out)
    }
}
