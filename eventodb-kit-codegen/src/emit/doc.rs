//! Schema `description`s as doc comments.
//!
//! Rustdoc runs every fenced block without a language (or with only Rust attributes such as
//! `rust` or `no_run`) as a doctest of the crate that includes the generated file, and every
//! indented code block too. A JSON example in a description is not Rust and could not name
//! the user's items anyway, so such fences are relabeled `text`, and an indented block becomes
//! a `text` fence; fences in another language (`json`, `sql`) are left alone.

use proc_macro2::TokenStream;
use quote::quote;

/// `#[allow]` for the rustdoc lints a schema's prose sets off: a bare URL, `list<string>`
/// read as an HTML tag, `[ISO4217]` read as a link. The text is the schema author's, the
/// user cannot edit the generated file, and under `#![deny(warnings)]` each would fail
/// `cargo doc`. Put on every generated type, so its fields and variants are covered too.
pub(super) fn allow_prose_lints() -> TokenStream {
    quote! {
        #[allow(
            rustdoc::bare_urls,
            rustdoc::broken_intra_doc_links,
            rustdoc::private_intra_doc_links,
            rustdoc::invalid_html_tags,
            rustdoc::invalid_codeblock_attributes,
            rustdoc::invalid_rust_codeblocks,
            rustdoc::redundant_explicit_links
        )]
    }
}

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

/// The lines of `text`, each opening fence that rustdoc would test relabeled `text`, each
/// indented code block fenced as `text`, and where an indented line could still start a
/// code block (in a list or a block quote, where it may also continue an item), its
/// indentation made of no-break spaces, which Markdown does not count as indentation.
fn no_doctests(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The open fence: its character and length (a closing fence is at least as long).
    let mut open: Option<(char, usize)> = None;
    // An indented code block being read (its lines without the indentation), with the blank
    // lines not yet known to be inside it (a block ends at its last indented line).
    let mut block: Option<Vec<String>> = None;
    let mut blanks = 0;
    // What the previous line outside fences was: a paragraph line goes on with an indented
    // line; after anything else (the start, a blank line, a heading, a fence) an indented
    // line starts a code block.
    let mut after_paragraph = false;
    // In a list, where indented lines may continue an item.
    let mut in_list = false;
    for line in lines(text) {
        let (quote, rest) = split_quote(line);
        let blank = rest.trim().is_empty();
        if let Some(lines) = &mut block {
            if blank && quote.is_empty() {
                blanks += 1;
                continue;
            }
            if quote.is_empty()
                && let Some(code) = code_line(rest)
            {
                lines.extend(std::iter::repeat_n(String::new(), blanks));
                lines.push(code);
                blanks = 0;
                continue;
            }
            out.extend(fenced(block.take().unwrap_or_default()));
            out.extend(std::iter::repeat_n(String::new(), blanks));
            after_paragraph = false;
            blanks = 0;
        }
        if let Some((open_ch, open_len)) = open {
            if let Some((ch, len, info)) = fence(rest.trim_start())
                && ch == open_ch
                && len >= open_len
                && info.is_empty()
            {
                open = None;
                after_paragraph = false;
            }
            out.push(line.to_owned());
            continue;
        }
        let trimmed = rest.trim_start();
        let indent = &rest[..rest.len() - trimmed.len()];
        if let Some((ch, len, info)) = fence(trimmed).filter(|_| columns(indent) < 4) {
            open = Some((ch, len));
            if is_rust(info) {
                let marker: String = std::iter::repeat_n(ch, len).collect();
                out.push(format!("{quote}{indent}{marker}text"));
            } else {
                out.push(line.to_owned());
            }
            after_paragraph = false;
            continue;
        }
        if !blank && !after_paragraph && columns(indent) >= 4 {
            if quote.is_empty() && !in_list {
                block = code_line(rest).map(|code| vec![code]);
                continue;
            }
            // In a list or a quote: code, or an item's continuation. No-break spaces keep
            // the text where it was and make it no code.
            out.push(format!(
                "{quote}{}{trimmed}",
                "\u{a0}".repeat(columns(indent))
            ));
            after_paragraph = true;
            continue;
        }
        out.push(line.to_owned());
        if !blank {
            in_list = list_item(trimmed) || (in_list && (!indent.is_empty() || after_paragraph));
        }
        after_paragraph = !blank && !heading_or_break(trimmed);
    }
    if let Some(lines) = block {
        out.extend(fenced(lines));
        out.extend(std::iter::repeat_n(String::new(), blanks));
    }
    out
}

/// The lines of `text`, ended by `\n`, `\r\n` or a bare `\r` (as Markdown reads them):
/// `str::lines` keeps a bare `\r` inside a line, which rustc refuses in a doc comment.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(end) = rest.find(['\n', '\r']) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..end];
        let width = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + width..];
        Some(line)
    })
}

