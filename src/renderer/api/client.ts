import { ref } from 'vue';
import type { ConnectionState, SocApi } from './types';
import { createWsClient } from './ws-client';

/** Transport health for the status indicator. */
export const connection = ref<ConnectionState>('connecting');

/**
 * The one session API object the renderer uses. In Electron the preload exposes `window.soc`
 * (IPC to the host); in a plain browser (web mode) the same API is spoken over ws://<host>/api.
 */
function pickTransport(): SocApi {
  if (window.soc) {
    connection.value = 'connected';
    return window.soc;
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return createWsClient(`${scheme}://${location.host}/api`, (s) => (connection.value = s));
}

export const api: SocApi = pickTransport();
