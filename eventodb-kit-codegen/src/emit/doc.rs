//! Schema `description`s as doc comments.
//!
//! Rustdoc runs every fenced block without a language (or with only Rust attributes such as
//! `rust` or `no_run`) as a doctest of the crate that includes the generated file, and every
//! indented code block too. A JSON example in a description is not Rust and could not name
//! the user's items anyway, so such fences are relabeled `text`, and an indented block becomes
//! a `text` fence; fences in another language (`json`, `sql`) are left alone.

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

/// The lines of `text`, each opening fence that rustdoc would test relabeled `text`, and
/// each indented code block fenced as `text`.
fn no_doctests(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The open fence: its character and length (a closing fence is at least as long).
    let mut open: Option<(char, usize)> = None;
    // Inside an indented code block fenced here, with the blank lines not yet known to be
    // inside it (a block ends at its last indented line).
    let mut indented = false;
    let mut blanks = 0;
    // Markdown context outside fences: an indented block starts only after a blank line (or
    // at the start), and not in a list, where indented lines continue an item.
    let mut after_blank = true;
    let mut in_list = false;
    for line in text.lines() {
        let blank = line.trim().is_empty();
        if indented {
            if blank {
                blanks += 1;
                continue;
            }
            if let Some(code) = code_line(line) {
                out.extend(std::iter::repeat_n(String::new(), blanks));
                blanks = 0;
                out.push(code.to_owned());
                continue;
            }
            out.push("```".to_owned());
            out.extend(std::iter::repeat_n(String::new(), blanks));
            after_blank = blanks > 0;
            blanks = 0;
            indented = false;
        }
        if open.is_none()
            && after_blank
            && !in_list
            && let Some(code) = code_line(line).filter(|code| !code.trim().is_empty())
        {
            out.push("```text".to_owned());
            out.push(code.to_owned());
            indented = true;
            continue;
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        match (fence(trimmed), open) {
            (Some((ch, len, info)), Some((open_ch, open_len))) => {
                if ch == open_ch && len >= open_len && info.is_empty() {
                    open = None;
                }
                out.push(line.to_owned());
            }
            (Some((ch, len, info)), None) => {
                open = Some((ch, len));
                if is_rust(info) {
                    let marker: String = std::iter::repeat_n(ch, len).collect();
                    out.push(format!("{indent}{marker}text"));
                } else {
                    out.push(line.to_owned());
                }
            }
            (None, _) => out.push(line.to_owned()),
        }
        if open.is_none() && !blank {
            in_list = list_item(trimmed) || (in_list && !indent.is_empty());
        }
        after_blank = blank;
    }
    if indented {
        out.push("```".to_owned());
        out.extend(std::iter::repeat_n(String::new(), blanks));
    }
    out
}

/// The content of a line of an indented code block (four spaces or a tab in), if it is one.
fn code_line(line: &str) -> Option<&str> {
    line.strip_prefix("    ")
        .or_else(|| line.strip_prefix('\t'))
}

/// Whether a line (without its indentation) starts a list item: `-`, `*`, `+`, or a number
/// and `.` or `)`, then a space.
fn list_item(trimmed: &str) -> bool {
    let after_number = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = if after_number.len() < trimmed.len() {
        after_number
            .strip_prefix('.')
            .or_else(|| after_number.strip_prefix(')'))
    } else {
        trimmed
            .strip_prefix('-')
            .or_else(|| trimmed.strip_prefix('*'))
            .or_else(|| trimmed.strip_prefix('+'))
    };
    rest.is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
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
    fn an_indented_block_becomes_a_text_fence() {
        assert_eq!(
            relabel("Example:\n\n    {\"a\": 1}\n\n      nested\n\nAfter."),
            "Example:\n\n```text\n{\"a\": 1}\n\n  nested\n```\n\nAfter."
        );
        assert_eq!(relabel("\tlet x = 1;"), "```text\nlet x = 1;\n```");
        assert_eq!(relabel("    a\nb"), "```text\na\n```\nb");
    }

    #[test]
    fn indented_lines_that_are_no_code_block_are_kept() {
        // A paragraph's continuation, a list item's, and lines inside a fence.
        for text in [
            "A paragraph\n    goes on.",
            "- item\n\n    more of the item",
            "1. step\n   detail\n\n    more of the step",
            "```json\n    {}\n```",
        ] {
            assert_eq!(relabel(text), text);
        }
    }

    #[test]
    fn a_fence_inside_a_longer_fence_is_content() {
        assert_eq!(
            relabel("````\n```\ninner\n```\n````\n```\nnext\n```"),
            "````text\n```\ninner\n```\n````\n```text\nnext\n```"
        );
    }
}
