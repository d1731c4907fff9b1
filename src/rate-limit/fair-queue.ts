import type { Priority } from './rate-limit.settings.js';

/**
 * How far below a whole number a sum of fractions may land from float rounding and still count as
 * whole: tags times weights when counting slots, and batch's credit (0.1 added ten times is
 * 0.9999999999999999, which would give batch its slot one turn late). lua/schedule-outbound.lua
 * gets it in its rules, so that both count alike.
 */
export const FAIR_ROUNDING_TOLERANCE = 1e-9;

/** A caller waiting for a slot, in its client's line at its level. */
export interface FairTicket<T> {
  readonly client: string;
  readonly priority: Priority;
  /** Arrival order: it breaks ties between clients, and orders a client's own line. */
  readonly seq: number;
  /** A retried late slot: first in its client's line, and charged nothing. */
  readonly front: boolean;
  readonly value: T;
}

/** How to queue a caller: its client and weight, its level, and whether it goes first (a retried late slot). */
export interface FairRequest {
  client: string;
  weight: number;
  priority: Priority;
  front?: boolean;
}

/** One client's line at one level, with the virtual tags of its first ticket. */
interface Flow<T> {
  readonly client: string;
  readonly priority: Priority;
  weight: number;
  readonly tickets: FairTicket<T>[];
  start: number;
  finish: number;
}

/**
 * Weighted fair queuing across clients, interactive before batch with a minimum share for batch:
 * the same rules as lua/schedule-outbound.lua (see FAIRNESS there), for one process. Each client
 * waits in its own line; only the first ticket of a line carries tags, so a caller that gives up
 * costs its client nothing. That ticket starts at max(V, F_c) (F_c: the finish tag of the client's
 * last ticket served, so idle time earns no credit) and finishes 1 / w later; V is the start tag
 * of the last ticket served; the line whose first ticket finishes first is served next. While
 * both levels wait, each slot adds `minShare` to a credit, and a credit of 1 gives batch the slot.
 */
export class FairQueue<T> {
  private readonly flows: Record<Priority, Map<string, Flow<T>>> = { interactive: new Map(), batch: new Map() };
  private readonly virtual: Record<Priority, number> = { interactive: 0, batch: 0 };
  /** The finish tag of each client's last ticket served, by level. */
  private readonly lastFinish: Record<Priority, Map<string, number>> = { interactive: new Map(), batch: new Map() };
  private count = 0;
  private credit = 0;
  private seq = 0;

  constructor(private readonly minShare: number) {}

  get size(): number {
    return this.count;
  }

  /**
   * How many slots go to others before a ticket asked for now: those of its client's line, and of
   * every other waiting client those that finish first, counting the ones it will still send
   * while it keeps waiting (a waiting client is taken to keep asking); stretched by the share the
   * other level takes (for batch: no more than the interactive tickets waiting now).
   */
  slotsBefore(request: FairRequest): number {
    const { priority } = request;
    const flows = this.flows[priority];
    const own = flows.get(request.client);
    const virtual = this.virtual[priority];
    let ahead = 0;
    let finish = virtual;
    if (!request.front) {
      const behindFronts = own?.tickets.filter((ticket) => !ticket.front).length ?? 0;
      const firstNormal = own && !own.tickets[0]!.front ? own.start : this.firstStart(priority, request.client);
      ahead = own?.tickets.length ?? 0;
      finish = firstNormal + (behindFronts + 1) / request.weight;
    }
    for (const flow of flows.values()) {
      if (flow === own || flow.finish > finish) continue;
      ahead += Math.floor((finish - flow.finish) * flow.weight + FAIR_ROUNDING_TOLERANCE) + 1;
    }
    const othersWait = this.flows[priority === 'batch' ? 'interactive' : 'batch'].size > 0;
    if (!othersWait) return ahead;
    if (priority === 'interactive') return ahead / (1 - this.minShare);
    // Batch waits behind the interactive tickets waiting now, or at worst its minimum share; later
    // interactive work may delay it past that, and its deadline then ends its wait.
    let interactiveWaiting = 0;
    for (const flow of this.flows.interactive.values()) interactiveWaiting += flow.tickets.length;
    return Math.min((ahead + 1) / this.minShare - 1, ahead + interactiveWaiting);
  }

