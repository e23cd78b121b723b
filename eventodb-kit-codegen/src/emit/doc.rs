//! Schema `description`s as doc comments.
//!
//! Rustdoc runs every fenced block without a language (or with only Rust attributes such as
//! `rust` or `no_run`) as a doctest of the crate that includes the generated file. A JSON
//! example in a description is not Rust and could not name the user's items anyway, so such
//! fences are relabeled `text`; fences in another language (`json`, `sql`) are left alone.

use proc_macro2::TokenStream;
use quote::quote;

/// `#[doc]` attributes for `text`, one per line, with doctest fences made `text`.
pub(super) fn doc_lines(text: &str) -> TokenStream {
    let lines = no_doctests(text).into_iter().map(|line| {
        let line = if line.is_empty() {
            String::new()
        } else {
            format!(" {line}")
        };
        quote!(#[doc = #line])
    });
    quote!(#(#lines)*)
}

/// The lines of `text`, each opening fence that rustdoc would test relabeled `text`.
fn no_doctests(text: &str) -> Vec<String> {
    // The open fence: its character and length (a closing fence is at least as long).
    let mut open: Option<(char, usize)> = None;
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let Some((ch, len, info)) = fence(trimmed) else {
                return line.to_owned();
            };
            match open {
                Some((open_ch, open_len)) => {
                    if ch == open_ch && len >= open_len && info.is_empty() {
                        open = None;
                    }
                    line.to_owned()
                }
                None => {
                    open = Some((ch, len));
                    if is_rust(info) {
                        let marker: String = std::iter::repeat_n(ch, len).collect();
                        format!("{indent}{marker}text")
                    } else {
                        line.to_owned()
                    }
                }
            }
        })
        .collect()
}

/// A fence line (three or more backticks or tildes): its character, length and info string.
fn fence(line: &str) -> Option<(char, usize, &str)> {
    let ch = line.chars().next().filter(|ch| *ch == '`' || *ch == '~')?;
    let len = line.chars().take_while(|c| *c == ch).count();
    (len >= 3).then(|| (ch, len, line[len..].trim()))
}

/// Whether rustdoc treats a fence's info string as Rust: empty, or only `rust` and rustdoc's
/// own attributes.
fn is_rust(info: &str) -> bool {
    info.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|token| !token.is_empty())
        .all(|token| {
            matches!(
                token,
                "rust"
                    | "ignore"
                    | "should_panic"
                    | "no_run"
                    | "compile_fail"
                    | "test_harness"
                    | "standalone_crate"
            ) || token.starts_with("edition")
                || token.starts_with("ignore-")
        })
}

#[cfg(test)]
mod tests {
    use super::no_doctests;

    fn relabel(text: &str) -> String {
        no_doctests(text).join("\n")
    }

    #[test]
    fn an_unlabeled_fence_becomes_text_and_its_close_is_kept() {
        assert_eq!(
            relabel("Example:\n```\n{\"a\": 1}\n```\nAfter."),
            "Example:\n```text\n{\"a\": 1}\n```\nAfter."
        );
    }

    #[test]
    fn rust_fences_become_text() {
        assert_eq!(relabel("```rust\nx\n```"), "```text\nx\n```");
        assert_eq!(relabel("  ~~~~ no_run\nx\n~~~~"), "  ~~~~text\nx\n~~~~");
        assert_eq!(relabel("```edition2021\nx\n```"), "```text\nx\n```");
    }

    #[test]
    fn fences_in_another_language_are_kept() {
        let text = "```json\n{}\n```\n``` sql\nSELECT 1\n```\n```text\nx\n```";
        assert_eq!(relabel(text), text);
    }

    #[test]
    fn a_fence_inside_a_longer_fence_is_content() {
        assert_eq!(
            relabel("````\n```\ninner\n```\n````\n```\nnext\n```"),
            "````text\n```\ninner\n```\n````\n```text\nnext\n```"
        );
    }
}
