// "type": "module" in package.json makes this .js file an ES module.
import { shout } from './lib/helper.js';

export async function handler(event) {
  return { kind: 'type-module', text: shout(event.text), isModule: typeof require };
}