  push(request: FairRequest, value: T): FairTicket<T> {
    const { client, priority, weight, front = false } = request;
    const ticket: FairTicket<T> = { client, priority, seq: ++this.seq, front, value };
    let flow = this.flows[priority].get(client);
    if (!flow) {
      flow = { client, priority, weight, tickets: [], start: 0, finish: 0 };
      this.flows[priority].set(client, flow);
    }
    flow.weight = weight;
    const at = front ? flow.tickets.filter((waiting) => waiting.front).length : flow.tickets.length;
    flow.tickets.splice(at, 0, ticket);
    if (at === 0) this.tag(flow);
    this.count++;
    return ticket;
  }

  /**
   * Counts a slot given at once to a caller that found nobody waiting (it never queued). The
   * fleet's scheduler queues and serves such a caller in one go, so its service counts there and
   * must count here too: V and its client's finish tag move on (not for a retried late slot,
   * charged nothing), and interactive served with no batch waiting clears batch's credit, as
   * `nextLevel` would.
   */
  servedAtOnce(request: FairRequest): void {
    const { client, priority, weight, front = false } = request;
    if (!front) {
      const start = this.firstStart(priority, client);
      this.virtual[priority] = start;
      this.lastFinish[priority].set(client, start + 1 / weight);
    }
    if (priority === 'interactive') this.credit = 0;
  }

  /** The clients with tickets waiting, by level. */
  waitingClients(): Array<{ client: string; priority: Priority }> {
    return (['interactive', 'batch'] as const).flatMap((priority) => [...this.flows[priority].keys()].map((client) => ({ client, priority })));
  }

  /** Takes a ticket out that will not be served (its caller gave up); false when it was not queued. */
  remove(ticket: FairTicket<T>): boolean {
    const flow = this.flows[ticket.priority].get(ticket.client);
    const index = flow?.tickets.indexOf(ticket) ?? -1;
    if (!flow || index < 0) return false;
    flow.tickets.splice(index, 1);
    this.count--;
    if (index === 0) this.nextInLine(flow);
    return true;
  }

  /** The ticket the next slot goes to, out of the queue; undefined when nothing waits. */
  shift(): FairTicket<T> | undefined {
    const priority = this.nextLevel();
    if (priority === undefined) return undefined;
    let next: Flow<T> | undefined;
    for (const flow of this.flows[priority].values()) {
      if (!next || flow.finish < next.finish || (flow.finish === next.finish && flow.tickets[0]!.seq < next.tickets[0]!.seq)) {
        next = flow;
      }
    }
    const ticket = next!.tickets.shift()!;
    this.count--;
    this.virtual[priority] = Math.max(this.virtual[priority], next!.start);
    if (!ticket.front) this.lastFinish[priority].set(next!.client, next!.finish);
    this.nextInLine(next!);
    return ticket;
  }

  /** Where a client's next normal ticket starts when nothing of its line is tagged. */
  private firstStart(priority: Priority, client: string): number {
    return Math.max(this.virtual[priority], this.lastFinish[priority].get(client) ?? 0);
  }

  /** Tags the first ticket of a line: a retried late slot goes before everything, at no charge. */
  private tag(flow: Flow<T>): void {
    if (flow.tickets[0]!.front) {
      flow.start = flow.finish = this.virtual[flow.priority];
      return;
    }
    flow.start = this.firstStart(flow.priority, flow.client);
    flow.finish = flow.start + 1 / flow.weight;
  }

  private nextInLine(flow: Flow<T>): void {
    if (flow.tickets.length === 0) this.flows[flow.priority].delete(flow.client);
    else this.tag(flow);
  }

  private nextLevel(): Priority | undefined {
    const interactive = this.flows.interactive.size;
    const batch = this.flows.batch.size;
    if (interactive === 0 && batch === 0) return undefined;
    if (batch === 0) {
      this.credit = 0;
      return 'interactive';
    }
    if (interactive === 0) return 'batch';
    // Every slot while both wait earns batch minShare of a slot; a whole one buys it the slot.
    this.credit += this.minShare;
    if (this.credit + FAIR_ROUNDING_TOLERANCE >= 1) {
      this.credit -= 1;
      return 'batch';
    }
    return 'interactive';
  }
}
