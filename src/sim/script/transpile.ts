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

export type Transpiled = { ok: true; js: string; map: SourceMap } | { ok: false; error: ScriptError };

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
    transformers: { before: [(ctx) => (sf) => rewriteImports(sf, ctx.factory, importErrors)] },
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
  return { ok: true, js: out.outputText, map: new SourceMap(out.sourceMapText) };
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
