/** The QuickJS WebAssembly module: compiled and instantiated once per process, shared by every run. */
import { getQuickJS, type QuickJSWASMModule } from 'quickjs-emscripten';

let loading: Promise<QuickJSWASMModule> | undefined;

export function loadQuickJS(): Promise<QuickJSWASMModule> {
  loading ??= getQuickJS();
  return loading;
}
