/// <reference types="vite/client" />
import type { SocFiles } from '../shared/files-api';
import type { SocApi } from './api/types';

declare global {
  interface Window {
    /** Exposed by the Electron preload (contextBridge): exactly the session API plus onEvent. */
    soc?: SocApi;
    /** Exposed by the Electron preload: native open/save dialogs (web mode uploads and downloads instead). */
    socFiles?: SocFiles;
  }
}
