/**
 * Checks the Dockerfile without a Docker engine: a small parser reads its stages, and the tests
 * hold it to what the image must be (Debian slim Node, one Node major, production-only
 * dependencies, non-root, node as PID 1 running what `npm start` runs, nothing secret in a layer,
 * a build context that has what the COPYs need). The last tests mirror the stages: the build
 * stage's files and command in a temporary directory (everything the runtime copies out of it
 * exists), the dependency stage's own `npm ci` (no TypeScript compiler in the image), and the
 * runtime assembled from both, started with the image's command.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../support/gateway-process.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  name: string;
  /** The image reference after global ARG substitution (or another stage's name). */
  base: string;
  instructions: Instruction[];
}

/** Splits a Dockerfile into instructions: continuation lines joined, comments and blanks dropped. */
function parseInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let current: { text: string; line: number } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comment lines (parser directives such as "# syntax=" included) are dropped, also inside a
    // continuation, as BuildKit does.
    if (trimmed.startsWith('#')) return;
    if (trimmed === '' && current === undefined) return;
    const continued = /\\\s*$/.test(raw);
    const piece = continued ? raw.replace(/\\\s*$/, '') : raw;
    current = current ? { text: `${current.text} ${piece.trim()}`, line: current.line } : { text: piece.trim(), line: index + 1 };
    if (!continued) {
      const match = /^(\S+)\s*(.*)$/s.exec(current.text.trim());
      if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim(), line: current.line });
      current = undefined;
    }
  });
  if (current !== undefined) throw new Error(`line ${current.line}: continuation at the end of the file`);
  return instructions;
}

/** Replaces $NAME and ${NAME} with the given values (as Docker does for FROM with global ARGs). */
function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced, bare) => {
    const name = (braced ?? bare) as string;
    const value = values[name];
    if (value === undefined) throw new Error(`${whole} has no value`);
    return value;
  });
}

/** Stages in order, with FROM resolved against the ARGs declared before the first FROM. */
function parseStages(text: string): Stage[] {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--platform'));
      const base = substitute(words[0]!, globalArgs);
      const name = words.length === 3 && words[1]!.toUpperCase() === 'AS' ? words[2]! : String(stages.length);
      stages.push({ name, base, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`line ${instruction.line}: ${instruction.keyword} before FROM`);
      const [name, value] = instruction.args.split(/=(.*)/s);
      if (value !== undefined) globalArgs[name!.trim()] = value.trim().replace(/^"(.*)"$/, '$1');
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return stages;
}

/** COPY/ADD flags and paths: `--from=build /app/dist ./dist` -> { from: 'build', sources, dest }. */
function parseCopy(args: string): { flags: Record<string, string>; sources: string[]; dest: string } {
  const words = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags: Record<string, string> = {};
  while (words[0]?.startsWith('--')) {
    const [flag, value] = words.shift()!.slice(2).split(/=(.*)/s);
    flags[flag!] = value ?? 'true';
  }
  if (words.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { flags, sources: words.slice(0, -1), dest: words.at(-1)! };
}

/** KEY=value pairs of ENV (or ARG), also the legacy `ENV KEY value` form. */
function parseAssignments(args: string): Array<[string, string | undefined]> {
  if (!args.includes('=')) {
    const [key, ...rest] = args.split(/\s+/);
    return [[key!, rest.length > 0 ? rest.join(' ') : undefined]];
  }
  return [...args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S*))?/g)].map((m) => [
    m[1]!,
    m[2]?.replace(/^(["'])(.*)\1$/s, '$2'),
  ]);
}

/** A .dockerignore matcher: last matching pattern wins, `!` re-includes, a match on a parent directory excludes its contents. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = posix.normalize((negate ? line.slice(1) : line).trim()).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) => {
          if (part === '**' || part === '**/') return '(?:.*/)?' + (part === '**' ? '.*' : '');
          if (part === '*') return '[^/]*';
          if (part === '?') return '[^/]';
          return part.replace(/[.+^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      return { negate, regex: new RegExp(`^${source}$`) };
    });
  return (path: string) => {
    const parts = posix.normalize(path).replace(/^\.\/|\/$/g, '').split('/');
    let excluded = false;
    for (let depth = 1; depth <= parts.length; depth++) {
      const prefix = parts.slice(0, depth).join('/');
      for (const rule of rules) if (rule.regex.test(prefix)) excluded = !rule.negate;
      if (excluded && depth < parts.length) return true;
    }
    return excluded;
  };
}

const dockerfileText = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const stages = parseStages(dockerfileText);
const stage = (name: string): Stage => {
  const found = stages.find((s) => s.name === name);
  if (!found) throw new Error(`no stage ${name}`);
  return found;
};
const of = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.keyword === keyword);
/** The image Docker builds by default: the last stage. */
const runtime = stages.at(-1)!;
const copies = (s: Stage) => of(s, 'COPY').map((i) => parseCopy(i.args));
const fromRuntime = copies(runtime).filter((c) => c.flags['from'] !== undefined);
const isExcluded = dockerignore(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8'));
const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  type?: string;
  scripts: Record<string, string>;
  engines: { node: string };
  dependencies: Record<string, string>;
};
/** The image's command: `node`, Node's own options, the script. */
const imageCommand = (): string[] => JSON.parse(of(runtime, 'CMD')[0]!.args) as string[];

