// Draws the page's app icons (web app manifest, notifications) as PNGs without any image library:
// the logo of the page header (a white cross on a red rounded square, style.css .logo) on the
// header's navy. Run: `node --import tsx dashboards/icons/make-icons.ts` (writes dashboards/app/icons/).
// The mark stays inside the central 80 % circle, the safe zone of a "maskable" icon (W3C Web App
// Manifest §purpose), so a launcher's circle or squircle mask never cuts it.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

type Rgb = readonly [number, number, number];
const NAVY: Rgb = [0x0f, 0x2a, 0x47];
const RED: Rgb = [0xd6, 0x28, 0x28];
const WHITE: Rgb = [0xff, 0xff, 0xff];

/** The colour at (x, y) of the unit square [0,1)²: pure geometry, no I/O. */
export function iconColour(x: number, y: number): Rgb {
  const dx = Math.abs(x - 0.5);
  const dy = Math.abs(y - 0.5);
  // White cross: two bars 0.12 wide and 0.40 long.
  if ((dx <= 0.06 && dy <= 0.2) || (dy <= 0.06 && dx <= 0.2)) return WHITE;
  // Red square 0.56 wide with corners of radius 0.1 (its corners reach 0.36 from the centre < 0.4).
  const half = 0.28;
  const r = 0.1;
  const qx = Math.max(dx - (half - r), 0);
  const qy = Math.max(dy - (half - r), 0);
  if (dx <= half && dy <= half && qx * qx + qy * qy <= r * r) return RED;
  return NAVY;
}

/** RGB pixels of a size×size icon, 4×4 supersampled so edges are smooth. */
export function renderIcon(size: number): Buffer {
  const px = Buffer.alloc(size * size * 3);
  const n = 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let sy = 0; sy < n; sy++) {
        for (let sx = 0; sx < n; sx++) {
          const c = iconColour((x + (sx + 0.5) / n) / size, (y + (sy + 0.5) / n) / size);
          r += c[0];
          g += c[1];
          b += c[2];
        }
      }
      const o = (y * size + x) * 3;
      px[o] = Math.round(r / (n * n));
      px[o + 1] = Math.round(g / (n * n));
      px[o + 2] = Math.round(b / (n * n));
    }
  }
  return px;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, k) => {
  let c = k;
  for (let i = 0; i < 8; i++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const byte of buf) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A truecolour 8-bit PNG (ISO/IEC 15948) of RGB pixels, filter type 0 on every row. */
export function encodePng(size: number, rgb: Buffer): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  const raw = Buffer.alloc(size * (size * 3 + 1));
  for (let y = 0; y < size; y++) rgb.copy(raw, y * (size * 3 + 1) + 1, y * size * 3, (y + 1) * size * 3);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const size of [192, 512]) {
    const out = fileURLToPath(new URL(`../app/icons/icon-${size}.png`, import.meta.url));
    writeFileSync(out, encodePng(size, renderIcon(size)));
    console.log(`wrote ${out}`);
  }
}
