/**
 * The renderer's Content-Security-Policy. CSP_META must stay identical to the meta tag in
 * src/renderer/index.html (a test compares them). Monaco needs inline styles and may create blob:
 * workers; the session API needs ws: to loopback.
 */
export const CSP_META = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "worker-src 'self' blob:",
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:*",
  "img-src 'self' data:",
  "font-src 'self' data:",
].join('; ');

/**
 * What goes out as a header (web mode, and Electron's responses): the meta policy plus
 * frame-ancestors, which only a header can carry, so no other page can frame the console.
 */
export const CSP = `${CSP_META}; frame-ancestors 'none'`;
