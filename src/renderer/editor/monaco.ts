/**
 * Monaco, assembled from its 0.56+ tree-shakeable entry points: the bare editor, its features, and
 * only the TypeScript language (tokens + language service). Workers are bundled by Vite (?worker),
 * so they load from 'self' under the CSP and work offline.
 */
import * as monaco from 'monaco-editor/editor';
import 'monaco-editor/features/register.all';
import 'monaco-editor/languages/definitions/typescript/register';
import { ModuleKind, ScriptTarget, typescriptDefaults } from 'monaco-editor/languages/features/typescript/register';
import { jsonDefaults } from 'monaco-editor/languages/features/json/register';
import EditorWorker from 'monaco-editor/editor/editor.worker?worker';
import JsonWorker from 'monaco-editor/languages/features/json/json.worker?worker';
import TsWorker from 'monaco-editor/languages/features/typescript/ts.worker?worker';

self.MonacoEnvironment = {
  getWorker(_workerId: string, label: string): Worker {
    if (label === 'typescript' || label === 'javascript') return new TsWorker();
    if (label === 'json') return new JsonWorker();
    return new EditorWorker();
  },
};

typescriptDefaults.setCompilerOptions({
  target: ScriptTarget.ESNext,
  module: ModuleKind.ESNext,
  // Scripts run in the engine's sandbox: no DOM, and the soc-console globals come from the extra lib.
  lib: ['esnext'],
  strict: true,
  noEmit: true,
  allowNonTsExtensions: true,
});

const TYPES_URI = 'file:///soc-console.d.ts';
let typesLib: monaco.IDisposable | null = null;

/** Install (or replace, after a config change) the script API declarations for completion. */
export function setScriptTypes(dts: string): void {
  typesLib?.dispose();
  typesLib = typescriptDefaults.addExtraLib(dts, TYPES_URI);
}

/**
 * The SoC config schema for the JSON editor. Config models live under file:///socs/, so the
 * presets' "$schema": "../schema/soc.schema.json" resolves to the URI registered here and the
 * language service never tries to fetch it.
 */
export const CONFIG_MODEL_URI = 'file:///socs/config.soc.json';
export function setConfigSchema(schemaText: string): void {
  jsonDefaults.setDiagnosticsOptions({
    validate: true,
    allowComments: false,
    enableSchemaRequest: false,
    schemas: [{ uri: 'file:///schema/soc.schema.json', fileMatch: ['*.soc.json'], schema: JSON.parse(schemaText) as object }],
  });
}

export { monaco };
