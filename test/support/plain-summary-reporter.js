/**
 * Prints the closing line CI reads in any language ("N passed, N failed"), after jest's own
 * summary, so a run that executed no test cannot pass for a green one.
 */
export default class PlainSummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests } = results;
    const skipped = numPendingTests > 0 ? `, ${numPendingTests} skipped` : '';
    process.stdout.write(`\njest: ${numPassedTests} passed, ${numFailedTests} failed${skipped}\n`);
  }
}
