/**
 * ESLint (flat configuration): typescript-eslint's type-checked recommended rules on every
 * TypeScript file (src, test, bench; the types come from tsconfig.json, which includes all three),
 * ESLint's recommended rules on the plain JavaScript (jest configurations, test/support/*.js).
 * A rule that does not fit this code base is turned off here, with the reason, never in the code.
 */
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** Specs and their support code: the TypeScript files where `any` is allowed. */
const TEST_FILES = ['test/**/*.ts', '**/*.spec.ts', '**/*.redis-spec.ts', '**/*.e2e-spec.ts', '**/*.fleet-spec.ts'];

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', 'dist-dev/', 'dist-bench/', 'dist.next/', 'dist-dev.next/', 'coverage/'] },

  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise nobody awaits loses its rejection (an unhandled rejection ends the process).
      // Fire-and-forget is written `void promise` where the promise cannot reject or handles it.
      '@typescript-eslint/no-floating-promises': 'error',
      // An async callback where a void one is expected (event listeners, timers) loses its rejection too.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // The `_` prefix marks a parameter or variable that is unused on purpose, as tsc's
      // noUnusedParameters reads it; a rest sibling is how a key is left out of a copy.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Off: the code is written as if tsconfig had noUncheckedIndexedAccess (`list[i]!`,
      // `record[key]!`, `lines[0]!`: turning the option on gives 18 errors in 32k lines, none in
      // src/). With the option off, tsc already types those reads as defined, so this rule reports
      // each of the ~200 deliberate `!` as unnecessary. It comes back with noUncheckedIndexedAccess.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // Off: `async` without `await` is how this code implements Promise-returning contracts
      // (ThrottlerStorage.increment, ThrottlerGuard's overrides, OutboundRateLimiter.acquire,
      // stand-ins for ioredis calls): it turns a synchronous throw into the rejection the caller
      // awaits. Dropping `async` would change that behaviour.
      '@typescript-eslint/require-await': 'off',
      // A caught value of unknown type may be passed on to reject() as it is, as only-throw-error
      // lets `throw` pass it on: that is forwarding a failure, not making one that is no Error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // Template literals take strings, numbers, booleans, nullish values and Error/URL, as
      // recommended, plus the test harness's cluster nodes, whose toString is their host:port.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowAny: true,
          allowBoolean: true,
          allowNullish: true,
          allowNumber: true,
          allowRegExp: true,
          allow: [
            { name: ['Error', 'URL', 'URLSearchParams'], from: 'lib' },
            { name: 'ClusterNodeProcess', from: 'file', path: 'test/support/redis-cluster.ts' },
          ],
        },
      ],
    },
  },

  {
    files: TEST_FILES,
    rules: {
      // Specs and their harness may use `any` (parsed JSON and YAML documents, stand-ins).
      '@typescript-eslint/no-explicit-any': 'off',
      // Off in tests for the same reason: they walk parsed documents (the OpenAPI document, the
      // Kubernetes manifests, response bodies, Lua replies) whose shape the assertions check; these
      // rules would re-report every use of the `any` that is allowed here.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Off in tests: `expect(mock.method).toHaveBeenCalled()` passes a method unbound on purpose
      // (jest never calls it), and prototype-less records are checked with `expect(record['toString'])`.
      '@typescript-eslint/unbound-method': 'off',
    },
  },

  {
    files: ['**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
);
