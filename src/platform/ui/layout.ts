import { html, SafeHtml } from './html.js';

/** Inline styles only (the CSP allows no external source); readable without them. */
const STYLE = `
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5}
body{margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:Canvas;color:CanvasText}
main{width:100%;max-width:24rem;padding:2rem;box-sizing:border-box}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;font-weight:600;margin-top:1rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;margin-top:.25rem;border:1px solid GrayText;border-radius:.3rem}
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1rem;border-radius:.3rem;border:0;background:#1f5fbf;color:#fff;cursor:pointer}
button.secondary{background:transparent;color:inherit;border:1px solid GrayText}
button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.error{border-left:4px solid #b91c1c;padding:.5rem .75rem;background:rgba(185,28,28,.08);margin:1rem 0}
.muted{color:GrayText;font-size:.9rem}
.warning{border-left:4px solid #b45309;padding:.5rem .75rem;background:rgba(180,83,9,.08);margin:1rem 0}
`;

export function page(title: string, body: SafeHtml): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title} · Latchkey</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`.value;
}
