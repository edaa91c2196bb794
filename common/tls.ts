import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/**
 * TLS material of a server (broker MQTT/WSS listeners, the alerts HTTPS port), read once by a
 * process's main.ts from the files its configuration names. The certificate file may hold the whole
 * chain, leaf first (a CA's "fullchain.pem"): Node sends every certificate in it, so clients that
 * trust only the root still verify the leaf.
 */
export interface ServerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** TLS of a client (ingest and alerts towards the broker): the CA that signed the broker's certificate. */
export interface ClientTls {
  /** PEM CA certificate(s) to trust instead of the system's; undefined: the system's roots. */
  readonly ca?: Buffer | undefined;
}

/** Which environment variables named the files, so that every problem names the variable to fix. */
export interface TlsFileNames {
  readonly cert: string;
  readonly key: string;
}

export type ReadFile = (path: string) => Buffer;

/**
 * Reads a certificate and key, or returns undefined when neither file is configured. Throws an
 * Error whose message names the variable when only one is set, a file cannot be read, or the key
 * does not belong to the certificate: a TLS port that cannot start must stop the process at start,
 * not fail every device's handshake later.
 */
export function readServerTls(
  files: { readonly certFile?: string | undefined; readonly keyFile?: string | undefined },
  names: TlsFileNames,
  readFile: ReadFile = (path) => readFileSync(path),
): ServerTls | undefined {
  const certFile = files.certFile === '' ? undefined : files.certFile;
  const keyFile = files.keyFile === '' ? undefined : files.keyFile;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new Error(`${names.key} is set but ${names.cert} is not: TLS needs both a certificate and its key`);
  if (keyFile === undefined) throw new Error(`${names.cert} is set but ${names.key} is not: TLS needs both a certificate and its key`);
  const cert = readPem(certFile, names.cert, readFile);
  const key = readPem(keyFile, names.key, readFile);
  try {
    // The same check the listeners make, done now: a mismatched key or a non-PEM file is named here.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`${names.cert} / ${names.key}: not a usable certificate and key (${(err as Error).message})`);
  }
  return { cert, key };
}

/** Reads a client's CA file (undefined: trust the system's roots). */
export function readClientTls(caFile: string | undefined, name: string, readFile: ReadFile = (path) => readFileSync(path)): ClientTls {
  if (caFile === undefined || caFile === '') return {};
  const ca = readPem(caFile, name, readFile);
  try {
    createSecureContext({ ca });
  } catch (err) {
    throw new Error(`${name}: not a usable CA certificate (${(err as Error).message})`);
  }
  return { ca };
}

function readPem(path: string, name: string, readFile: ReadFile): Buffer {
  try {
    return readFile(path);
  } catch (err) {
    throw new Error(`${name}=${JSON.stringify(path)} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The TLS floor of every server: TLS 1.2 (RFC 8996 deprecates 1.0 and 1.1; NIST SP 800-52r2 §3.1). */
export const MIN_TLS_VERSION = 'TLSv1.2';
