/** Jest runs the TypeScript sources as native ES modules (NestJS 12 ships ESM only). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  // Pure unit specs, specs that need a real redis-server (named apart), and the end-to-end suites.
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/src/**/*.redis-spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  reporters: ['default', '<rootDir>/test/support/plain-summary-reporter.js'],
  // The whole-suite secret scan (collects what every gateway emitted, fails the run on a leak) and
  // the net that kills children a dead worker left running.
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  testTimeout: 30_000,
};
