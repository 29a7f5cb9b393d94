/** What the session asks of whoever builds C drivers (the host: cache + compile worker). */
import type { Diagnostic } from './toolchain';

export interface DriverBuildRequest {
  /** Absolute (or cwd-relative) path of the driver source. */
  source: string;
  defines: Record<string, string | number | boolean>;
  /** Include folders, resolved like source. */
  includes: string[];
}

export type DriverBuild =
  | { ok: true; wasm: Uint8Array; cached: boolean; warnings?: Diagnostic[] }
  | { ok: false; diagnostics: Diagnostic[] };

export type DriverBuilder = (req: DriverBuildRequest) => Promise<DriverBuild>;