/** Follows `FROM <stage>` to the image it ends at. */
function imageOf(s: Stage): string {
  const parent = stages.find((other) => other.name === s.base);
  return parent ? imageOf(parent) : s.base;
}

function workdir(s: Stage): string {
  const dirs = of(s, 'WORKDIR').map((i) => i.args);
  return dirs.at(-1) ?? '/';
}

describe('the Dockerfile parser', () => {
  it('joins continuations, drops comments and resolves global ARGs in FROM', () => {
    const parsed = parseStages(
      ['# syntax=docker/dockerfile:1', 'ARG IMG=node:1-x-slim', 'FROM ${IMG} AS a', 'RUN one \\', '  # note', '  two', 'FROM a'].join('\n'),
    );
    expect(parsed).toEqual([
      { name: 'a', base: 'node:1-x-slim', instructions: [{ keyword: 'RUN', args: 'one two', line: 4 }] },
      { name: '1', base: 'a', instructions: [] },
    ]);
    expect(() => parseStages('FROM ${MISSING}')).toThrow(/has no value/);
  });

  it('matches .dockerignore rules the way Docker does', () => {
    const ignored = dockerignore('node_modules\n.env.*\n!.env.example\n**/*.log\ndocs/*.md\n');
    expect(['node_modules', 'node_modules/x/y.js', '.env.local', 'a/b/c.log', 'docs/x.md'].map(ignored)).toEqual([true, true, true, true, true]);
    expect(['src', '.env.example', 'docs', 'docs/x/y.md', 'node_modules2'].map(ignored)).toEqual([false, false, false, false, false]);
  });
});

