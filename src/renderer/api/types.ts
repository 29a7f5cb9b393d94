import type { SessionApi, SessionEvent } from '../../shared/session-api';

/** What the renderer needs from a transport: the session API plus the event stream. */
export type SocApi = SessionApi & {
  /** Subscribe to session events; returns the unsubscribe function. */
  onEvent(cb: (e: SessionEvent) => void): () => void;
};

/** Transport health, shown in the top bar. Electron IPC is always 'connected'. */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting';