/// `text` as inline code, between backtick runs longer than any inside it.
pub(super) fn inline_code(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let ticks = "`".repeat(longest + 1);
    // A space each side keeps a backtick at either end from joining the delimiters.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// An indented code block's lines in a `text` fence longer than any run of backticks that
/// starts one of them (which would close a shorter fence).
fn fenced(lines: Vec<String>) -> Vec<String> {
    let longest = lines
        .iter()
        .map(|line| line.trim_start().chars().take_while(|c| *c == '`').count())
        .max()
        .unwrap_or(0);
    let marker = "`".repeat(longest.max(2) + 1);
    let mut out = Vec::with_capacity(lines.len() + 2);
    out.push(format!("{marker}text"));
    out.extend(lines);
    out.push(marker);
    out
}

/// A line split into its block quote markers (`> `, repeated) and the rest.
fn split_quote(line: &str) -> (&str, &str) {
    let mut at = 0;
    loop {
        let rest = &line[at..];
        let spaces = rest.len() - rest.trim_start_matches(' ').len();
        if spaces > 3 || !rest[spaces..].starts_with('>') {
            return (&line[..at], rest);
        }
        at += spaces + 1;
        if line[at..].starts_with(' ') {
            at += 1;
        }
    }
}

/// How many columns the leading whitespace `indent` reaches (tabs stop every four).
fn columns(indent: &str) -> usize {
    indent.chars().fold(0, |column, c| match c {
        '\t' => (column / 4 + 1) * 4,
        _ => column + 1,
    })
}

/// The content of a line of an indented code block: the line less four columns of its
/// indentation, if it has them.
fn code_line(line: &str) -> Option<String> {
    let trimmed = line.trim_start_matches([' ', '\t']);
    let indent = columns(&line[..line.len() - trimmed.len()]);
    (indent >= 4).then(|| format!("{}{trimmed}", " ".repeat(indent - 4)))
}

/// Whether a line (without its indentation) is a heading (`# ...`, or a setext underline)
/// or a thematic break: a block of one line, after which an indented line is code.
fn heading_or_break(trimmed: &str) -> bool {
    let hashes = trimmed.chars().take_while(|c| *c == '#').count();
    if (1..=6).contains(&hashes)
        && trimmed[hashes..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    {
        return true;
    }
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
    let first = compact.chars().next();
    matches!(first, Some('=' | '-' | '*' | '_'))
        && compact.chars().all(|c| Some(c) == first)
        && (first == Some('=') || first == Some('-') || compact.len() >= 3)
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
/// A backtick fence's info string cannot hold a backtick (CommonMark): such a line is
/// paragraph text (inline code), and taking it for a fence would make the next fence seem to
/// close it when that one in fact opens a block rustdoc runs.
fn fence(line: &str) -> Option<(char, usize, &str)> {
    let ch = line.chars().next().filter(|ch| *ch == '`' || *ch == '~')?;
    let len = line.chars().take_while(|c| *c == ch).count();
    let info = line[len..].trim();
    (len >= 3 && !(ch == '`' && info.contains('`'))).then_some((ch, len, info))
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
    use super::{inline_code, no_doctests};

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
        assert_eq!(relabel("  \tmixed"), "```text\nmixed\n```");
        assert_eq!(relabel("    a\nb"), "```text\na\n```\nb");
        // Code blocks need no blank line after a heading, a setext underline or a fence.
        assert_eq!(relabel("# Example\n    x"), "# Example\n```text\nx\n```");
        assert_eq!(
            relabel("Title\n=====\n    x"),
            "Title\n=====\n```text\nx\n```"
        );
        assert_eq!(
            relabel("```json\n{}\n```\n    x"),
            "```json\n{}\n```\n```text\nx\n```"
        );
        // A fence inside the block does not close the one around it.
        assert_eq!(
            relabel("    ```\n    x\n    ```"),
            "````text\n```\nx\n```\n````"
        );
    }

    #[test]
    fn indented_lines_in_lists_and_quotes_are_no_code() {
        let nbsp4 = "\u{a0}".repeat(4);
        assert_eq!(
            relabel("- item\n\n    more of the item"),
            format!("- item\n\n{nbsp4}more of the item")
        );
        assert_eq!(
            relabel("- Example:\n\n        {}"),
            format!("- Example:\n\n{}{{}}", "\u{a0}".repeat(8))
        );
        assert_eq!(relabel(">     code"), format!("> {nbsp4}code"));
        assert_eq!(relabel("> ```\n> x\n> ```"), "> ```text\n> x\n> ```");
    }

    #[test]
    fn indented_lines_that_are_no_code_block_are_kept() {
        // A paragraph's continuation, a list item's, and lines inside a fence.
        for text in [
            "A paragraph\n    goes on.",
            "1. step\n   detail",
            "- item\n    continued",
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

    #[test]
    fn a_bare_cr_ends_a_line() {
        assert_eq!(
            no_doctests("one\rtwo\r\nthree\nfour\r"),
            ["one", "two", "three", "four"]
        );
        assert_eq!(no_doctests("a\r\rb"), ["a", "", "b"]);
    }

    #[test]
    fn inline_code_is_longer_than_the_backticks_inside() {
        assert_eq!(inline_code("\"a\""), "`\"a\"`");
        assert_eq!(inline_code("a`b``c"), "```a`b``c```");
        assert_eq!(inline_code("`a"), "`` `a ``");
    }

    #[test]
    fn a_backtick_fence_with_a_backtick_in_its_info_is_text() {
        // The first line is a paragraph, so the second opens a fence (one rustdoc would run).
        assert_eq!(
            relabel("``` `inline` is not a fence\n```\nassert!(false);\n```"),
            "``` `inline` is not a fence\n```text\nassert!(false);\n```"
        );
        // Tildes may have backticks in their info string.
        let text = "~~~ `json`\n{}\n~~~";
        assert_eq!(relabel(text), text);
    }
}
