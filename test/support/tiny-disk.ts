import { afterAll, beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real filesystem that fills up: a tmpfs of `size` mounted on a fresh directory (root only, and a
 * mount allowed: undefined elsewhere, and the caller skips). `grow()` remounts it larger, as an
 * operator freeing or adding space; `close()` unmounts and removes it.
 */
export interface TinyDisk {
  readonly path: string;
  grow(size: string): void;
  close(): void;
}

export function mountTinyDisk(size: string): TinyDisk | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const path = mkdtempSync(join(tmpdir(), 'carewatch-tiny-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', path], { stdio: 'ignore' });
  } catch {
    // No mount here (a container without CAP_SYS_ADMIN).
    rmSync(path, { recursive: true, force: true });
    return undefined;
  }
  return {
    path,
    grow: (to) => execFileSync('mount', ['-o', `remount,size=${to}`, path]),
    close() {
      execFileSync('umount', ['-l', path]);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/**
 * A tiny disk for the calling test file: mounted before its tests, closed after them (registers the
 * file's hooks). The getter gives undefined where it cannot be mounted; the test then skips.
 */
export function tinyDiskForFile(size: string): () => TinyDisk | undefined {
  let disk: TinyDisk | undefined;
  beforeAll(() => {
    disk = mountTinyDisk(size);
  });
  afterAll(() => {
    disk?.close();
  });
  return () => disk;
}

/**
 * Fills the filesystem under `dir` to ENOSPC with a file, then frees `free` bytes of it (tmpfs frees
 * whole pages); returns the file's path (remove it to give the room back).
 */
export function fillDisk(dir: string, free = 0): string {
  const p = join(dir, 'filler');
  const fd = openSync(p, 'a');
  let size = 0;
  try {
    for (const buf = Buffer.alloc(4096, 0x78); ; size += writeSync(fd, buf));
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd);
  }
  truncateSync(p, Math.max(0, size - free));
  return p;
}
