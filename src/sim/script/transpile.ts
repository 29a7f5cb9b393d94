/**
 * TypeScript → JavaScript for the sandbox. Only syntax is checked here (types are checked by the
 * editor against the generated .d.ts); imports of 'soc-console' become reads of the globals the
 * harness defines, since the sandbox has no module loader and nothing else may be imported.
 */
import ts from 'typescript';
import type { ScriptError } from '../../shared/session-api';
import { SourceMap } from './source-map';

export const MODULE_NAME = 'soc-console';
/** The values 'soc-console' exports (its types are erased by the transpiler). */
export const MODULE_VALUES = ['test', 'describe', 'expect', 'soc', 'kernel', 'explore'] as const;

export type Transpiled = { ok: true; js: string; map: SourceMap; loops: LoopSites } | { ok: false; error: ScriptError };

/** A position in the user's source, 1-based. */
export interface SourcePos {
  line: number;
  column: number;
}

/**
 * The loops of each function of the script. QuickJS stops an endless loop with the stack of the
 * last call its frame made, which points at the function's start; this finds the loops in it.
 */
export class LoopSites {
  constructor(private readonly fns: { start: number; end: number; loops: SourcePos[] }[], private readonly sf: ts.SourceFile) {}

  /** Loops directly in the innermost function (or the module code) at pos, not in functions nested in it. */
  within(pos: SourcePos): SourcePos[] {
    const lineStarts = this.sf.getLineStarts();
    const lineStart = lineStarts[pos.line - 1];
    if (lineStart === undefined) return [];
    const at = lineStart + pos.column - 1;
    let best: { start: number; end: number; loops: SourcePos[] } | undefined;
    for (const f of this.fns) if (f.start <= at && at < f.end && (!best || f.start >= best.start)) best = f;
    return best?.loops ?? [];
  }
}

function findLoops(sf: ts.SourceFile): LoopSites {
  const fns: { start: number; end: number; loops: SourcePos[] }[] = [];
  const visit = (node: ts.Node, owner: SourcePos[]): void => {
    if (ts.isFunctionLike(node)) {
      const own: SourcePos[] = [];
      fns.push({ start: node.getStart(sf), end: node.getEnd(), loops: own });
      ts.forEachChild(node, (c) => visit(c, own));
      return;
    }
    if (ts.isIterationStatement(node, false)) {
      const p = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      owner.push({ line: p.line + 1, column: p.character + 1 });
    }
    ts.forEachChild(node, (c) => visit(c, owner));
  };
  const top: SourcePos[] = [];
  fns.push({ start: 0, end: sf.getEnd(), loops: top });
  ts.forEachChild(sf, (c) => visit(c, top));
  return new LoopSites(fns, sf);
}

interface LoadError {
  message: string;
  node: ts.Node;
}

export function transpileScript(source: string, fileName: string): Transpiled {
  const importErrors: LoadError[] = [];
  const out = ts.transpileModule(source, {
    fileName,
    reportDiagnostics: true,
    compilerOptions: {
      target: ts.ScriptTarget.ES2020,
      module: ts.ModuleKind.ESNext,
      sourceMap: true,
      inlineSources: false,
    },
    transformers: { before: [(ctx) => (sf) => markFloating(rewriteImports(sf, ctx.factory, importErrors), ctx)] },
  });
  const diag = out.diagnostics?.find((d) => d.category === ts.DiagnosticCategory.Error);
  if (diag) return { ok: false, error: diagnosticError(diag, fileName) };
  const first = importErrors[0];
  if (first) {
    const sf = first.node.getSourceFile();
    const pos = sf.getLineAndCharacterOfPosition(first.node.getStart(sf));
    return { ok: false, error: located(first.message, fileName, pos.line + 1, pos.character + 1) };
  }
  if (out.sourceMapText === undefined) throw new Error('transpile: no source map produced');
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2020, true);
  return { ok: true, js: out.outputText, map: new SourceMap(out.sourceMapText), loops: findLoops(sf) };
}

