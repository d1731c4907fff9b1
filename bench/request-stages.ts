/**
 * Where a request's time went inside the gateway, from its own request log: every line of a
 * request that passed a named wait carries `stagesMs` (the request body, the client quota, the
 * outbound slot, each vendor attempt, and `handler` for the gateway's own code between them) and
 * `durationMs`, its whole time from arrival to answer.
 */
import { readFileSync } from 'node:fs';
import { median } from './bench-support.js';

export interface StageMedians {
  /** Requests the figures are taken from. */
  count: number;
  /** The median of the gateway's own time (`durationMs`). */
  gatewayMs: number;
  /** The median of each stage, largest first. */
  stages: Array<[stage: string, ms: number]>;
}

/** The medians over the lines of `logPath` whose roomId is `roomIdPrefix` and a measured request's index (the warm-up's are negative). */
export function stageMedians(logPath: string, roomIdPrefix: string): StageMedians {
  const measured = (roomId: string): boolean => roomId.startsWith(roomIdPrefix) && /^\d+$/.test(roomId.slice(roomIdPrefix.length));
  const times = new Map<string, number[]>();
  const durations: number[] = [];
  for (const text of readFileSync(logPath, 'utf8').split('\n')) {
    if (!text.includes('"stagesMs"')) continue;
    const line = JSON.parse(text) as { roomId?: string; durationMs?: number; stagesMs?: Record<string, number> };
    if (line.roomId === undefined || !measured(line.roomId) || line.stagesMs === undefined || line.durationMs === undefined) continue;
    durations.push(line.durationMs);
    for (const [stage, ms] of Object.entries(line.stagesMs)) {
      let list = times.get(stage);
      if (!list) times.set(stage, (list = []));
      list.push(ms);
    }
  }
  const stages = [...times].map(([stage, list]): [string, number] => [stage, median(list)]).sort((a, b) => b[1] - a[1]);
  return { count: durations.length, gatewayMs: durations.length > 0 ? median(durations) : Number.NaN, stages };
}
