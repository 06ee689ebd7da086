import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/*
 * The packages as they would be published (`npm run package`): compiled JavaScript and declarations,
 * used from a node_modules folder by plain Node.js (no tsx) and by tsc, as a user's service uses
 * them. The folder sits inside the repository so that the packages' own dependencies (fastify, pg,
 * …) resolve from the repository's node_modules, as they would from the user's.
 */
const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const consumer = join(root, '.ferry', 'published-packages-test');
const scope = join(consumer, 'node_modules', '@ferry');
/** The packages `npm run package` wrote, known once it has run. */
let names: string[] = [];

/** Whether an installed package carries its own declarations (else they come from @types). */
function hasOwnTypes(dependency: string): boolean {
  if (dependency.startsWith('@ferry/')) return true; // published with its declarations (this test's first case)
  const dir = join(root, 'node_modules', dependency);
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  return (
    manifest.types !== undefined ||
    manifest.typings !== undefined ||
    JSON.stringify(manifest.exports ?? {}).includes('"types"') ||
    existsSync(join(dir, 'index.d.ts')) ||
    (typeof manifest.main === 'string' &&
      [manifest.main.replace(/\.c?js$/, ''), join(manifest.main, 'index')].some((base) =>
        existsSync(join(dir, `${base}.d.ts`)),
      ))
  );
}
const versionOf = (pkg: string) =>
  (
    JSON.parse(readFileSync(join(root, 'packages', pkg.replace('@ferry/', ''), 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

/** Plain Node.js: no loader for TypeScript inherited from the test runner. */
function node(args: string[]): string {
  const { NODE_OPTIONS: _ignored, ...env } = process.env;
  return execFileSync(process.execPath, args, { cwd: consumer, env, encoding: 'utf8', timeout: 60_000 });
}

const SMOKE = `
import { z } from 'zod';
import { buildMessage, defineEvent, fromWire, isMessageId, toWire } from '@ferry/core';
import { PostgresBroker, withTransaction } from '@ferry/postgres';
import { NatsBroker } from '@ferry/nats';
import { RabbitMqBroker } from '@ferry/rabbitmq';
import { createService, defineRoute } from '@ferry/service';
import { TestIssuer } from '@ferry/service/testing';

const OrderPlaced = defineEvent('OrderPlaced', z.object({ orderId: z.string() }), 'orders');
const message = await buildMessage(OrderPlaced, { orderId: 'o-1' }, { destination: 'orders', partitionKey: 'o-1' });
const back = fromWire(toWire(message));

const service = await createService({
  name: 'published-smoke',
  configLayers: { env: { HOST: '127.0.0.1', PORT: '0', AUTH_MODE: 'none', DISCOVERY_MODE: 'dns', LOG_LEVEL: 'warn' } },
  routes: [
    defineRoute({
      method: 'GET',
      url: '/hello',
      schema: { response: { 200: z.object({ hello: z.string() }) } },
      handler: async () => ({ hello: 'world' }),
    }),
  ],
});
await service.start();
const live = await fetch(service.url + '/health/live');
const hello = await fetch(service.url + '/hello');
const result = {
  messageId: isMessageId(message.id),
  roundTrip: back.payload.orderId === 'o-1' && back.headers.partitionKey === 'o-1',
  live: live.status,
  hello: [hello.status, await hello.json()],
  adapters: [typeof PostgresBroker.connect, typeof withTransaction, typeof NatsBroker, typeof RabbitMqBroker, typeof TestIssuer.start],
};
await service.stop();
console.log('RESULT ' + JSON.stringify(result));
process.exit(0);
`;

const TYPED = `
import { z } from 'zod';
import { defineEvent, type Message } from '@ferry/core';
import { createService, defineRoute, type Service } from '@ferry/service';

const OrderPlaced = defineEvent('OrderPlaced', z.object({ orderId: z.string() }));
export const placed: (message: Message<{ orderId: string }>) => string = (m) => m.payload.orderId;
export const type: string = OrderPlaced.type;
export const start: () => Promise<Service> = () =>
  createService({
    name: 'typed',
    routes: [defineRoute({ method: 'GET', url: '/x', handler: async () => ({ ok: true }) })],
  });
// @ts-expect-error a route needs a handler: the declarations carry the API's types, not any
defineRoute({ method: 'GET', url: '/y' });
`;

describe('published packages', () => {
  beforeAll(() => {
    rmSync(consumer, { recursive: true, force: true });
    mkdirSync(consumer, { recursive: true });
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/pack-packages.ts', '--out', scope], {
      cwd: root,
      stdio: 'pipe',
      timeout: 120_000,
    });
    names = readdirSync(scope);
    // Every workspace package with a build is written (a package left out would go untested).
    expect(names.sort()).toEqual(
      readdirSync(join(root, 'packages'))
        .filter((name) => existsSync(join(root, 'packages', name, 'tsconfig.build.json')))
        .sort(),
    );
  }, 180_000);

  it('hold compiled JavaScript and declarations only, with exports that name files they hold', () => {
    for (const name of names) {
      const dir = join(scope, name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        exports: Record<string, { types: string; default: string }>;
        dependencies?: Record<string, string>;
      };
      for (const [subpath, target] of Object.entries(manifest.exports)) {
        expect(existsSync(join(dir, target.default)), `${name} ${subpath} ${target.default}`).toBe(true);
        expect(existsSync(join(dir, target.types)), `${name} ${subpath} ${target.types}`).toBe(true);
      }
      const files = readdirSync(dir, { recursive: true }) as string[];
      const source = files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
      expect(source, `${name} ships TypeScript source`).toEqual([]);
      expect(
        files.filter((f) => /\.test\.|fixture|test-support/.test(f)),
        `${name} ships tests or their fixtures`,
      ).toEqual([]);
      for (const [dependency, range] of Object.entries(manifest.dependencies ?? {}))
        if (dependency.startsWith('@ferry/'))
          expect(range, `${name} → ${dependency}`).toBe(`^${versionOf(dependency)}`);
      // What npm would put in the tarball (its `files` field): the manifest, dist/ and the README.
      const [packed] = JSON.parse(
        execFileSync('npm', ['pack', '--dry-run', '--json'], { cwd: dir, encoding: 'utf8' }),
      ) as [{ files: { path: string }[] }];
      const inTarball = packed.files.map((f) => f.path);
      expect(
        inTarball.filter((f) => f !== 'package.json' && f !== 'README.md' && !f.startsWith('dist/')),
        `${name} tarball`,
      ).toEqual([]);
      for (const target of Object.values(manifest.exports))
        expect(inTarball, `${name} tarball`).toEqual(
          expect.arrayContaining([target.default.slice(2), target.types.slice(2)]),
        );
    }
  });

  it('import only what their manifests declare: optional peers only on demand, and no types of an optional peer', () => {
    // In the repository every package resolves from the root's node_modules, so a missing
    // declaration goes unnoticed there and breaks only a user's installation.
    const builtins = new Set(builtinModules);
    const packageOf = (specifier: string) =>
      specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
    const undeclared: string[] = [];
    for (const name of names) {
      const dir = join(scope, name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        dependencies?: Record<string, string>;
        peerDependencies?: Record<string, string>;
        peerDependenciesMeta?: Record<string, { optional?: boolean }>;
      };
      const peers = Object.keys(manifest.peerDependencies ?? {});
      const optional = new Set(peers.filter((peer) => manifest.peerDependenciesMeta?.[peer]?.optional));
      const eager = new Set([
        ...Object.keys(manifest.dependencies ?? {}),
        ...peers.filter((peer) => !optional.has(peer)),
      ]);
      // Declarations may name a package whose types come from @types/<name> (declared too).
      const typesOf = (dependency: string) => `@types/${dependency.replace(/^@/, '').replace('/', '__')}`;
      const files = (readdirSync(join(dir, 'dist'), { recursive: true }) as string[]).filter(
        (f) => f.endsWith('.js') || f.endsWith('.d.ts'),
      );
      for (const file of files) {
        const code = readFileSync(join(dir, 'dist', file), 'utf8');
        const declarations = file.endsWith('.d.ts');
        const check = (specifier: string, dynamic: boolean) => {
          if (specifier.startsWith('.') || specifier.startsWith('node:') || builtins.has(specifier)) return;
          const dependency = packageOf(specifier);
          const declared = declarations
            ? eager.has(dependency) && (hasOwnTypes(dependency) || eager.has(typesOf(dependency)))
            : eager.has(dependency) || (dynamic && optional.has(dependency));
          if (!declared)
            undeclared.push(`${name}/dist/${file}: ${dynamic ? 'import()' : 'import'} ${specifier}`);
        };
        for (const match of code.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/gm))
          check(match[1]!, false);
        for (const match of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) check(match[1]!, false);
        for (const match of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) check(match[1]!, true);
      }
    }
    expect(undeclared).toEqual([]);
  });

  it('run under plain Node.js: a message round trip and a service answering HTTP', () => {
    writeFileSync(join(consumer, 'smoke.mjs'), SMOKE);
    const output = node(['smoke.mjs']);
    const line = output.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, output).toBeDefined();
    expect(JSON.parse(line!.slice('RESULT '.length))).toEqual({
      messageId: true,
      roundTrip: true,
      live: 200,
      hello: [200, { hello: 'world' }],
      adapters: ['function', 'function', 'function', 'function', 'function'],
    });
  }, 60_000);

  it('type-check a consumer against their declarations', () => {
    writeFileSync(join(consumer, 'typed.ts'), TYPED);
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2023',
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
          skipLibCheck: true,
          noEmit: true,
        },
        files: ['typed.ts'],
      }),
    );
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    // Throws with tsc's diagnostics if the declarations do not resolve or do not type the API.
    node([join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  }, 120_000);
});
