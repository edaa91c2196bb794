// Container health check (Dockerfile HEALTHCHECK, docker-compose healthcheck). Plain JavaScript so it
// runs without tsx. Usage:
//   node scripts/healthcheck.mjs http://127.0.0.1:8080/health   healthy when the URL answers 2xx
//   node scripts/healthcheck.mjs tcp://127.0.0.1:1883           healthy when the port accepts a connection
//   node scripts/healthcheck.mjs URL URL...                     healthy when any of them is (e.g. the
//                                                               http:// and https:// forms of one port)
// An https:// URL is checked without verifying the certificate: the probe runs on the container's
// own loopback, where the certificate's name (the public host) never matches; it checks liveness,
// not identity.
import { connect } from 'node:net';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const targets = process.argv.slice(2);
const TIMEOUT_MS = 4000;

function probe(target) {
  return new Promise((resolve) => {
    if (target.startsWith('tcp://')) {
      const url = new URL(target);
      const socket = connect({ host: url.hostname, port: Number(url.port) });
      socket.setTimeout(TIMEOUT_MS, () => {
        socket.destroy();
        resolve(`${target} did not accept within ${TIMEOUT_MS} ms`);
      });
      socket.on('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.on('error', (err) => resolve(`${target}: ${err.message}`));
    } else if (target.startsWith('http://') || target.startsWith('https://')) {
      const request = target.startsWith('https://') ? httpsRequest : httpRequest;
      const req = request(target, { timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
        res.resume();
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        resolve(ok ? undefined : `${target} answered ${res.statusCode}`);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
      req.on('error', (err) => resolve(`${target}: ${err.message}`));
      req.end();
    } else {
      resolve(`usage: healthcheck.mjs http(s)://host:port/path | tcp://host:port ... (got ${JSON.stringify(target)})`);
    }
  });
}

const reasons = [];
for (const target of targets.length > 0 ? targets : ['']) {
  const why = await probe(target);
  if (why === undefined) process.exit(0);
  reasons.push(why);
}
console.error(`unhealthy: ${reasons.join('; ')}`);
process.exit(1);
