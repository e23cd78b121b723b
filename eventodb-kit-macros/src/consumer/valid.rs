//! Checks the macro can make on its own (rustc checks the rest at the user's spans, see
//! `expand`): the arguments, duplicate handlers, one fallback, one backend.

use proc_macro2::Span;
use quote::ToTokens;
use std::collections::BTreeSet;
use syn::visit::Visit;

use syn::{ImplItem, ItemImpl, LitStr, Path, Type};

use super::parse::{Args, Db, Handler, Kind};
use crate::attr::Errors;

/// What the expansion needs, all checked.
pub(crate) struct Checked<'a> {
    pub(crate) category: String,
    pub(crate) handlers: Vec<&'a Handler<'a>>,
    pub(crate) fallback: Option<&'a Handler<'a>>,
    pub(crate) strict: bool,
    pub(crate) transactional: bool,
    pub(crate) exhaustive: Option<&'a Path>,
    /// The backend(s) the contexts name.
    pub(crate) db: Backends<'a>,
}

/// Which backends the consumer runs on, as its handlers' contexts say.
pub(crate) enum Backends<'a> {
    /// No handler names one: any backend.
    Any,
    /// The backend the handlers without `#[cfg]` name.
    One(&'a Type),
    /// The handlers without `#[cfg]` run on any backend; handlers under `#[cfg]` name these
    /// backends (each with its handlers): the consumer runs on one of them when that
    /// handler is compiled in, on any backend otherwise.
    UnderCfg(Vec<(&'a Type, Vec<&'a Handler<'a>>)>),
}

/// The path of the eventodb-kit crate: `crate = "..."` or `::eventodb_kit`.
pub(crate) fn krate(args: &Args, errors: &mut Errors) -> Path {
    if let Some(lit) = &args.krate {
        match lit.parse::<Path>() {
            Ok(path) => return path,
            Err(_) => errors.at(
                lit.span(),
                "`crate` takes the path of the eventodb-kit crate, e.g. `crate = \"::my_kit\"`",
            ),
        }
    }
    syn::parse_quote!(::eventodb_kit)
}

/// The category, when given and well-formed.
pub(crate) fn category(args: &Args, errors: &mut Errors) -> Option<String> {
    let Some(lit) = &args.category else {
        if args.category_written {
            // Written with a bad value, already reported: one mistake, one error.
            return None;
        }
        errors.at(
            Span::call_site(),
            "`#[consumer]` needs `category = \"...\"`: write e.g. `#[consumer(category = \"user\")]`",
        );
        return None;
    };
    check_category(lit, errors).then(|| lit.value())
}

fn check_category(lit: &LitStr, errors: &mut Errors) -> bool {
    let value = lit.value();
    let problem = if value.is_empty() {
        "the category cannot be empty: write e.g. `category = \"user\"`"
    } else if value.contains('-') {
        "a category cannot contain `-`: EventoDB ends a stream's category at its first `-`"
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "a category cannot contain spaces or control characters"
    } else {
        return true;
    };
    errors.at(lit.span(), problem);
    false
}

/// Runs the checks; `None` when one failed.
pub(crate) fn check<'a>(
    item: &'a ItemImpl,
    args: &'a Args,
    category: Option<String>,
    handlers: &'a [Handler<'a>],
    candidates: bool,
    errors: &mut Errors,
) -> Option<Checked<'a>> {
    let mut ok = category.is_some();
    if let Some((_, path, _)) = &item.trait_ {
        errors.spanned(
            path,
            "`#[consumer]` goes on an inherent impl block (`impl MyConsumer { ... }`): it implements `Consumer` itself",
        );
        ok = false;
    }
    if let Some(lifetime) = borrowed_lifetime(item) {
        errors.spanned(
            lifetime,
            format_args!(
                "a consumer must be 'static: it cannot have lifetime parameters such as `{lifetime}`, since the runtime keeps it for as long as it runs; own the data instead (e.g. in an `Arc`)"
            ),
        );
        ok = false;
    }
    if has_same_named_methods(item) {
        // rustc reports it ("duplicate definitions with name", E0592) at the second method;
        // an error of ours would be a second one for one mistake, and the expansion, which
        // calls handlers by name, would add more. The stub impl goes out instead.
        ok = false;
    }
    let mut events: Vec<&Handler<'a>> = Vec::new();
    let mut fallback: Option<&Handler<'a>> = None;
    for handler in handlers {
        match handler.kind {
            Kind::Event => {
                let written = handler.arg.to_token_stream().to_string();
                // Handlers under `#[cfg]` may be alternatives (`#[cfg(feature = "x")]` and
                // `#[cfg(not(feature = "x"))]`): the const check of distinct types, which
                // carries both handlers' cfgs, judges them once compiled.
                if let Some(first) = events.iter().find(|other| {
                    handler.cfgs.is_empty()
                        && other.cfgs.is_empty()
                        && other.arg.to_token_stream().to_string() == written
                }) {
                    errors.spanned(
                        handler.arg,
                        format_args!(
                            "`{}` already has a handler, `{}`: keep one handler per event type",
                            written.replace(' ', ""),
                            first.name()
                        ),
                    );
                    ok = false;
                } else {
                    events.push(handler);
                }
            }
            Kind::Fallback => {
                if let Some(first) = fallback {
                    errors.spanned(
                        handler.name(),
                        format_args!(
                            "`{}` is already the fallback: a consumer has at most one",
                            first.name()
                        ),
                    );
                    ok = false;
                } else {
                    fallback = Some(handler);
                }
            }
        }
    }
    if let (Some(strict), Some(fallback)) = (&args.strict, fallback) {
        errors.spanned(
            strict,
            format_args!(
                "`strict` rejects the types without a handler, but `{}` is a fallback that takes them: drop one",
                fallback.name()
            ),
        );
        ok = false;
    }
    if !candidates && ok {
        errors.spanned(
            &item.self_ty,
            "this consumer has no handler: add `async fn name(&self, event: EventType) -> Result<(), HandlerError>`",
        );
        ok = false;
    }
    let db = backend(handlers, errors);
    match (ok, db, category) {
        (true, Ok(db), Some(category)) => Some(Checked {
            category,
            handlers: events,
            fallback,
            strict: args.strict.is_some(),
            transactional: args.transactional.is_some()
                || handlers.iter().any(uses_its_transaction),
            exhaustive: args.exhaustive.as_ref(),
            db,
        }),
        _ => None,
    }
}

