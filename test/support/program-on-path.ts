import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';

/** The absolute path of an executable `program` on PATH, or undefined when none is there. */
export function programOnPath(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, program);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
