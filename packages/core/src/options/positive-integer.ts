/**
 * `value` if it is a positive integer; otherwise a RangeError naming the setting, so that bad
 * configuration stops start-up with a message that says which setting is wrong.
 */
export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}
