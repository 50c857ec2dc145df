//! The emulator's hosted Checkout page: `GET /pay/{session}` shows the order and a choice of
//! test cards, `POST /pay/{session}` pays with the chosen one and redirects (303) to the
//! session's `success_url`, as Stripe's hosted page does.

use std::fmt::Write as _;

use super::state::{Session, TEST_CARDS};

/// The page for `session`, with `error` shown above the form after a declined attempt.
pub(super) fn render(session: &Session, error: Option<&str>) -> String {
    let amount = format_amount(session.amount_total, &session.currency);
    let mut cards = String::new();
    for (n, (id, label)) in TEST_CARDS.iter().enumerate() {
        let checked = if n == 0 { " checked" } else { "" };
        let _ = writeln!(
            cards,
            r#"<label><input type="radio" name="payment_method" value="{id}"{checked}> {}</label><br>"#,
            escape(label)
        );
    }
    let error = error.map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e))).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Pay {amount} — Stripe emulator</title></head>
<body>
<h1>{product}</h1>
<p>Total: <strong>{amount}</strong> (test mode: Stripe emulator, no real card is charged)</p>
{error}<form method="post" action="/pay/{id}">
{cards}<button type="submit">Pay {amount}</button>
</form>
</body></html>
"#,
        product = escape(&session.product_name),
        id = escape(&session.id),
    )
}

/// A page saying why the session cannot be paid.
pub(super) fn closed(message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Checkout</title></head><body><p>{}</p></body></html>\n",
        escape(message)
    )
}

/// `1999 usd` → `19.99 USD` (two decimals; the page is informational only).
fn format_amount(minor: i64, currency: &str) -> String {
    format!("{}.{:02} {}", minor / 100, (minor % 100).abs(), currency.to_ascii_uppercase())
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_the_merchant_is_escaped() {
        assert_eq!(escape(r#"<script>"x"&'y'"#), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;");
        assert_eq!(format_amount(1999, "usd"), "19.99 USD");
    }
}
