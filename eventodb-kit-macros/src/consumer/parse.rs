//! Parsing `#[consumer(...)]` and the impl block into a typed model that keeps the syn
//! nodes, so every later diagnostic can point at the token that is wrong.

use syn::{
    Attribute, FnArg, GenericArgument, Ident, ImplItem, ImplItemFn, ItemImpl, LitStr, Path,
    PathArguments, ReturnType, Token, Type,
};

use crate::attr::{self, Errors, Slot};
use syn::visit::Visit;

/// The keys of `#[consumer(...)]` on the impl block.
pub(crate) const KEYS: &[&str] = &["category", "strict", "transactional", "exhaustive", "crate"];

/// The keys of `#[consumer(...)]` on a method.
const METHOD_KEYS: &[&str] = &["fallback"];

/// The arguments of `#[consumer(...)]`.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) category: Option<LitStr>,
    /// `category` was written, maybe with a bad value (already reported).
    pub(crate) category_written: bool,
    pub(crate) strict: Option<Ident>,
    pub(crate) transactional: Option<Ident>,
    pub(crate) exhaustive: Option<Path>,
    pub(crate) krate: Option<LitStr>,
}

impl Args {
    /// Parses the attribute's arguments, recording every mistake.
    pub(crate) fn parse(tokens: proc_macro2::TokenStream, errors: &mut Errors) -> Args {
        let mut category = Slot::default();
        let mut strict = Slot::default();
        let mut transactional = Slot::default();
        let mut exhaustive = Slot::default();
        let mut krate = Slot::default();
        attr::parse_arguments(tokens, errors, |meta, errors| {
            let key = attr::key_of(meta)?;
            match key.to_string().as_str() {
                "category" => {
                    category.mark_written();
                    let value = attr::string_value(meta, &key)?;
                    category.set(errors, "consumer", &key, value);
                }
                "crate" => {
                    let value = attr::string_value(meta, &key)?;
                    krate.set(errors, "consumer", &key, value);
                }
                "strict" => {
                    flag(meta, &key)?;
                    strict.set(errors, "consumer", &key, key.clone());
                }
                "transactional" => {
                    flag(meta, &key)?;
                    transactional.set(errors, "consumer", &key, key.clone());
                }
                "exhaustive" => {
                    if !meta.input.peek(Token![=]) {
                        return Err(syn::Error::new(
                            key.span(),
                            "`exhaustive` needs the list of the category's event types: write e.g. `exhaustive = events::categories::USER`",
                        ));
                    }
                    let path: Path = meta.value()?.parse().map_err(|error| {
                        syn::Error::new(
                            error.span(),
                            "`exhaustive` takes a path to a `&[&str]` constant, e.g. `exhaustive = events::categories::USER`",
                        )
                    })?;
                    exhaustive.set(errors, "consumer", &key, path);
                }
                _ => {
                    if attr::closest(&key, KEYS) == Some("category") {
                        category.mark_written();
                    }
                    return Err(attr::unknown_key(&key, "consumer", KEYS));
                }
            }
            Ok(())
        });
        Args {
            category_written: category.written(),
            category: category.into_inner(),
            strict: strict.into_inner(),
            transactional: transactional.into_inner(),
            exhaustive: exhaustive.into_inner(),
            krate: krate.into_inner(),
        }
    }
}

/// A key that takes no value.
fn flag(meta: &syn::meta::ParseNestedMeta<'_>, key: &Ident) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` takes no value: write `{key}` alone"),
        ));
    }
    Ok(())
}

/// What a handler receives first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A typed event, decoded from the message's data.
    Event,
    /// The raw message (`#[consumer(fallback)]`): every type without a handler.
    Fallback,
}

/// The backend a context argument names.
pub(crate) enum Db<'a> {
    /// A type parameter of the handler itself (`DB` of `<DB: Backend>`, or `impl Backend`):
    /// any backend.
    Generic,
    /// A type (a backend like `sqlx::Sqlite`, or a parameter of the impl block).
    Named(&'a Type),
    /// `Context<'_>` without a backend (rustc reports it).
    Missing,
}

/// One handler method.
pub(crate) struct Handler<'a> {
    pub(crate) method: &'a ImplItemFn,
    pub(crate) kind: Kind,
    /// The event type (or the message type of a fallback).
    pub(crate) arg: &'a Type,
    /// The context's backend, when the handler takes a context.
    pub(crate) ctx: Option<Db<'a>>,
    /// The declared return type.
    pub(crate) output: &'a Type,
    /// The method's `#[cfg(...)]` attributes, repeated on everything generated for it: the
    /// method may not exist, nor its event type.
    pub(crate) cfgs: Vec<&'a Attribute>,
}

impl Handler<'_> {
    pub(crate) fn name(&self) -> &Ident {
        &self.method.sig.ident
    }
}

