import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * npm run package [-- --out DIR] [--tarballs]
 *
 * The packages as npm would publish them: compiled to JavaScript with declarations (`tsc -b
 * tsconfig.build.json`, output in each package's dist/), then copied to DIR/<name> (default
 * .ferry/packages) with a manifest whose `exports` name the compiled files. In the repository the
 * manifests export TypeScript source, which tsx, vitest and tsc read directly; a package under a
 * user's node_modules must be JavaScript, since Node.js strips no types there. With --tarballs,
 * `npm pack` then writes DIR/ferry-<name>-<version>.tgz for each.
 *
 * Written by hand (decision 0014): npm honours no `exports` in `publishConfig`, so the published
 * manifest has to be written by a step of our own.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Manifest {
  name: string;
  version: string;
  exports: Record<string, string>;
  dependencies?: Record<string, string>;
  [field: string]: unknown;
}

/** `./src/x.ts` → the compiled file and its declarations under dist/. */
function compiled(source: string): { types: string; default: string } {
  if (!/^\.\/src\/.+\.ts$/.test(source)) throw new Error(`export ${source} is not a file under src/`);
  const base = source.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '');
  return { types: `${base}.d.ts`, default: `${base}.js` };
}

/** The manifest npm publishes: compiled exports, only dist/ and the README, Ferry's own versions pinned. */
export function publishedManifest(
  manifest: Manifest,
  versions: ReadonlyMap<string, string>,
): Record<string, unknown> {
  const exports = Object.fromEntries(
    Object.entries(manifest.exports).map(([subpath, source]) => [subpath, compiled(source)]),
  );
  const dependencies = manifest.dependencies
    ? Object.fromEntries(
        Object.entries(manifest.dependencies).map(([name, range]) => {
          const version = versions.get(name);
          return [name, version !== undefined && range === '*' ? `^${version}` : range];
        }),
      )
    : undefined;
  const main = exports['.'];
  return {
    ...manifest,
    exports,
    ...(main ? { types: main.types } : {}),
    ...(dependencies ? { dependencies } : {}),
    files: ['dist', 'README.md'],
  };
}

function main(): void {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  const out = resolve(outAt >= 0 && args[outAt + 1] ? args[outAt + 1]! : join(root, '.ferry', 'packages'));
  const tarballs = args.includes('--tarballs');

  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'tsconfig.build.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );

  const packagesDir = join(root, 'packages');
  const packages = readdirSync(packagesDir)
    .filter((name) => existsSync(join(packagesDir, name, 'tsconfig.build.json')))
    .map((name) => ({
      dir: join(packagesDir, name),
      manifest: JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) as Manifest,
    }));
  const versions = new Map(packages.map((p) => [p.manifest.name, p.manifest.version]));

  mkdirSync(out, { recursive: true });
  for (const { dir, manifest } of packages) {
    const target = join(out, manifest.name.replace(/^@[^/]+\//, ''));
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    cpSync(join(dir, 'dist'), join(target, 'dist'), {
      recursive: true,
      filter: (path) => !path.endsWith('.tsbuildinfo'),
    });
    if (existsSync(join(dir, 'README.md'))) cpSync(join(dir, 'README.md'), join(target, 'README.md'));
    writeFileSync(
      join(target, 'package.json'),
      `${JSON.stringify(publishedManifest(manifest, versions), null, 2)}\n`,
    );
    if (tarballs) execFileSync('npm', ['pack', target, '--pack-destination', out], { stdio: 'inherit' });
    console.log(`${manifest.name}@${manifest.version} → ${target}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
