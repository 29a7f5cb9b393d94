import type { Heartbeat } from '../../sim/session';
import type { ScriptError, ScriptRunRequest, ScriptRunResult, SessionApi, SessionEvent } from '../../shared/session-api';

/**
 * What the sim worker exposes over Comlink: the session API minus what only the host can do
 * (presets and the config schema live on disk; stopping means restarting the worker).
 */
export type WorkerApi = Omit<SessionApi, 'listPresets' | 'loadPreset' | 'stopScript' | 'runScript' | 'configSchema'> & {
  /** The host numbers runs, so ids stay unique across worker restarts. */
  runScript(req: ScriptRunRequest, runId: number): Promise<ScriptRunResult>;
  /** A script's syntax error, or null (the CLI checks every script before running any). */
  checkScript(source: string, fileName: string): Promise<ScriptError | null>;
};

/** Messages the worker posts beside Comlink's traffic (Comlink ignores messages without an id). */
export type WorkerPush = { socEvent: SessionEvent } | { heartbeat: Heartbeat } | { ready: true };

export function isWorkerPush(m: unknown): m is WorkerPush {
  return typeof m === 'object' && m !== null && ('socEvent' in m || 'heartbeat' in m || 'ready' in m);
}
