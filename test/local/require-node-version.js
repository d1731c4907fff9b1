// The first step of `npm run local` and `npm test`, in plain JavaScript so that any Node runs it:
// on another major than the one the project ships and is tested on (.nvmrc), one clear line
// instead of a failure somewhere later.
import { readFileSync } from 'node:fs';

const wanted = readFileSync(new URL('../../.nvmrc', import.meta.url), 'utf8').trim();
const current = process.versions.node;
if (current.split('.')[0] !== wanted) {
  const dir = `~/.cache/node-${wanted}`;
  console.error(
    `zim-room-gateway needs Node ${wanted} (.nvmrc), this is Node ${current}: run \`nvm install\`, ` +
      `or \`npm install --prefix ${dir} node@${wanted}\` and put ${dir}/node_modules/.bin first on PATH.`,
  );
  process.exit(1);
}