describe('the Dockerfile', () => {
  it('has several stages, all on one Node major of a Debian slim image, none Alpine', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const majors = new Set<string>();
    for (const s of stages) {
      const image = imageOf(s);
      expect({ stage: s.name, image }).toEqual({ stage: s.name, image: expect.stringMatching(/^node:\d+-(?:bookworm|trixie)-slim$/) });
      expect(image).not.toMatch(/alpine/);
      majors.add(/^node:(\d+)/.exec(image)![1]!);
    }
    expect([...majors]).toHaveLength(1);
    // A current LTS line: even majors are the LTS ones. Development and CI use the same one
    // (.nvmrc), and the engines field claims that line.
    const major = [...majors][0]!;
    expect(Number(major) % 2).toBe(0);
    expect(Number(major)).toBeGreaterThanOrEqual(26);
    expect(readFileSync(join(REPO_ROOT, '.nvmrc'), 'utf8').trim()).toBe(major);
    expect(packageJson.engines.node).toBe(`^${major}.0.0`);
  });

  it('makes the runtime image the default target, running as a non-root user in production mode', () => {
    expect(runtime.name).toBe('runtime');
    const user = of(runtime, 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(?:root|0)$/);
    const env = Object.fromEntries(of(runtime, 'ENV').flatMap((i) => parseAssignments(i.args)));
    expect(env['NODE_ENV']).toBe('production');
    const port = /read\.int\(\s*'PORT'\s*,\s*\{\s*default:\s*(\d+)/.exec(
      readFileSync(join(REPO_ROOT, 'src', 'http', 'http.settings.ts'), 'utf8'),
    )?.[1];
    expect(of(runtime, 'EXPOSE').map((i) => i.args)).toEqual([port]);
  });

  it('starts node as PID 1 (exec form) with what `npm start` runs', () => {
    const cmd = of(runtime, 'CMD');
    expect(cmd).toHaveLength(1);
    expect(cmd[0]!.args.startsWith('[')).toBe(true);
    expect(imageCommand()).toEqual(packageJson.scripts['start']!.split(/\s+/));
    // Stack traces in production point at the TypeScript sources; the tracing preload is loaded
    // before the application (it starts OpenTelemetry only when an OTLP endpoint is set).
    expect(imageCommand()).toEqual(['node', '--enable-source-maps', '--import', './dist/tracing/preload.js', 'dist/main.js']);
    expect(of(runtime, 'ENTRYPOINT')).toEqual([]);
    // The sources are ES modules: without package.json ("type": "module") node would load dist/ as CommonJS.
    expect(packageJson.type).toBe('module');
    expect(fromRuntime.flatMap((c) => c.sources.map((s) => posix.basename(s)))).toContain('package.json');
  });

  it('copies node_modules into the runtime only from a stage that installed production dependencies with npm ci', () => {
    const nodeModules = fromRuntime.filter((c) => c.sources.some((s) => posix.basename(s) === 'node_modules'));
    expect(nodeModules).toHaveLength(1);
    const deps = stage(nodeModules[0]!.flags['from']!);
    const installs = of(deps, 'RUN').map((i) => i.args);
    expect(installs.some((cmd) => /\bnpm ci\b.*--omit=dev\b/.test(cmd))).toBe(true);
    expect(installs.filter((cmd) => /\bnpm (?:ci|install|i)\b/.test(cmd) && !/--omit=dev\b/.test(cmd))).toEqual([]);
    // And it installs from the lock file it was given, nothing else.
    expect(copies(deps).flatMap((c) => c.sources).sort()).toEqual(['package-lock.json', 'package.json']);
    // No stage uses `npm install`, which may rewrite the lock file.
    for (const s of stages) expect(of(s, 'RUN').filter((i) => /\bnpm (?:install|i)\b/.test(i.args))).toEqual([]);
  });

  it('copies from the build context only files that exist and .dockerignore lets through', () => {
    const sources = stages.flatMap((s) =>
      [...of(s, 'COPY'), ...of(s, 'ADD')].map((i) => parseCopy(i.args)).filter((c) => c.flags['from'] === undefined),
    ).flatMap((c) => c.sources);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.filter((source) => !existsSync(join(REPO_ROOT, source)))).toEqual([]);
    expect(sources.filter((source) => isExcluded(source))).toEqual([]);
    expect(sources.filter((source) => /(?:^|\/)\.env(?:$|\.)|\.npmrc$|\.pem$|\.key$/.test(source))).toEqual([]);
    expect(sources.filter((source) => source === '.' || source === './')).toEqual([]);
  });

  it('keeps node_modules, dist, .env and .git out of the build context', () => {
    expect(['node_modules', 'dist', '.env', '.env.production', '.git', '.git/config'].filter((p) => !isExcluded(p))).toEqual([]);
  });

  it('bakes no secret into a layer', () => {
    const secretName = /SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|API_?KEY|PRIVATE|(?:^|_)KEYS?$/i;
    const assignments = stages.flatMap((s) =>
      [...of(s, 'ENV'), ...of(s, 'ARG')].flatMap((i) => parseAssignments(i.args).map(([name]) => name)),
    );
    const globals = parseInstructions(dockerfileText)
      .filter((i) => i.keyword === 'ARG')
      .flatMap((i) => parseAssignments(i.args).map(([name]) => name));
    expect(assignments.length).toBeGreaterThan(0);
    expect([...assignments, ...globals].filter((name) => secretName.test(name))).toEqual([]);
    expect(dockerfileText).not.toMatch(/ZEGO_SERVER_SECRET|API_KEYS|REDIS_URL/);
  });
});

/** Copies a stage's COPY instructions from the build context into `dir`, as Docker does. */
function copyFromContext(s: Stage, dir: string): void {
  const stageDir = workdir(s);
  for (const copy of copies(s)) {
    expect(copy.flags['from']).toBeUndefined();
    const dest = posix.resolve(stageDir, copy.dest);
    for (const source of copy.sources) {
      expect(isExcluded(source)).toBe(false);
      const from = join(REPO_ROOT, source);
      // A directory's contents land in the destination.
      const intoDir = copy.sources.length > 1 || copy.dest.endsWith('/');
      const target = join(dir, posix.relative(stageDir, dest), intoDir && !statSync(from).isDirectory() ? basename(source) : '');
      mkdirSync(dirname(target), { recursive: true });
      cpSync(from, target, { recursive: true, filter: (path) => !isExcluded(posix.relative(REPO_ROOT, path)) });
    }
  }
}

function runStageCommands(commands: string[], dir: string, timeout: number): void {
  for (const command of commands) {
    execFileSync('/bin/sh', ['-c', command], {
      cwd: dir,
      stdio: 'pipe',
      timeout,
      // The packages come from npm's cache when it has them (CI's own `npm ci` just filled it).
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_prefer_offline: 'true' },
    });
  }
}

