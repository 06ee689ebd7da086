import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/*
 * npm run package [-- --out DIR] [--tarballs]
 *
 * The packages as npm would publish them: compiled to JavaScript with declarations (`tsc -b
 * tsconfig.build.json`, output in each package's dist/, built afresh), then copied to DIR/<name>
 * (default .ferry/packages) with a manifest whose `exports` name the compiled files. In the
 * repository the manifests export TypeScript source, which tsx, vitest and tsc read directly; a
 * package under a user's node_modules must be JavaScript, since Node.js strips no types there. With
 * --tarballs, `npm pack` then writes DIR/ferry-<name>-<version>.tgz for each. ESM only.
 *
 * Written by hand (decision 0014): npm honours no `exports` in `publishConfig`, so the published
 * manifest has to be written by a step of our own.
 */

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Manifest {
  name: string;
  version: string;
  exports: unknown;
  [field: string]: unknown;
}

const DEPENDENCY_FIELDS = ['dependencies', 'peerDependencies', 'optionalDependencies'] as const;

/** `./src/x.ts` → the compiled file and its declarations under dist/. */
function compiled(name: string, subpath: string, source: unknown): { types: string; default: string } {
  if (typeof source !== 'string' || !/^\.\/src\/.+\.ts$/.test(source))
    throw new Error(`${name}: export ${subpath} must be a path to a .ts file under ./src/`);
  const base = source.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '');
  return { types: `${base}.d.ts`, default: `${base}.js` };
}

/**
 * The manifest npm publishes: compiled exports, only dist/ and the README, Ferry's own packages at
 * their versions, the repository's Node.js versions, no development fields.
 */
function publishedManifest(
  manifest: Manifest,
  versions: ReadonlyMap<string, string>,
  engines: unknown,
): Record<string, unknown> {
  if (typeof manifest.exports !== 'object' || manifest.exports === null || Array.isArray(manifest.exports))
    throw new Error(`${manifest.name}: exports must map subpaths to .ts files under ./src/`);
  const exports = Object.fromEntries(
    Object.entries(manifest.exports).map(([subpath, source]) => [
      subpath,
      compiled(manifest.name, subpath, source),
    ]),
  );
  const { devDependencies: _dev, scripts: _scripts, ...published } = manifest;
  const pinned: Record<string, Record<string, string>> = {};
  for (const field of DEPENDENCY_FIELDS) {
    const entries = manifest[field] as Record<string, string> | undefined;
    if (!entries) continue;
    pinned[field] = Object.fromEntries(
      Object.entries(entries).map(([name, range]) => {
        const version = versions.get(name);
        return [name, version !== undefined && range === '*' ? `^${version}` : range];
      }),
    );
  }
  const main = exports['.'];
  return {
    ...published,
    exports,
    ...(main ? { types: main.types } : {}),
    ...pinned,
    ...(engines ? { engines } : {}),
    files: ['dist', 'README.md'],
  };
}

function main(): void {
  const { values } = parseArgs({
    options: { out: { type: 'string' }, tarballs: { type: 'boolean', default: false } },
  });
  const out = resolve(values.out ?? join(root, '.ferry', 'packages'));
  const inRepository = relative(root, out);
  // Each package's folder under the output is emptied first: never the repository or its sources.
  if (
    inRepository === '' ||
    /^(packages|scripts|test|docs|bench|examples|node_modules)([/\\]|$)/.test(inRepository)
  )
    throw new Error(
      `--out ${out}: choose a folder outside the repository's sources (default .ferry/packages)`,
    );
  const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines?: unknown })
    .engines;

  const packagesDir = join(root, 'packages');
  const packages = readdirSync(packagesDir)
    .filter((name) => existsSync(join(packagesDir, name, 'tsconfig.build.json')))
    .map((name) => ({
      dir: join(packagesDir, name),
      manifest: JSON.parse(readFileSync(join(packagesDir, name, 'package.json'), 'utf8')) as Manifest,
    }));
  const versions = new Map(packages.map((p) => [p.manifest.name, p.manifest.version]));

  // tsc -b keeps the output of a removed, renamed or newly excluded source: build afresh.
  for (const { dir } of packages) rmSync(join(dir, 'dist'), { recursive: true, force: true });
  execFileSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'tsconfig.build.json'],
    { cwd: root, stdio: 'inherit' },
  );

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
      `${JSON.stringify(publishedManifest(manifest, versions, engines), null, 2)}\n`,
    );
    if (values.tarballs)
      execFileSync('npm', ['pack', target, '--pack-destination', out], { stdio: 'inherit' });
    console.log(`${manifest.name}@${manifest.version} → ${target}`);
  }
}

main();
