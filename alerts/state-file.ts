import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { processAlive } from '../common/process-alive.ts';

/**
 * Atomic JSON files in the state directory: write a temporary file, fsync it, rename it over the
 * old one (rename is atomic on POSIX), so a crash leaves either the old or the new snapshot.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeTextAtomic(path, JSON.stringify(value));
}

/**
 * The same for text already serialised (a large snapshot is built once, not parsed and re-serialised),
 * or for text in chunks, written as they come: a rule-state snapshot is produced one slice per
 * event-loop turn (alerts/snapshot-text.ts) and never held or encoded as one string.
 */
export async function writeTextAtomic(path: string, text: string | Iterable<string> | AsyncIterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  // Unique per write: two writes of one file may overlap (two instances on one state volume while a
  // home moves, in one process in the tests or as pid 1 of two containers), and a shared name let
  // one empty or remove the other's file mid-write. The host and pid say whose it was (removeStaleTemps).
  const tmp = `${path}.${hostname()}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'w');
    try {
      if (typeof text === 'string') await fh.writeFile(text);
      // Each writeFile continues at the handle's position (and finishes partial writes itself).
      else for await (const chunk of text) await fh.writeFile(chunk);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    // A failed write (a full disk) left its partial file holding the very space the next attempt,
    // and the journal's, needed (session 21: 12 KiB of 12 KiB free). Removed, with any a process of
    // this host killed mid-write left (no later write reuses a name, so nothing else removes them).
    await rm(tmp, { force: true }).catch(() => undefined);
    await removeStaleTemps(path).catch(() => undefined);
    throw err;
  }
  // The alert journal empties itself on the word of this file (journal-writer.ts `cover`), so the
  // rename must survive a power cut too.
  await syncDirectoryOf(path);
}

/**
 * `<file>.<host>.<pid>.<random>.tmp` beside `path` left by a write a kill interrupted: this host's
 * (a container's own hostname), of a pid no longer alive. Another host's are left alone: its pids
 * cannot be judged from here.
 */
async function removeStaleTemps(path: string): Promise<void> {
  const base = basename(path);
  const host = hostname();
  for (const name of await readdir(dirname(path))) {
    if (!name.startsWith(`${base}.`) || !name.endsWith('.tmp')) continue;
    const parts = name.slice(base.length + 1, -'.tmp'.length).split('.');
    if (parts.length < 3) continue;
    const pid = Number(parts.at(-2));
    const owner = parts.slice(0, -2).join('.');
    if (owner === host && Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) await rm(join(dirname(path), name), { force: true });
  }
}

/**
 * Makes a rename into `path`'s directory durable: POSIX leaves that to an fsync of the directory
 * (ext4 and XFS need it after a rename over an existing file).
 */
export async function syncDirectoryOf(path: string): Promise<void> {
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Reads a JSON file; undefined when it does not exist. A corrupt file throws (the caller decides). */
export async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as unknown;
}
