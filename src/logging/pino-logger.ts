import { inspect } from 'node:util';
import type { LoggerService, LogLevel as NestLogLevel } from '@nestjs/common';
import type { Level, Logger } from 'pino';
import type { LogSanitiser } from './log-sanitiser.js';

/** Nest's method names and the pino level each one writes at. */
export const NEST_TO_PINO_LEVEL: Readonly<Record<NestLogLevel, Level>> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/** Pino levels from the most to the least severe. */
const PINO_LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

/**
 * Nest's LoggerService over one pino instance. Nest's calling convention is kept: a trailing
 * string parameter is the context (the `Logger` class appends its own), and for error and fatal
 * the string before it is a stack. The context goes in `context`, a stack in `stack`, an Error in
 * `err`; every string is sanitised by the pino instance (see createPino).
 */
export class PinoLogger implements LoggerService {
  constructor(
    readonly pino: Logger,
    readonly sanitiser: LogSanitiser,
  ) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params, false);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params, true);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params, false);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params, false);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params, false);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params, true);
  }

  /**
   * An info line written whatever the level (the start-up announcement that supervisors and the
   * test harness read the port from).
   */
  notice(message: string, context?: string): void {
    const child = this.pino.child({}, { level: 'info' });
    child.info(context === undefined ? {} : { context }, message);
  }

  /** Nest's level list: the least severe level listed becomes pino's threshold. */
  setLogLevels(levels: NestLogLevel[]): void {
    const enabled = levels.map((level) => NEST_TO_PINO_LEVEL[level]).filter((level) => level !== undefined);
    if (enabled.length === 0) {
      this.pino.level = 'silent';
      return;
    }
    this.pino.level = enabled.reduce((least, level) =>
      PINO_LEVELS.indexOf(level) > PINO_LEVELS.indexOf(least) ? level : least,
    );
  }

  private write(level: Level, message: unknown, params: unknown[], withStack: boolean): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const { context, stack, extras } = splitParams(params, withStack);
    const fields: Record<string, unknown> = {};
    if (context !== undefined) fields.context = context;
    let text: string;
    if (message instanceof Error) {
      fields.err = message;
      text = message.message;
    } else {
      text = toText(this.sanitiser.sanitiseValue(message));
    }
    if (stack !== undefined) fields.stack = stack;
    const details: string[] = [];
    for (const extra of extras) {
      if (extra instanceof Error && fields.err === undefined) fields.err = extra;
      else if (isPlainObject(extra)) fields.params = { ...(fields.params as object | undefined), ...extra };
      else details.push(toText(this.sanitiser.sanitiseValue(extra)));
    }
    if (details.length > 0) fields.details = details;
    this.pino[level](fields, text);
  }
}

/** Nest's convention (as ConsoleLogger reads it): [...extras, stack?, context?]. */
export function splitParams(
  params: readonly unknown[],
  withStack: boolean,
): { context?: string; stack?: string; extras: unknown[] } {
  const rest = [...params];
  if (withStack && rest.length === 1 && (rest[0] === undefined || isStackFormat(rest[0]))) {
    return { stack: rest[0] as string | undefined, extras: [] };
  }
  let context: string | undefined;
  if (rest.length > 0 && typeof rest[rest.length - 1] === 'string') context = rest.pop() as string;
  let stack: string | undefined;
  if (withStack && rest.length > 0) {
    const last = rest[rest.length - 1];
    if (typeof last === 'string' || last === undefined) stack = rest.pop() as string | undefined;
  }
  return { context, stack, extras: rest.filter((item) => item !== undefined) };
}

function isStackFormat(value: unknown): boolean {
  return typeof value === 'string' && /\n[ \t]+at .+:\d+:\d+/.test(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function toText(value: unknown): string {
  if (typeof value === 'string') return value;
  return inspect(value, { depth: 4, breakLength: Infinity, compact: true });
}
