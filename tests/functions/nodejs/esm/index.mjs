// An ES module handler (.mjs) with top-level await, which runs during init.
import { readFile } from 'node:fs/promises';

const own = await readFile(new URL(import.meta.url), 'utf8');
let calls = 0;

export const handler = async (event) => {
  calls += 1;
  return { kind: 'mjs', event, calls, ownLength: own.length, isModule: typeof require };
};
