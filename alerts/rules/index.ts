import type { Rule } from './types.ts';
import { fireRules } from './fire/index.ts';
import { careRules } from './care/index.ts';

/** Every rule the alerts process runs: fire (issue 3) and care (issue 4). */
export function defaultRules(): Rule[] {
  return [...fireRules(), ...careRules()];
}