/// Whether a handler calls `.transaction()` on its context (`ctx.transaction()`,
/// `(*ctx).transaction()`): it wants its writes committed with the position, so the
/// consumer is made transactional, as the `transactional` key would. Without it the call
/// fails at run time, and the consumer stops on a mistake the code already shows. Only the
/// context's own method counts: a `transaction()` of another client (rusqlite, a
/// PostgreSQL client) says nothing. A call through a helper or a macro is not seen; it
/// still gets the run-time error, which names the key.
fn uses_its_transaction(handler: &Handler<'_>) -> bool {
    struct Find<'n> {
        context: &'n syn::Ident,
        found: bool,
    }
    impl<'ast> Visit<'ast> for Find<'_> {
        fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
            if call.method == "transaction"
                && call.args.is_empty()
                && names(&call.receiver, self.context)
            {
                self.found = true;
            }
            syn::visit::visit_expr_method_call(self, call);
        }
    }
    /// Whether `expr` is the variable `name`, maybe in parentheses, dereferenced or borrowed.
    fn names(expr: &syn::Expr, name: &syn::Ident) -> bool {
        match expr {
            syn::Expr::Paren(inner) => names(&inner.expr, name),
            syn::Expr::Group(inner) => names(&inner.expr, name),
            syn::Expr::Reference(inner) => names(&inner.expr, name),
            syn::Expr::Unary(inner) if matches!(inner.op, syn::UnOp::Deref(_)) => {
                names(&inner.expr, name)
            }
            syn::Expr::Path(path) => path.qself.is_none() && path.path.is_ident(name),
            _ => false,
        }
    }
    if handler.ctx.is_none() {
        return false;
    }
    let Some(syn::FnArg::Typed(context)) = handler.method.sig.inputs.last() else {
        return false;
    };
    let syn::Pat::Ident(binding) = &*context.pat else {
        return false;
    };
    let mut find = Find {
        context: &binding.ident,
        found: false,
    };
    find.visit_block(&handler.method.block);
    find.found
}