function diagnosticError(d: ts.Diagnostic, fileName: string): ScriptError {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (!d.file || d.start === undefined) return { message, file: fileName };
  const pos = d.file.getLineAndCharacterOfPosition(d.start);
  return located(message, fileName, pos.line + 1, pos.character + 1);
}

function located(message: string, file: string, line: number, column: number): ScriptError {
  return { message, file, line, column, stack: `    at ${file}:${line}:${column}` };
}

/** The harness function a statement's un-awaited result goes through (see harness.ts). */
export const FLOATING = '__socFloating';

/**
 * A call or `new` whose value a statement drops (`kernel.map(...)` without await) goes through
 * the harness, which awaits it when the test ends: its rejection fails the test instead of
 * vanishing. The statement's line comes along for the message.
 */
function markFloating(sf: ts.SourceFile, ctx: ts.TransformationContext): ts.SourceFile {
  const f = ctx.factory;
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isExpressionStatement(node) && node.pos >= 0) {
      const e = node.expression;
      if (ts.isCallExpression(e) || ts.isNewExpression(e)) {
        const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
        const wrapped = f.createCallExpression(f.createIdentifier(FLOATING), undefined, [ts.visitEachChild(e, visit, ctx) as ts.Expression, f.createNumericLiteral(line)]);
        return ts.setTextRange(f.updateExpressionStatement(node, ts.setTextRange(wrapped, e)), node);
      }
    }
    return ts.visitEachChild(node, visit, ctx);
  };
  return ts.visitEachChild(sf, visit, ctx);
}

function rewriteImports(sf: ts.SourceFile, f: ts.NodeFactory, errors: LoadError[]): ts.SourceFile {
  const statements = sf.statements.flatMap((st): ts.Statement[] => {
    if (ts.isImportEqualsDeclaration(st)) {
      errors.push({ message: `scripts can only import '${MODULE_NAME}'`, node: st });
      return [];
    }
    if (ts.isExportDeclaration(st) && st.moduleSpecifier) {
      errors.push({ message: `scripts can only import '${MODULE_NAME}'`, node: st.moduleSpecifier });
      return [];
    }
    if (!ts.isImportDeclaration(st)) return [st];
    const spec = st.moduleSpecifier;
    if (!ts.isStringLiteral(spec) || spec.text !== MODULE_NAME) {
      const what = ts.isStringLiteral(spec) ? `'${spec.text}'` : 'that';
      errors.push({ message: `cannot import ${what}: scripts run in a sandbox and can only import '${MODULE_NAME}'`, node: spec });
      return [];
    }
    const clause = st.importClause;
    if (!clause || clause.isTypeOnly) return [];
    if (clause.name) {
      errors.push({ message: `'${MODULE_NAME}' has no default export: write import { test, expect, soc } from '${MODULE_NAME}'`, node: clause.name });
      return [];
    }
    const bindings = clause.namedBindings;
    if (!bindings) return [];
    const globalRead = (name: string): ts.Expression => f.createPropertyAccessExpression(f.createIdentifier('globalThis'), name);
    const constDecl = (local: string, init: ts.Expression): ts.Statement =>
      ts.setTextRange(
        f.createVariableStatement(undefined, f.createVariableDeclarationList([f.createVariableDeclaration(local, undefined, undefined, init)], ts.NodeFlags.Const)),
        st,
      );
    if (ts.isNamespaceImport(bindings)) {
      const ns = f.createObjectLiteralExpression(MODULE_VALUES.map((n) => f.createPropertyAssignment(n, globalRead(n))));
      return [constDecl(bindings.name.text, f.createCallExpression(f.createPropertyAccessExpression(f.createIdentifier('Object'), 'freeze'), undefined, [ns]))];
    }
    // Same-name imports are the globals already; renamed ones get a local const. Names that are not
    // values are types, which the transpiler erases.
    return bindings.elements.flatMap((el) => {
      const imported = (el.propertyName ?? el.name).text;
      const local = el.name.text;
      if (el.isTypeOnly || local === imported || !(MODULE_VALUES as readonly string[]).includes(imported)) return [];
      return [constDecl(local, globalRead(imported))];
    });
  });
  return f.updateSourceFile(sf, statements);
}
