/**
 * Drops the keys whose value is undefined, in place. Alert and incident messages are built with
 * optional fields spread in; their TypeBox schemas (additionalProperties false, optional fields)
 * and the JSON sent to clients want absent keys, not keys holding undefined.
 */
export function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}