/// Whether two methods of the impl block without `#[cfg]` share a name.
fn has_same_named_methods(item: &ItemImpl) -> bool {
    let mut seen = BTreeSet::new();
    item.items.iter().any(|impl_item| match impl_item {
        ImplItem::Fn(method) if !method.attrs.iter().any(|attr| attr.path().is_ident("cfg")) => {
            !seen.insert(&method.sig.ident)
        }
        _ => false,
    })
}

/// A lifetime of the impl block other than `'static`: a parameter (`impl<'a> L<'a>`) or an
/// elided one (`impl L<'_>`).
pub(crate) fn borrowed_lifetime(item: &ItemImpl) -> Option<&syn::Lifetime> {
    struct Find<'a> {
        found: Option<&'a syn::Lifetime>,
    }
    impl<'ast> Visit<'ast> for Find<'ast> {
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if self.found.is_none() && lifetime.ident != "static" {
                self.found = Some(lifetime);
            }
        }
    }
    let mut find = Find { found: None };
    // The self type first: `'a` in `L<'a>` is where the borrow shows.
    find.visit_type(&item.self_ty);
    find.found.or_else(|| {
        item.generics
            .lifetimes()
            .next()
            .map(|param| &param.lifetime)
    })
}

/// The backend the handlers' contexts name. Handlers without `#[cfg]` decide, and must
/// agree; a handler under `#[cfg]` may be compiled out, so it decides only when the others
/// run on any backend, and then only in the configurations that compile it (two such
/// handlers with different backends both compiled in are rustc's type error at the call).
fn backend<'a>(handlers: &'a [Handler<'a>], errors: &mut Errors) -> Result<Backends<'a>, ()> {
    let mut named: Option<&Type> = None;
    let mut under_cfg: Vec<(&Type, Vec<&Handler<'a>>)> = Vec::new();
    let mut result = Ok(());
    for handler in handlers {
        if let Some(Db::Named(db)) = &handler.ctx
            && !handler.cfgs.is_empty()
        {
            match under_cfg
                .iter_mut()
                .find(|(other, _)| backend_key(other) == backend_key(db))
            {
                Some((_, list)) => list.push(handler),
                None => under_cfg.push((db, vec![handler])),
            }
            continue;
        }
        if let Some(Db::Named(db)) = &handler.ctx {
            match named {
                None => named = Some(db),
                Some(first) => {
                    if backend_key(first) != backend_key(db) {
                        let (first_text, text) = (
                            first.to_token_stream().to_string(),
                            db.to_token_stream().to_string(),
                        );
                        errors.spanned(
                            db,
                            format_args!(
                                "this handler's context is for `{}`, another's for `{}`: a consumer runs on one backend (or make the handler generic: `async fn {}<DB: Backend>(.., ctx: &mut Context<'_, DB>)`)",
                                text.replace(' ', ""),
                                first_text.replace(' ', ""),
                                handler.name(),
                            ),
                        );
                        result = Err(());
                    }
                }
            }
        }
    }
    result.map(|()| match named {
        Some(db) => Backends::One(db),
        None if under_cfg.is_empty() => Backends::Any,
        None => Backends::UnderCfg(under_cfg),
    })
}

/// What two contexts' backends are compared by: the last segment of the path with its
/// generic arguments (`Sqlite` for both `Sqlite` and `sqlx::Sqlite`), so one type spelled
/// with and without its module is one backend. Two different types with the same last name
/// (`a::Db`, `b::Db`) pass here, and rustc then reports the mismatch at the handler's call
/// (the `Consumer` impl is for the first one), so nothing wrong compiles.
fn backend_key(ty: &Type) -> String {
    match ty {
        Type::Group(group) => backend_key(&group.elem),
        Type::Paren(paren) => backend_key(&paren.elem),
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map_or_else(
            || ty.to_token_stream().to_string(),
            |last| last.to_token_stream().to_string(),
        ),
        _ => ty.to_token_stream().to_string(),
    }
}
