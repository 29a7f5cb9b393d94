/** The QuickJS WebAssembly module: instantiated once per process and shared by every run. */
import { newQuickJSWASMModule, type QuickJSWASMModule } from 'quickjs-emscripten';

let loading: Promise<QuickJSWASMModule> | undefined;

export function loadQuickJS(): Promise<QuickJSWASMModule> {
  loading ??= newQuickJSWASMModule();
  return loading;
}

/** Forget a module that aborted (a WebAssembly abort leaves the instance unusable). */
export function discardQuickJS(): void {
  loading = undefined;
}
