//! The page frame (pure): escaping, the layout with its navigation, the stylesheet and the one
//! small script (live refresh through server-sent events; every page works without it).

use std::fmt::Write;

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// The pages in the navigation: (path, label).
pub const NAV: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/versions", "Versions"),
    ("/runs", "Runs"),
    ("/timeline", "Stage timeline"),
    ("/audit", "Audit trail"),
    ("/monitor", "Monitor"),
];

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d7dce5;--bg:#f7f8fb;--card:#fff;--ok:#1f7a4d;--warn:#9a6700;--bad:#b42318;--s0:#2457c5;--s1:#c2410c;--s2:#6b7280}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#172033;color:#fff;padding:8px 16px;display:flex;flex-wrap:wrap;gap:12px;align-items:center}
header .brand{font-weight:700;margin-right:12px}header nav a{color:#cdd6ea;text-decoration:none;margin-right:12px}header nav a[aria-current=page]{color:#fff;border-bottom:2px solid #fff}
main{padding:16px;max-width:1240px;margin:0 auto}h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:18px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px 12px;flex:1 1 260px;min-width:0}
table{border-collapse:collapse;width:100%;background:var(--card)}th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}th{background:#eef1f6;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}.scroll{overflow-x:auto}
code,pre{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#eef1f6;padding:1px 4px;border-radius:3px;overflow-wrap:anywhere}dd{margin-left:12px;overflow-wrap:anywhere}h1,h2,h3{overflow-wrap:anywhere}pre{padding:8px;white-space:pre-wrap;word-break:break-all}
.next{background:#fff8e1;border:1px solid #f0d58a;border-radius:6px;padding:6px 10px}.badge{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;border:1px solid currentColor}.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.muted{color:var(--muted)}
.flow{display:flex;flex-wrap:wrap;align-items:stretch;gap:6px}.flow .step{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:8px 10px;flex:1 1 150px;min-width:0}.flow .arrow{align-self:center;color:var(--muted)}
.charts{display:flex;flex-wrap:wrap;gap:12px}svg.chart{background:var(--card);border:1px solid var(--line);border-radius:6px;width:420px;max-width:100%;height:auto}
svg .axes line,svg .tick{stroke:#8a93a6}svg text{font-size:11px;fill:var(--fg)}svg .chart-title{font-weight:600;font-size:12px}
svg .series{stroke-width:2}svg .s0{stroke:var(--s0);fill:var(--s0)}svg .s1{stroke:var(--s1);fill:var(--s1)}svg .s2{stroke:var(--s2);fill:var(--s2)}svg polyline.series{fill:none}svg polyline.s1{stroke-dasharray:5 3}
svg .bars rect{opacity:.6}svg .threshold{stroke:var(--bad);stroke-width:1.5;stroke-dasharray:4 2}svg .legend line{stroke-width:3}
form.filter{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:10px}form.filter label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
@media (max-width:700px){main{padding:8px}th,td{padding:4px}header nav a{margin-right:8px}}
"#;

/// Live refresh: on each server-sent event the page's `<main>` is fetched again and swapped.
const JS: &str = r#"
(function(){if(!window.EventSource)return;var es=new EventSource('/events');var busy=false;
window.addEventListener('pagehide',function(){es.close()});
es.onmessage=function(){if(busy)return;busy=true;fetch(location.href,{headers:{'Accept':'text/html'}}).then(function(r){return r.text()}).then(function(t){var d=new DOMParser().parseFromString(t,'text/html');var m=d.getElementById('main');if(m){document.getElementById('main').innerHTML=m.innerHTML;document.body.setAttribute('data-refreshed',String(Date.now()))}}).catch(function(){}).then(function(){busy=false})};})();
"#;

/// A rendered page body, before the frame.
pub struct Page {
    pub title: String,
    /// Marks the current navigation entry.
    pub path: &'static str,
    pub body: String,
}

impl Page {
    pub fn new(title: &str, path: &'static str, body: String) -> Page {
        Page {
            title: title.to_string(),
            path,
            body,
        }
    }

    /// The whole document, with `next` (HTML) under the navigation.
    pub fn render(&self, next: &str) -> String {
        page(&self.title, self.path, &self.body, next)
    }
}

/// A whole page: `path` marks the current navigation entry; `next` (HTML) is the line that
/// says what moves the flow on.
pub fn page(title: &str, path: &str, body: &str, next: &str) -> String {
    let mut out = String::with_capacity(body.len() + 6000);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · rcfops</title><link rel=\"icon\" href=\"data:,\"><style>{CSS}</style></head><body><header><span class=\"brand\">rcfops</span><nav aria-label=\"pages\">",
        esc(title)
    );
    for (href, label) in NAV {
        let current = if href == path || (href != "/" && path.starts_with(href)) {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(out, "<a href=\"{href}\"{current}>{label}</a>");
    }
    let _ = write!(
        out,
        "</nav></header><main id=\"main\"><p class=\"next\" id=\"next-step\">{next}</p>{body}</main><script>{JS}</script></body></html>"
    );
    out
}

/// A badge for a status word: green, amber or red by meaning.
pub fn badge(text: &str) -> String {
    let class = match text {
        "Passed" | "Approved" | "Succeeded" | "OK" | "accepted" => "ok",
        "PendingManualApproval" | "Running" | "WARN" | "pending" => "warn",
        "Failed" | "Rejected" | "ALERT" | "refused" | "dead" => "bad",
        _ => "muted",
    };
    format!("<span class=\"badge {class}\">{}</span>", esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_the_page_is_whole() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let p = page(
            "v7 <x>",
            "/versions/7",
            "<p>hi</p>",
            "Nothing waits on anyone.",
        );
        assert!(p.starts_with("<!doctype html>") && p.ends_with("</html>"));
        assert!(p.contains("<title>v7 &lt;x&gt; · rcfops</title>"));
        assert!(p.contains("<a href=\"/versions\" aria-current=\"page\">"));
        assert!(
            !p.contains("http://") && !p.contains("https://"),
            "no external resource"
        );
    }
}
