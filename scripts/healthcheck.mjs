// Container health check (Dockerfile HEALTHCHECK, docker-compose healthcheck). Plain JavaScript so it
// runs without tsx. Usage:
//   node scripts/healthcheck.mjs http://127.0.0.1:8080/health   healthy when the URL answers 2xx
//   node scripts/healthcheck.mjs tcp://127.0.0.1:1883           healthy when the port accepts a connection
import { connect } from 'node:net';

const target = process.argv[2] ?? '';
const TIMEOUT_MS = 4000;

function done(ok, why) {
  if (!ok) console.error(`unhealthy: ${why}`);
  process.exit(ok ? 0 : 1);
}

if (target.startsWith('tcp://')) {
  const url = new URL(target);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  socket.setTimeout(TIMEOUT_MS, () => done(false, `${target} did not accept within ${TIMEOUT_MS} ms`));
  socket.on('connect', () => {
    socket.destroy();
    done(true);
  });
  socket.on('error', (err) => done(false, `${target}: ${err.message}`));
} else if (target.startsWith('http://') || target.startsWith('https://')) {
  fetch(target, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    .then((res) => done(res.ok, `${target} answered ${res.status}`))
    .catch((err) => done(false, `${target}: ${err.message}`));
} else {
  done(false, `usage: healthcheck.mjs http://host:port/path | tcp://host:port (got ${JSON.stringify(target)})`);
}
