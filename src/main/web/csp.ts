/**
 * The renderer's Content-Security-Policy, sent as a header in web mode. It must stay identical to
 * the meta tag in src/renderer/index.html (the Electron build relies on the meta tag alone).
 * Monaco needs inline styles and may create blob: workers; the session API needs ws: to loopback.
 */
export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "worker-src 'self' blob:",
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:*",
  "img-src 'self' data:",
  "font-src 'self' data:",
].join('; ');
