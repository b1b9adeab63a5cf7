// build.mjs: bundles the three pages (the customer cabinet at /, the cashier
// page at /till, the back office at /office) with esbuild, and writes the
// C file that embeds them in the kopilka binary (src/server/web_assets.h).
//
//   node web/build.mjs --out DIR --c FILE.c [--dev]
//
// DIR receives the files as they are served (index pages and /assets/...),
// FILE.c a table of them: path, content type, bytes, gzip'd bytes, ETag.
// Asset names carry a hash of their content, so they are served as immutable;
// the three index pages are revalidated by ETag.
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function arg(name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const out = arg('--out');
const cfile = arg('--c');
const dev = args.includes('--dev');
if (!out || !cfile) {
  console.error('usage: node web/build.mjs --out DIR --c FILE.c [--dev]');
  process.exit(2);
}
try {
  statSync(join(here, 'node_modules', 'preact'));
} catch {
  console.error('web/node_modules is missing: run `npm ci --prefix web` (scripts/deps.sh does)');
  process.exit(1);
}

const apps = [
  { name: 'cabinet', path: '/', title: 'Kopilka' },
  { name: 'till', path: '/till', title: 'Kopilka — till' },
  { name: 'office', path: '/office', title: 'Kopilka — back office' },
];

// Each page's words (src/<app>/strings.js or <page>.strings.js: export const
// strings = {ru, en})
// in both languages: a key missing from one is a build error, not a page
// that shows a key.
const stringFiles = ['lib', ...apps.map((a) => a.name)].flatMap((dir) =>
  readdirSync(join(here, 'src', dir))
    .filter((f) => f === 'strings.js' || f.endsWith('.strings.js'))
    .map((f) => join(dir, f)),
);
for (const name of stringFiles) {
  const file = join(here, 'src', name);
  const { strings } = await import(file);
  const ru = Object.keys(strings.ru || {});
  const en = Object.keys(strings.en || {});
  const onlyRu = ru.filter((key) => !(key in strings.en));
  const onlyEn = en.filter((key) => !(key in strings.ru));
  if (onlyRu.length || onlyEn.length) {
    console.error(`web/src/${name}: keys only in ru: ${onlyRu.join(', ') || 'none'}; ` +
                  `only in en: ${onlyEn.join(', ') || 'none'}`);
    process.exit(1);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
  entryPoints: Object.fromEntries(apps.map((a) => [a.name, join(here, 'src', a.name, 'main.jsx')])),
  bundle: true,
  splitting: true,
  format: 'esm',
  outdir: join(out, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  minify: !dev,
  sourcemap: false,
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.svg': 'file', '.woff2': 'file' },
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
});

// A warning (a duplicate key, an import that does not resolve...) is a
// mistake in a page: the build fails on it.
if (result.warnings.length) {
  console.error(`web: ${result.warnings.length} warning(s) above: fix them`);
  process.exit(1);
}

// Each entry's script and style, for its index page.
const entries = {};
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const app = apps.find((a) => meta.entryPoint.endsWith(`src/${a.name}/main.jsx`));
  if (!app) continue;
  entries[app.name] = {
    js: '/assets/' + relative(join(out, 'assets'), join(process.cwd(), file)).replaceAll('\\', '/'),
    css: meta.cssBundle
      ? '/assets/' + relative(join(out, 'assets'), join(process.cwd(), meta.cssBundle))
      : null,
  };
}
const icon = readFileSync(join(here, 'src', 'lib', 'icon.svg'));
const iconName = `icon-${createHash('sha256').update(icon).digest('hex').slice(0, 8)}.svg`;
writeFileSync(join(out, 'assets', iconName), icon);

for (const app of apps) {
  const e = entries[app.name];
  if (!e) throw new Error(`no bundle for ${app.name}`);
  // No inline script or style: the Content-Security-Policy forbids them.
  const html = `<!doctype html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${app.title}</title>
<link rel="icon" href="/assets/${iconName}" type="image/svg+xml">
${e.css ? `<link rel="stylesheet" href="${e.css}">\n` : ''}<script type="module" src="${e.js}"></script>
</head>
<body>
<div id="app"><noscript>Kopilka needs JavaScript. / Для работы Копилки нужен JavaScript.</noscript></div>
</body>
</html>
`;
  writeFileSync(join(out, app.name + '.html'), html);
}

// The table: every file of DIR, the index pages under their route.
const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.png': 'image/png',
};
function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}
const files = walk(out).sort();
let c = `/* Generated by web/build.mjs from web/: the pages, embedded (src/server/web_assets.h). */
#include "server/web_assets.h"

`;
const rows = [];
files.forEach((file, i) => {
  const rel = relative(out, file).replaceAll('\\', '/');
  const ext = extname(rel);
  const type = types[ext];
  if (!type) throw new Error(`no content type for ${rel}`);
  const app = apps.find((a) => rel === a.name + '.html');
  const path = app ? app.path : '/' + rel;
  const data = readFileSync(file);
  const compressible = ext !== '.png' && ext !== '.woff2';
  const gz = compressible ? gzipSync(data, { level: constants.Z_BEST_COMPRESSION }) : null;
  const useGz = gz && gz.length < data.length * 0.9;
  const etag = '"' + createHash('sha256').update(data).digest('hex').slice(0, 16) + '"';
  const bytes = (b) => {
    let s = '';
    for (let k = 0; k < b.length; k++) s += (k % 24 === 0 ? '\n ' : '') + b[k] + ',';
    return s;
  };
  c += `static const unsigned char f${i}[] = {${bytes(data)} 0};\n`;
  if (useGz) c += `static const unsigned char g${i}[] = {${bytes(gz)} 0};\n`;
  rows.push(`    {"${path}", "${type}", f${i}, ${data.length}, ${useGz ? `g${i}` : 'NULL'}, ${useGz ? gz.length : 0}, "${etag.replaceAll('"', '\\"')}", ${app ? 'false' : 'true'}},`);
});
c += `\nconst kp_web_asset kp_web_assets[] = {\n${rows.join('\n')}\n};\nconst size_t kp_web_assets_count = sizeof kp_web_assets / sizeof kp_web_assets[0];\n`;
mkdirSync(dirname(cfile), { recursive: true });
writeFileSync(cfile, c);
const total = files.reduce((s, f) => s + statSync(f).size, 0);
console.log(`web: ${files.length} files, ${Math.round(total / 1024)} KiB -> ${relative(process.cwd(), cfile)}`);
