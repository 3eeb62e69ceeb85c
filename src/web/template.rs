//! Filling the page shells: `{{name}}` placeholders replaced by HTML-escaped values.
//!
//! The shells are a handful of fixed files with a few values each (user, CSRF token,
//! asset version); a template crate would add a proc-macro build for no gain.

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces each `{{name}}` of `shell` with the escaped value of `name`. A placeholder
/// without a value is left empty (the shells are fixed files, checked by tests).
pub fn render(shell: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(shell.len() + 256);
    let mut rest = shell;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        if let Some((_, value)) = values.iter().find(|(n, _)| *n == name) {
            out.push_str(&escape(value));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_values() {
        let html = render(
            "<p title=\"{{t}}\">{{ body }}</p>{{missing}}",
            &[("t", "a\"b"), ("body", "<script>x</script> & 'y'")],
        );
        assert_eq!(
            html,
            "<p title=\"a&quot;b\">&lt;script&gt;x&lt;/script&gt; &amp; &#39;y&#39;</p>"
        );
    }

    #[test]
    fn an_unclosed_placeholder_is_kept_as_text() {
        assert_eq!(render("a {{b", &[("b", "x")]), "a {{b");
    }
}
