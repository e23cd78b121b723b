//! Code generation: the `Consumer` impl with its dispatch table, the compile-time checks
//! rustc runs at the user's spans, and the stub impl emitted beside errors.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Generics, Ident, ItemImpl, Path, Type, parse_quote};

use super::parse::Handler;
use super::valid::{Backends, Checked};

/// The impl's type parameter for "any backend".
fn db_param() -> Ident {
    Ident::new("__EventodbKitDb", Span::call_site())
}

/// `generics` plus a backend parameter.
fn with_db(generics: &Generics, support: &TokenStream) -> Generics {
    let mut generics = generics.clone();
    let db = db_param();
    generics.params.push(parse_quote!(#db: #support::Backend));
    generics
}

/// The type as the user wrote it, for messages (`events :: UserCreated` → `events::UserCreated`).
fn written(ty: &Type) -> String {
    let text = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let next = chars.peek().copied().unwrap_or(' ');
            let prev = out.chars().last().unwrap_or(' ');
            if matches!(next, ':' | '<' | '>' | ',' | ')' | ']')
                || matches!(prev, ':' | '<' | '(' | '[' | '&')
            {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The path as the user wrote it, for messages (`categories :: USER` → `categories::USER`).
fn written_path(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// Where a compile-time check about `ty` points: the name in a path (`UserCreated` in
/// `events::UserCreated`), as a `const` item's error shows one token.
fn name_span(ty: &Type) -> Span {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .map_or_else(|| ty.span(), |last| last.ident.span()),
        _ => ty.span(),
    }
}

/// The `Consumer` impl and the checks, wrapped in `const _: () = { ... };`.
pub(crate) fn expand(item: &ItemImpl, krate: &Path, checked: &Checked<'_>) -> TokenStream {
    let support = quote!(#krate::__private::consumer);
    let p = &support;
    let self_ty = &item.self_ty;
    let category = &checked.category;
    let arms = checked.handlers.iter().map(|handler| arm(p, handler));
    let no_handler = if checked.strict {
        quote!(::core::result::Result::Err(#p::unknown_type(__message)))
    } else {
        quote!(::core::result::Result::Ok(#p::Handled::Unknown))
    };
    // A fallback under `#[cfg]` returns from a block that may be compiled out, and the
    // no-handler tail stays for that case (unreachable when the block is compiled in).
    let (tail, allow_unreachable) = match checked.fallback {
        Some(fallback) if !fallback.cfgs.is_empty() => {
            let call = call(p, fallback, quote!(__message));
            let cfgs = &fallback.cfgs;
            let tail = quote! {
                #(#cfgs)*
                {
                    #call
                    return ::core::result::Result::Ok(#p::Handled::Done);
                }
                #no_handler
            };
            (tail, Some(quote!(#[allow(unreachable_code)])))
        }
        Some(fallback) => {
            let call = call(p, fallback, quote!(__message));
            let tail = quote! {
                #call
                ::core::result::Result::Ok(#p::Handled::Done)
            };
            (tail, None)
        }
        None => (no_handler, None),
    };
    let transactional = checked.transactional.then(|| {
        quote! {
            fn transactional(&self) -> bool {
                true
            }
        }
    });
    let checks = checks(p, checked);
    let arms: Vec<TokenStream> = arms.collect();
    let impls = backends(item, p, &checked.db).into_iter().map(|(cfg, generics, db)| {
        let (impl_generics, _, where_clause) = generics.split_for_impl();
        quote! {
            #cfg
            #[automatically_derived]
            impl #impl_generics #p::Consumer<#db> for #self_ty #where_clause {
                fn category(&self) -> &str {
                    #category
                }

                fn category_is_fixed(&self) -> bool {
                    true
                }

                #transactional

                #allow_unreachable
                fn handle<'__a>(
                    &'__a self,
                    __message: &'__a #p::Message,
                    __ctx: &'__a mut #p::Context<'_, #db>,
                ) -> #p::BoxFuture<'__a, ::core::result::Result<#p::Handled, #p::HandlerError>> {
                    #p::Box::pin(async move {
                        let __type: &str = &__message.message_type;
                        #(#arms)*
                        #tail
                    })
                }
            }
        }
    });
    quote! {
        const _: () = {
            #(#impls)*

            #checks
        };
    }
}

/// The `Consumer` impls to emit, each with its `#[cfg]` (if any), generics and backend: one
/// for the backend the handlers name, or for any backend; with backends named only under
/// `#[cfg]`, one per such backend under the cfgs that name it, and one for any backend when
/// none of them holds.
fn backends(
    item: &ItemImpl,
    p: &TokenStream,
    db: &Backends<'_>,
) -> Vec<(Option<TokenStream>, Generics, TokenStream)> {
    let any = || (with_db(&item.generics, p), db_param().to_token_stream());
    match db {
        Backends::Any => {
            let (generics, db) = any();
            vec![(None, generics, db)]
        }
        Backends::One(db) => vec![(None, item.generics.clone(), db.to_token_stream())],
        Backends::UnderCfg(named) => {
            let mut impls = Vec::new();
            let mut conditions = Vec::new();
            for (db, handlers) in named {
                let each = handlers.iter().map(|handler| predicate(&handler.cfgs));
                let condition = quote!(any(#(#each),*));
                impls.push((
                    Some(quote!(#[cfg(#condition)])),
                    item.generics.clone(),
                    db.to_token_stream(),
                ));
                conditions.push(condition);
            }
            let (generics, db) = any();
            impls.push((
                Some(quote!(#[cfg(not(any(#(#conditions),*)))])),
                generics,
                db,
            ));
            impls
        }
    }
}

/// The predicate that holds when every one of `cfgs` does: `all(p, q)` for `#[cfg(p)]
/// #[cfg(q)]`.
fn predicate(cfgs: &[&Attribute]) -> TokenStream {
    let predicates = cfgs.iter().filter_map(|attr| {
        attr.meta
            .require_list()
            .ok()
            .map(|list| list.tokens.clone())
    });
    quote!(all(#(#predicates),*))
}

/// The handler call, its output converted. The conversion names the declared return type,
/// spanned there, so a wrong return type is reported on it.
///
/// The call goes through `handler_future_must_be_send`, spanned at the handler's name: a
/// handler whose future is not `Send` (an `Rc` held across an `.await`, say) is reported
/// there once, as "future returned by `name` is not `Send`", instead of at the attribute.
///
/// `self` and `__ctx` are located at the name but resolved at the call site, where they are
/// declared: a name from a `macro_rules!` caller carries that macro's hygiene, in which
/// neither exists (E0424, E0425).
fn call(p: &TokenStream, handler: &Handler<'_>, arg: TokenStream) -> TokenStream {
    let name = handler.name();
    let here = Span::call_site().located_at(name.span());
    let this = Ident::new("self", here);
    let call = match handler.ctx {
        Some(_) => {
            let ctx = Ident::new("__ctx", here);
            quote_spanned!(name.span()=> Self::#name(#this, #arg, #ctx))
        }
        None => quote_spanned!(name.span()=> Self::#name(#this, #arg)),
    };
    let send = quote_spanned!(name.span()=> #p::handler_future_must_be_send(#call));
    let output = handler.output;
    let convert = quote_spanned!(output.span()=> #p::handler_result::<#output>);
    quote! {
        #convert(#send.await)?;
    }
}

/// One entry of the dispatch table: type string → decode and validate → handler.
fn arm(p: &TokenStream, handler: &Handler<'_>) -> TokenStream {
    let ty = handler.arg;
    let span = ty.span();
    let event = quote_spanned!(span=> <#ty as #p::Event>);
    let call = call(p, handler, quote!(__event));
    let cfgs = &handler.cfgs;
    quote! {
        #(#cfgs)*
        if __type == #event::TYPE {
            let __event = #p::decoded(#event::decode(&__message.data))?;
            #call
            return ::core::result::Result::Ok(#p::Handled::Done);
        }
    }
}

/// The compile-time checks, as `const` items evaluated by `cargo check`: each event's
/// category, distinct event types, and in exhaustive mode every type of the category.
///
/// The constants inside a check are named `__EVENTODB_KIT_...`: the user's types and the
/// `exhaustive` path are resolved among them, and a plain name (`MESSAGE`, the list
/// eventodb-kit-codegen makes for a category `message`) would resolve to the check's own.
fn checks(p: &TokenStream, checked: &Checked<'_>) -> TokenStream {
    let category = &checked.category;
    let mut out = TokenStream::new();
    for handler in &checked.handlers {
        let ty = handler.arg;
        let span = name_span(ty);
        let check = format_ident!(
            "{}_event_is_in_the_consumer_category",
            handler.name().unraw()
        );
        let message_start = format!("`{}` is an event of category `", written(ty));
        let message_end = format!(
            "`, but this consumer reads `{category}`: handle it in a consumer of its own category"
        );
        let cfgs = &handler.cfgs;
        out.extend(quote_spanned! {span=>
            #(#cfgs)*
            #[allow(dead_code, non_upper_case_globals)]
            const #check: () = {
                const __EVENTODB_KIT_CATEGORY: &str = <#ty as #p::Event>::CATEGORY;
                const __EVENTODB_KIT_PARTS: &[&str] = &[#message_start, __EVENTODB_KIT_CATEGORY, #message_end];
                const __EVENTODB_KIT_MESSAGE: [u8; #p::concat_len(__EVENTODB_KIT_PARTS)] = #p::concat(__EVENTODB_KIT_PARTS);
                // An empty category is `#[derive(Event)]`'s stand-in after an error it has
                // already reported: no second error here.
                if !#p::str_eq(__EVENTODB_KIT_CATEGORY, "") && !#p::str_eq(__EVENTODB_KIT_CATEGORY, #category) {
                    ::core::panic!("{}", #p::as_str(&__EVENTODB_KIT_MESSAGE));
                }
            };
        });
    }
    for (index, second) in checked.handlers.iter().enumerate() {
        for (first_index, first) in checked.handlers[..index].iter().enumerate() {
            let (a, b) = (first.arg, second.arg);
            let message = format!(
                "`{}` has the same event type as `{}`, which `{}` handles: keep one handler per event type",
                written(b),
                written(a),
                first.name()
            );
            // Numbered: names alone can clash (`a` with `b_and_c`, `a_and_b` with `c`).
            let check = format_ident!(
                "{}_and_{}_get_different_event_types_{first_index}_{index}",
                first.name().unraw(),
                second.name().unraw()
            );
            let cfgs = first.cfgs.iter().chain(&second.cfgs);
            // The message quotes the types as written, braces included (`UserV<{ 1 + 1 }>`):
            // an argument of `panic!`, never its format string.
            out.extend(quote_spanned! {name_span(b)=>
                #(#cfgs)*
                #[allow(dead_code, non_upper_case_globals)]
                const #check: () = if #p::str_eq(<#a as #p::Event>::TYPE, <#b as #p::Event>::TYPE) {
                    ::core::panic!("{}", #message);
                };
            });
        }
    }
    if let Some(path) = checked.exhaustive {
        let types = checked.handlers.iter().map(|handler| {
            let ty = handler.arg;
            let ty = quote_spanned!(ty.span()=> <#ty as #p::Event>::TYPE);
            if handler.cfgs.is_empty() {
                return ty;
            }
            // A handler compiled out handles nothing: `""` is no event type.
            let cfgs = &handler.cfgs;
            let predicate = predicate(cfgs);
            quote! {{
                #(#cfgs)*
                const __EVENTODB_KIT_TYPE: &str = #ty;
                #[cfg(not(#predicate))]
                const __EVENTODB_KIT_TYPE: &str = "";
                __EVENTODB_KIT_TYPE
            }}
        });
        let start = format!(
            "`#[consumer(category = \"{category}\", exhaustive = ...)]` has no handler for "
        );
        let end = ": add `async fn name(&self, event: EventType) -> Result<(), HandlerError>` for each, or drop `exhaustive`";
        // The list is only type names, so its category shows through the handlers: every
        // handler's event is checked above to be of this category, so a list of this
        // category names some of them. One that names none of them is another category's
        // (`categories::ORDER` on a `user` consumer), and "add handlers for `OrderPlaced`, ..."
        // would send the user to handlers the category check then refuses.
        let other_category = format!(
            "`exhaustive = {}` names none of the event types this consumer handles, which are of category `{category}`: it is the list of another category; give the list of category `{category}`'s event types",
            written_path(path)
        );
        let span = path
            .segments
            .last()
            .map_or_else(|| path.span(), |last| last.ident.span());
        out.extend(quote_spanned! {span=>
            #[allow(dead_code, non_upper_case_globals)]
            const every_event_of_the_category_has_a_handler: () = {
                const __EVENTODB_KIT_HANDLED: &[&str] = &[#(#types),*];
                const __EVENTODB_KIT_EXPECTED: &[&str] = #path;
                const __EVENTODB_KIT_MISSING_LEN: usize = #p::missing_len(__EVENTODB_KIT_EXPECTED, __EVENTODB_KIT_HANDLED);
                const __EVENTODB_KIT_MISSING: [u8; __EVENTODB_KIT_MISSING_LEN] = #p::missing(__EVENTODB_KIT_EXPECTED, __EVENTODB_KIT_HANDLED);
                const __EVENTODB_KIT_PARTS: &[&str] = &[#start, #p::as_str(&__EVENTODB_KIT_MISSING), #end];
                const __EVENTODB_KIT_MESSAGE: [u8; #p::concat_len(__EVENTODB_KIT_PARTS)] = #p::concat(__EVENTODB_KIT_PARTS);
                // `""` is a handler compiled out (see above): it handles nothing.
                const __EVENTODB_KIT_HANDLES_A_TYPE: bool = #p::missing_len(__EVENTODB_KIT_HANDLED, &[""]) != 0;
                const __EVENTODB_KIT_LISTS_A_HANDLED_TYPE: bool = {
                    let mut index = 0;
                    let mut found = false;
                    while index < __EVENTODB_KIT_HANDLED.len() {
                        let handled = __EVENTODB_KIT_HANDLED[index];
                        if !#p::str_eq(handled, "") && #p::missing_len(&[handled], __EVENTODB_KIT_EXPECTED) == 0 {
                            found = true;
                        }
                        index += 1;
                    }
                    found
                };
                if __EVENTODB_KIT_HANDLES_A_TYPE && !__EVENTODB_KIT_EXPECTED.is_empty() && !__EVENTODB_KIT_LISTS_A_HANDLED_TYPE {
                    ::core::panic!("{}", #other_category);
                } else if __EVENTODB_KIT_MISSING_LEN != 0 {
                    ::core::panic!("{}", #p::as_str(&__EVENTODB_KIT_MESSAGE));
                }
            };
        });
    }
    out
}

/// A stub impl emitted beside errors, so uses of the consumer raise no follow-on errors.
pub(crate) fn stub(item: &ItemImpl, krate: &Path, category: &str) -> TokenStream {
    if item.trait_.is_some() {
        return TokenStream::new();
    }
    let support = quote!(#krate::__private::consumer);
    let p = &support;
    let self_ty = &item.self_ty;
    let generics = with_db(&item.generics, p);
    let db = db_param();
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    quote! {
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #p::Consumer<#db> for #self_ty #where_clause {
                fn category(&self) -> &str {
                    #category
                }

                fn handle<'__a>(
                    &'__a self,
                    _: &'__a #p::Message,
                    _: &'__a mut #p::Context<'_, #db>,
                ) -> #p::BoxFuture<'__a, ::core::result::Result<#p::Handled, #p::HandlerError>> {
                    #p::Box::pin(async { ::core::result::Result::Ok(#p::Handled::Unknown) })
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_types_read_like_source() {
        let ty: Type = parse_quote!(events::UserCreated);
        assert_eq!(written(&ty), "events::UserCreated");
        let ty: Type = parse_quote!(Wrapper<u8, String>);
        assert_eq!(written(&ty), "Wrapper<u8, String>");
    }
}
