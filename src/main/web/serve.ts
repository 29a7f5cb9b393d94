/**
 * `npm run serve`: the console in a browser. Builds nothing itself (the npm script builds first);
 * starts a session host and serves out/renderer plus the session API on 127.0.0.1.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { SessionHost } from '../host/host';
import { resourcesDir } from '../host/resources';
import { startWebServer, type WebServer } from './server';

export { startWebServer, type WebServer, type WebServerOptions, type WebSession } from './server';

export const DEFAULT_PORT = 5199;

/** Port from --port N / --port=N, else PORT, else the default. 0 asks the OS for a free port. */
export function parsePort(argv: readonly string[], env: NodeJS.ProcessEnv): number {
  const i = argv.findIndex((a) => a === '--port' || a.startsWith('--port='));
  const raw = i < 0 ? env.PORT : argv[i]!.includes('=') ? argv[i]!.slice('--port='.length) : argv[i + 1];
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port "${raw}"`);
  return port;
}

/** Start the host and the web server; used by `npm run serve` and by `npm start`'s fallback. */
export async function serveWebMode(port: number, rendererDir = defaultRendererDir()): Promise<{ server: WebServer; host: SessionHost }> {
  const host = await SessionHost.create();
  try {
    const server = await startWebServer({ host: '127.0.0.1', port, rendererDir, session: host });
    console.log(`SoC Console (web mode): ${server.url}`);
    return { server, host };
  } catch (e) {
    await host.dispose();
    throw e;
  }
}

/** out/renderer beside resources/, found the same way from the source (tsx) and from out/node. */
function defaultRendererDir(): string {
  return join(dirname(resourcesDir()), 'out', 'renderer');
}

async function main(): Promise<void> {
  const { server, host } = await serveWebMode(parsePort(process.argv.slice(2), process.env));
  const stop = (): void => {
    void server
      .close()
      .then(() => host.dispose())
      .finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(`serve: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
