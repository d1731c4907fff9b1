import { describe, expect, it } from '@jest/globals';
import { metricNamesIn } from './promql-metric-names.js';

describe('metricNamesIn', () => {
  it('finds the metrics, not the functions, labels, strings, ranges or keywords', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (le, route) (rate(http_seconds_bucket{route!~"/health/.*",job=~"$job"}[$__rate_interval])))',
      ),
    ).toEqual(['http_seconds_bucket']);
    expect(
      metricNamesIn('sum by (namespace) (rate(a_total[2m])) >= on (namespace) 0.9 * max by (namespace) (b) and on (namespace) c > 1e3'),
    ).toEqual(['a_total', 'b', 'c']);
    expect(metricNamesIn('(sum(ready) or on () vector(0)) == 0 unless ignoring (x) up offset 5m')).toEqual(['ready', 'up']);
    expect(metricNamesIn('label_replace(waiting, "dst", "$1", "src", "(.*) or more")')).toEqual(['waiting']);
    expect(metricNamesIn('sum(rate(x[5m])) by (le) / count(y) without (instance)')).toEqual(['x', 'y']);
  });
});