/// The handlers of the impl block; methods with a mistake are reported and left out. The
/// flag says whether any method was meant as a handler (valid or not).
pub(crate) fn handlers<'a>(item: &'a ItemImpl, errors: &mut Errors) -> (Vec<Handler<'a>>, bool) {
    let mut handlers = Vec::new();
    let mut candidates = false;
    for impl_item in &item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let kind = method_kind(&method.attrs, errors);
        candidates |= is_candidate(method, kind);
        if let Some(handler) = handler(method, &item.generics, kind, errors) {
            handlers.push(handler);
        }
    }
    (handlers, candidates)
}

/// Whether `method` is meant as a handler: it takes `self`, is `async`, or is marked.
fn is_candidate(method: &ImplItemFn, kind: Kind) -> bool {
    method.sig.receiver().is_some() || method.sig.asyncness.is_some() || kind == Kind::Fallback
}

/// Whether `attr` is a `#[consumer(...)]` on a method.
pub(crate) fn is_consumer_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "consumer")
}

/// `#[consumer(fallback)]` or nothing.
fn method_kind(attrs: &[Attribute], errors: &mut Errors) -> Kind {
    let mut kind = Kind::Event;
    for attr in attrs.iter().filter(|attr| is_consumer_attr(attr)) {
        attr::parse_attribute(attr, errors, |meta, errors| {
            let key = attr::key_of(meta)?;
            if key != "fallback" {
                return Err(attr::unknown_key(&key, "consumer", METHOD_KEYS));
            }
            flag(meta, &key)?;
            if kind == Kind::Fallback {
                errors.at(
                    key.span(),
                    "duplicate `fallback` in `#[consumer]`: give it once",
                );
            }
            kind = Kind::Fallback;
            Ok(())
        });
    }
    kind
}

/// The model of one method, or `None` (and its errors) when it is not a valid handler.
/// An associated function without `self` that is not `async` is not a handler (a
/// constructor, say), and is skipped silently. `impl_generics` are the impl block's.
fn handler<'a>(
    method: &'a ImplItemFn,
    impl_generics: &syn::Generics,
    kind: Kind,
    errors: &mut Errors,
) -> Option<Handler<'a>> {
    let sig = &method.sig;
    let mut inputs = sig.inputs.iter();
    let receiver = match inputs.next() {
        Some(FnArg::Receiver(receiver)) => Some(receiver),
        _ => None,
    };
    if !is_candidate(method, kind) {
        return None;
    }
    let mut ok = true;
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            format_args!(
                "a `#[consumer]` handler is an `async fn`: write `async fn {}`, or move this method to another `impl` block",
                sig.ident
            ),
        );
        ok = false;
    }
    match receiver {
        Some(receiver) if is_shared_self(&receiver.ty) => {}
        Some(receiver) => {
            errors.spanned(
                receiver,
                "a handler takes `&self`: the runtime shares the consumer between calls",
            );
            ok = false;
        }
        None => {
            errors.at(
                sig.paren_token.span.join(),
                format_args!(
                    "a handler takes `&self` first: write `{}(&self, event: EventType, ctx: &mut Context<'_, DB>)`",
                    sig.ident
                ),
            );
            return None;
        }
    }
    let rest: Vec<_> = inputs.collect();
    let Some(first) = rest.first() else {
        let (what, example) = match kind {
            Kind::Event => ("the event", "event: UserCreated"),
            Kind::Fallback => ("the message", "message: &CategoryMessage"),
        };
        errors.at(
            sig.paren_token.span.join(),
            format_args!("a handler takes {what} after `&self`: write `(&self, {example})`"),
        );
        return None;
    };
    let FnArg::Typed(first) = first else {
        return None;
    };
    let arg = &*first.ty;
    match (kind, without_groups(arg)) {
        (Kind::Event, Type::Reference(reference)) => {
            errors.spanned(
                reference,
                "a handler takes its event by value: remove the `&` (for the raw message, mark the method `#[consumer(fallback)]`)",
            );
            ok = false;
        }
        (Kind::Event, Type::Path(_)) => {
            if let Some((param, what, owner)) = generic_param_in(arg, sig, impl_generics) {
                let owner = match owner {
                    Owner::Method => format!("`{}`", sig.ident),
                    Owner::Impl => "the impl block".to_owned(),
                };
                errors.spanned(
                    arg,
                    format_args!(
                        "handler event types must be concrete types, not `{param}`, a {what} parameter of {owner}: the consumer dispatches on each event's type; write one handler per event type, or take every message with `#[consumer(fallback)]`",
                    ),
                );
                ok = false;
            }
        }
        (Kind::Event, other) => {
            errors.spanned(
                other,
                "a handler's second argument is an event type, such as `event: UserCreated`",
            );
            ok = false;
        }
        (Kind::Fallback, Type::Reference(reference)) if reference.mutability.is_none() => {}
        (Kind::Fallback, other) => {
            errors.spanned(
                other,
                "a fallback handler takes the raw message: write `message: &CategoryMessage`",
            );
            ok = false;
        }
    }
    let ctx = match rest.get(1) {
        None => None,
        Some(FnArg::Typed(typed)) => match context_db(&typed.ty, sig) {
            Some(db) => Some(db),
            None => {
                errors.spanned(
                    &typed.ty,
                    "a handler's last argument is the context: write `ctx: &mut Context<'_, DB>`",
                );
                ok = false;
                None
            }
        },
        Some(FnArg::Receiver(_)) => None,
    };
    if let Some(extra) = rest.get(2) {
        errors.spanned(
            extra,
            "a handler takes `&self`, the event and optionally the context: remove this argument",
        );
        ok = false;
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => {
            errors.at(
                sig.paren_token.span.close(),
                "a handler returns `Result<(), HandlerError>`: add `-> Result<(), HandlerError>` and end with `Ok(())`",
            );
            ok = false;
            None
        }
    };
    let output = output?;
    let cfgs = method
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .collect();
    ok.then_some(Handler {
        method,
        kind,
        arg,
        ctx,
        output,
        cfgs,
    })
}

