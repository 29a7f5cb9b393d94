// Module hook: `electron` resolves to the stub beside this file (the real package is only a path
// to a binary that cannot start here).
export async function resolve(specifier, context, next) {
  if (specifier === 'electron') return { url: new URL('./electron.mjs', import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