describe('the stages, mirrored in temporary directories', () => {
  let dir: string;
  let build: Stage;
  let depsDir: string | undefined;
  let runtimeDir: string | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dockerfile-build-'));
    const dist = fromRuntime.find((c) => c.sources.some((s) => posix.basename(s) === 'dist'));
    expect(dist).toBeDefined();
    build = stage(dist!.flags['from']!);
  });

  afterAll(() => {
    for (const d of [dir, depsDir, runtimeDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it(
    'produces everything the runtime stage copies out of it',
    () => {
      const stageDir = workdir(build);
      copyFromContext(build, dir);
      // The full toolchain's `npm ci`: the repository's installed node_modules stand in for it.
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
      const commands = of(build, 'RUN')
        .map((i) => i.args)
        .filter((cmd) => !/^npm ci\b/.test(cmd));
      expect(commands.some((cmd) => /\bnpm run build\b/.test(cmd))).toBe(true);
      runStageCommands(commands, dir, 90_000);

      const fromBuild = fromRuntime.filter((c) => c.flags['from'] === build.name).flatMap((c) => c.sources);
      expect(fromBuild.length).toBeGreaterThan(0);
      const missing = fromBuild.filter((source) => !existsSync(join(dir, posix.relative(stageDir, posix.resolve(stageDir, source)))));
      expect(missing).toEqual([]);
      expect(existsSync(join(dir, 'dist', 'main.js'))).toBe(true);
      // The Lua scripts are read at run time from dist/rate-limit/lua: every one of them must be there.
      const lua = readdirSync(join(REPO_ROOT, 'src', 'rate-limit', 'lua')).filter((f) => f.endsWith('.lua'));
      expect(lua).toContain('schedule-outbound.lua');
      expect(lua.filter((f) => !existsSync(join(dir, 'dist', 'rate-limit', 'lua', f)))).toEqual([]);
    },
    120_000,
  );
  it(
    'installs the production dependencies without the TypeScript compiler',
    () => {
      const nodeModules = fromRuntime.find((c) => c.sources.some((source) => posix.basename(source) === 'node_modules'));
      const deps = stage(nodeModules!.flags['from']!);
      depsDir = mkdtempSync(join(tmpdir(), 'dockerfile-deps-'));
      copyFromContext(deps, depsDir);
      runStageCommands(of(deps, 'RUN').map((i) => i.args), depsDir, 150_000);
      const installed = (name: string) => existsSync(join(depsDir!, 'node_modules', name, 'package.json'));
      expect(Object.keys(packageJson.dependencies).filter((name) => !installed(name))).toEqual([]);
      // An optional peer of @nestjs/swagger, and a devDependency: nothing needs it at run time.
      expect(installed('typescript')).toBe(false);
      expect(existsSync(join(REPO_ROOT, 'node_modules', 'typescript', 'package.json'))).toBe(true);
    },
    180_000,
  );

  it(
    'starts from what the runtime stage assembles, with the image\'s command, and stops cleanly',
    async () => {
      expect(depsDir).toBeDefined();
      runtimeDir = mkdtempSync(join(tmpdir(), 'dockerfile-runtime-'));
      const stageDirs: Record<string, string> = { [build.name]: dir, [stage('deps').name]: depsDir! };
      for (const copy of fromRuntime) {
        const from = stageDirs[copy.flags['from']!];
        expect(from).toBeDefined();
        const dest = join(runtimeDir, posix.relative(workdir(runtime), posix.resolve(workdir(runtime), copy.dest)));
        for (const source of copy.sources) {
          // `COPY --from=x /app/package.json ./` lands in the directory; `/app/dist ./dist` is the directory.
          const target = copy.dest.endsWith('/') ? join(dest, posix.basename(source)) : dest;
          const origin = join(from!, posix.relative(workdir(stage(copy.flags['from']!)), source));
          if (posix.basename(source) === 'node_modules') symlinkSync(origin, target, 'dir');
          else cpSync(origin, target, { recursive: true });
        }
      }
      const [node, ...args] = imageCommand();
      expect(node).toBe('node');
      const gateway = await startGateway(
        {
          NODE_ENV: 'production',
          RATE_LIMIT_STANDALONE: 'true',
          ZEGO_APP_ID: '1234567890',
          ZEGO_SERVER_SECRET: 'SENTINEL-dockerfile-secret-8a1f0c3e5b7d9a24',
          ZEGO_API_BASE_URL: 'http://127.0.0.1:9',
          API_KEYS: `svc:${'0'.repeat(64)}`,
        },
        { cwd: runtimeDir, script: args.at(-1)!, nodeOptions: args.slice(0, -1), startTimeoutMs: 30_000 },
      );
      expect((await fetch(`${gateway.url}/health/live`)).status).toBe(200);
      expect(await gateway.stop()).toBe(0);

      // A stack thrown in dist/ names the TypeScript file and line it came from.
      const stack = execFileSync(
        process.execPath,
        [
          ...args.slice(0, -1),
          '--input-type=module',
          '-e',
          "const { loadConfig } = await import('./dist/app-config.js'); try { loadConfig({}); } catch (e) { console.log(e.stack); }",
        ],
        { cwd: runtimeDir, encoding: 'utf8' },
      );
      expect(stack).toMatch(/^ConfigError: Invalid configuration/);
      expect(stack).toMatch(/\(.*\/src\/app-config\.ts:\d+:\d+\)/);
    },
    60_000,
  );
});
