/**
 * The multi-replica fleet tests: several gateway processes, Redis and the fake vendor at full
 * load. They measure what reaches the vendor's door, so they run on their own, one at a time,
 * after the other suites (`npm test` runs both configs).
 */
import base from './jest.config.js';

export default {
  ...base,
  testMatch: ['<rootDir>/test/fleet/**/*.fleet-spec.ts'],
  maxWorkers: 1,
  testTimeout: 120_000,
};