/// Whether a receiver's type is `&Self` (`&self`, `&'a self`, `self: &Self`,
/// `self: &'a Self`).
fn is_shared_self(ty: &Type) -> bool {
    match without_groups(ty) {
        Type::Reference(reference) if reference.mutability.is_none() => matches!(
            without_groups(&reference.elem),
            Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self")
        ),
        _ => false,
    }
}

/// Whose generic parameter an event type names.
#[derive(Clone, Copy)]
enum Owner {
    /// The handler method's own (`async fn any<E: Event>`).
    Method,
    /// The impl block's (`impl<E: Event> Generic<E>`).
    Impl,
}

/// The first type or const parameter of the method or of the impl block that `ty` names,
/// anywhere inside it. Such an event type cannot work: the dispatch table and the
/// compile-time checks need one concrete `Event::TYPE` per handler, and the checks are
/// `const` items outside the impl, where its parameters are not in scope (rustc would say
/// "cannot find type `E`" at the attribute).
fn generic_param_in<'a>(
    ty: &Type,
    sig: &'a syn::Signature,
    impl_generics: &'a syn::Generics,
) -> Option<(&'a Ident, &'static str, Owner)> {
    /// A parameter: its name, `type` or `const`, and whose it is.
    type Param<'a> = (&'a Ident, &'static str, Owner);
    struct Find<'a> {
        params: Vec<Param<'a>>,
        found: Option<Param<'a>>,
    }
    impl<'ast> Visit<'ast> for Find<'_> {
        fn visit_path(&mut self, path: &'ast syn::Path) {
            // A parameter is a path's first segment (`E`, `E::Assoc`); a leading `::`
            // makes it a crate name instead.
            if self.found.is_none()
                && path.leading_colon.is_none()
                && let Some(first) = path.segments.first()
            {
                self.found = self
                    .params
                    .iter()
                    .copied()
                    .find(|(param, _, _)| **param == first.ident);
            }
            syn::visit::visit_path(self, path);
        }
    }
    let params = |generics: &'a syn::Generics, owner: Owner| {
        generics.params.iter().filter_map(move |param| match param {
            syn::GenericParam::Type(param) => Some((&param.ident, "type", owner)),
            syn::GenericParam::Const(param) => Some((&param.ident, "const", owner)),
            syn::GenericParam::Lifetime(_) => None,
        })
    };
    let mut find = Find {
        params: params(&sig.generics, Owner::Method)
            .chain(params(impl_generics, Owner::Impl))
            .collect(),
        found: None,
    };
    find.visit_type(ty);
    find.found
}

/// The backend of `&mut Context<'_, DB>`, or `None` when `ty` is not a context.
fn context_db<'a>(ty: &'a Type, sig: &syn::Signature) -> Option<Db<'a>> {
    let Type::Reference(reference) = without_groups(ty) else {
        return None;
    };
    reference.mutability?;
    let Type::Path(path) = without_groups(&reference.elem) else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Context" {
        return None;
    }
    let types: Vec<&Type> = match &last.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(match types.first() {
        None => Db::Missing,
        // `impl Backend` in argument position is an anonymous type parameter of the method.
        Some(db)
            if is_method_param(db, sig) || matches!(without_groups(db), Type::ImplTrait(_)) =>
        {
            Db::Generic
        }
        Some(db) => Db::Named(db),
    })
}

/// Whether `ty` is one of the method's own type parameters.
fn is_method_param(ty: &Type, sig: &syn::Signature) -> bool {
    let Type::Path(path) = without_groups(ty) else {
        return false;
    };
    let Some(ident) = path.path.get_ident() else {
        return false;
    };
    sig.generics
        .type_params()
        .any(|param| &param.ident == ident)
}

/// `ty` without the invisible group a `macro_rules!` fragment (`$t:ty`) arrives in, and
/// without parentheses: `$event` given `&UserCreated` is a reference all the same.
pub(crate) fn without_groups(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => without_groups(&group.elem),
        Type::Paren(paren) => without_groups(&paren.elem),
        other => other,
    }
}
