/// <reference types="vite/client" />
import type { SocApi } from './api/types';

declare global {
  interface Window {
    /** Exposed by the Electron preload (contextBridge): exactly the session API plus onEvent. */
    soc?: SocApi;
  }
}
