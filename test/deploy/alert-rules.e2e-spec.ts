/**
 * The alert rules (deploy/prometheus) as Prometheus's own promtool reads them: the file passes
 * `promtool check rules`, its unit tests (deploy/prometheus/tests) pass `promtool test rules`, and
 * every alert the operations team was promised is there, with a severity, a summary and a
 * description that says what to check first.
 */
import { describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import {
  ALERT_RULE_TESTS_FILE,
  ALERT_RULES_FILE,
  alertRulesOf,
  loadAlertRules,
  readYaml,
  type RuleGroups,
} from '../support/monitoring-files.js';
import { promtool } from '../support/promtool.js';

/** What each alert watches, by name. */
const PROMISED_ALERTS = [
  'ZimGatewayVendorFrequencyRefusals',
  'ZimGatewayVendorConfigurationError',
  'ZimGatewayOnFallbackShare',
  'ZimGatewayBudgetSaturated',
  'ZimGatewayHighErrorRatio',
  'ZimGatewayNoReplicaReady',
  'ZimGatewayBatchesNotDraining',
  'ZimGatewayRedisEvictionUnsafe',
];

/** promtool test rules on the unit tests as they are, against `rules` in place of the rules file. */
async function unitTestsAgainst(rules: RuleGroups): Promise<{ code: number; output: string }> {
  const directory = mkdtempSync(path.join(tmpdir(), 'zim-gw-rules-'));
  try {
    // The same layout as deploy/prometheus, so the tests' rule_files (../<rules file>) finds the copy.
    const testsFile = path.join(directory, 'tests', path.basename(ALERT_RULE_TESTS_FILE));
    mkdirSync(path.dirname(testsFile));
    copyFileSync(ALERT_RULE_TESTS_FILE, testsFile);
    writeFileSync(path.join(directory, path.basename(ALERT_RULES_FILE)), stringify(rules));
    return await promtool(['test', 'rules', testsFile]);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

describe('the alert rules file', () => {
  it('passes promtool check rules', async () => {
    const run = await promtool(['check', 'rules', ALERT_RULES_FILE]);
    expect(run).toMatchObject({ code: 0 });
    expect(run.output).toContain(`SUCCESS: ${PROMISED_ALERTS.length} rules found`);
  });

  it('passes its promtool unit tests, one test or more per alert, firing and not firing', async () => {
    const run = await promtool(['test', 'rules', ALERT_RULE_TESTS_FILE]);
    expect({ code: run.code, output: run.output }).toEqual({ code: 0, output: expect.stringContaining('SUCCESS') });

    const tests = (readYaml(ALERT_RULE_TESTS_FILE) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> }).tests;
    const cases = tests.flatMap((test) => test.alert_rule_test);
    for (const alert of PROMISED_ALERTS) {
      const ofAlert = cases.filter((c) => c.alertname === alert);
      expect({ alert, firing: ofAlert.some((c) => c.exp_alerts.length > 0) }).toEqual({ alert, firing: true });
      expect({ alert, silent: ofAlert.some((c) => c.exp_alerts.length === 0) }).toEqual({ alert, silent: true });
    }
  });

  it('fails those unit tests when a rule is wrong (the tests can fail)', async () => {
    // The copy as it is passes: what fails below is the change.
    expect(await unitTestsAgainst(loadAlertRules())).toMatchObject({ code: 0 });
    const rules = loadAlertRules();
    const fallback = alertRulesOf(rules).find((rule) => rule.alert === 'ZimGatewayOnFallbackShare')!;
    fallback.for = '5m';
    const run = await unitTestsAgainst(rules);
    expect(run.code).not.toBe(0);
    expect(run.output).toMatch(/FAILED[\s\S]*ZimGatewayOnFallbackShare/);
  });

  it('has every promised alert, each with a severity, a summary and a description of what to check first', () => {
    const rules = alertRulesOf(loadAlertRules());
    expect(rules.map((rule) => rule.alert).sort()).toEqual([...PROMISED_ALERTS].sort());
    for (const rule of rules) {
      expect({ alert: rule.alert, severity: rule.labels?.severity }).toEqual({
        alert: rule.alert,
        severity: expect.stringMatching(/^(critical|warning)$/),
      });
      expect({ alert: rule.alert, summary: rule.annotations?.summary }).toEqual({ alert: rule.alert, summary: expect.any(String) });
      expect({ alert: rule.alert, description: rule.annotations?.description }).toEqual({
        alert: rule.alert,
        description: expect.stringContaining('Check first'),
      });
    }
  });

  it('waits a minute before calling a replica on its fallback share, and 5 minutes on a saturated budget', () => {
    const byName = new Map(alertRulesOf(loadAlertRules()).map((rule) => [rule.alert, rule]));
    expect(byName.get('ZimGatewayOnFallbackShare')!.for).toBe('1m');
    expect(byName.get('ZimGatewayBudgetSaturated')!.for).toBe('5m');
  });

  it('reads the same under YAML 1.1 as under YAML 1.2', () => {
    for (const file of [ALERT_RULES_FILE, ALERT_RULE_TESTS_FILE]) {
      const text = readFileSync(file, 'utf8');
      expect({ file, document: parse(text, { version: '1.1' }) as unknown }).toEqual({ file, document: parse(text) as unknown });
    }
  });
});
